"""Where the repository is and how its configs are composed: the core every module may import.

Relative paths in configs (`../shared/data`, a run's `out_dir` handed to a data set) are taken from
the repository root, so a command means the same from any working directory. Sub-configs (the
pipeline's generate and train runs, the tests' fixtures) are composed here with Hydra's compose API
exactly as their `python -m llmusic.<name>` entry point composes them.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

from hydra import compose, initialize_config_dir
from hydra.core.global_hydra import GlobalHydra
from omegaconf import DictConfig, OmegaConf

from llmusic.constraints import melody_phrase_bars

REPO_ROOT = Path(__file__).resolve().parents[1]
CONF_DIR = REPO_ROOT / "conf"

# Configs that frame melody phrases by a constraint set's span (conf/experiment/melody_completion_llm.yaml).
OmegaConf.register_new_resolver("llmusic.melody_phrase_bars", melody_phrase_bars, replace=True)


def resolve_path(path: str | os.PathLike) -> Path:
    """A relative path is taken from the repository root, so `../shared/data` works from any cwd."""
    path = Path(os.path.expanduser(str(path)))
    return (path if path.is_absolute() else REPO_ROOT / path).resolve()


def compose_config(name: str, overrides: Sequence[str] = (), return_hydra_config: bool = False) -> DictConfig:
    """conf/<name>.yaml composed with Hydra's compose API, inside a running Hydra app or not."""
    if GlobalHydra.instance().is_initialized():
        return compose(config_name=name, overrides=list(overrides), return_hydra_config=return_hydra_config)
    with initialize_config_dir(config_dir=str(CONF_DIR), version_base="1.3"):
        return compose(config_name=name, overrides=list(overrides), return_hydra_config=return_hydra_config)


def finished_with(saved_config: Path, result: Path, cfg: DictConfig, ignore: Sequence[str] = ()) -> bool:
    """Whether a run finished with `cfg`: it saved its config (resolved) and then its `result` file,
    and that config is `cfg` up to the top-level `ignore` keys."""
    if not (saved_config.is_file() and result.is_file()) or result.stat().st_mtime_ns < saved_config.stat().st_mtime_ns:
        return False
    old, new = OmegaConf.to_container(OmegaConf.load(saved_config)), OmegaConf.to_container(cfg, resolve=True)
    for key in ignore:
        old.pop(key, None)
        new.pop(key, None)
    return old == new
