"""Train a student model and test it: `python -m llmusic.train [experiment=NAME] [scale=small]`.

Every run writes to its output dir: the resolved config (`config.yaml`), `metrics.json` (every
test metric beside its chance value, with data sizes), confusion matrices (classification) and the
best checkpoint. See conf/train.yaml for the config groups and experiments/README.md for recipes.
"""

from __future__ import annotations

import gc
import os
from pathlib import Path

import hydra
import lightning as L
import torch
from hydra.utils import instantiate
from omegaconf import DictConfig, OmegaConf

# Importing llmusic.config also registers the configs' resolvers (llmusic.melody_phrase_bars) before Hydra resolves.
from llmusic.config import user_errors_exit
from llmusic.files import write_json_atomic
from llmusic.secret_guard import check_no_secrets

# Lets configs ask "is this secret absent?" without the secret ever entering the config.
OmegaConf.register_new_resolver("llmusic.env_unset", lambda name: not os.environ.get(name), replace=True)


def check_protocol(cfg: DictConfig) -> None:
    """A protocol that names the data sets it is defined on (musicbert: real Lakh files on both
    sides, no label map) refuses any other, before anything is built."""
    protocol = cfg.get("protocol") or {}
    target = protocol.get("data_target")
    for side in ("train", "test") if target else ():
        data = cfg.data[side]
        if data.get("_target_") != target or data.get("label_map") is not None:
            raise ValueError(f"protocol={protocol.name} is defined on {target} without a label map, but "
                             f"data.{side} is {data.get('_target_')} with label_map={data.get('label_map')}: "
                             "use experiment=genre_supervised_topmagd or style_supervised_masd")


def variant(cfg: DictConfig) -> dict:
    """What a run varies besides its experiment, seed and fold: the report's rows keep them apart."""
    model = OmegaConf.select(cfg, "model.net.arch", default=None) or cfg.model._target_
    return {"protocol": OmegaConf.select(cfg, "protocol.name", default="paper"),
            "control": OmegaConf.select(cfg, "control.name", default="none"),
            "balance": bool(OmegaConf.select(cfg, "data.balance", default=False)),
            "model": model.rsplit(".", 1)[-1]}


def train(cfg: DictConfig) -> dict:
    """Fit on cfg.data.train (validation carved by song), test the best checkpoint on
    cfg.data.test; write config.yaml, metrics.json and artefacts to cfg.paths.output_dir."""
    try:
        return fit_and_test(cfg)
    finally:
        # The trainer, module and data of a run hold one another in reference cycles, which Python
        # frees only at a full collection: without one, runs made one after another in a process
        # (a sweep, a pipeline cell's students) kept every earlier run's data (2.1 GB against 1.4 GB
        # for a cell of four genre students).
        gc.collect()


def fit_and_test(cfg: DictConfig) -> dict:
    check_no_secrets(cfg)  # a run composed without the command line (a pipeline cell's) has no Hydra callback
    check_protocol(cfg)
    out_dir = Path(cfg.paths.output_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    OmegaConf.save(cfg, out_dir / "config.yaml", resolve=True)
    if cfg.get("threads"):
        torch.set_num_threads(cfg.threads)
    L.seed_everything(cfg.seed, workers=True)

    data = instantiate(cfg.data)
    module = instantiate(cfg.model, **data.model_kwargs())
    callbacks = [instantiate(c) for c in (cfg.get("callbacks") or {}).values()]
    loggers = [instantiate(c) for c in (cfg.get("logger") or {}).values()]
    trainer = instantiate(cfg.trainer, callbacks=callbacks, logger=loggers or False)
    trainer.fit(module, datamodule=data)

    best = trainer.checkpoint_callback.best_model_path if trainer.checkpoint_callback else ""
    if not trainer.is_global_zero:
        return {}
    # Test on one device (Lightning's advice: a distributed sampler would pad the test set).
    tester = instantiate(cfg.trainer, devices=1, num_nodes=1, strategy="auto", logger=False,
                         callbacks=[], enable_progress_bar=False)
    tester.test(module, datamodule=data, ckpt_path=best or None, verbose=False)

    metrics = {
        "name": cfg.name,
        "seed": cfg.seed,
        "fold": cfg.get("fold"),
        "variant": variant(cfg),
        "checkpoint": os.path.relpath(best, out_dir) if best else None,
        "epochs_trained": trainer.current_epoch,
        "data": data.describe(),
        "test": module.test_results,
        "artifacts": [p.name for p in module.save_artifacts(out_dir)],
    }
    write_json_atomic(out_dir / "metrics.json", metrics)  # whole or absent: the pipeline reuses it when present
    return metrics


@hydra.main(version_base="1.3", config_path="../conf", config_name="train")
def main(cfg: DictConfig) -> None:
    with user_errors_exit():
        train(cfg)


if __name__ == "__main__":
    main()
