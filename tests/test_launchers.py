"""Scale-out configs: Hydra launchers (local, joblib, SLURM through submitit), the Optuna sweeper
over the CNN's hyperparameters, Lightning DDP. Each composes the real config and names a class
that imports; joblib and Optuna also run a tiny real sweep."""

from __future__ import annotations

import math
from pathlib import Path

import pytest
import yaml
from hydra.utils import get_class
from omegaconf import OmegaConf

import llmusic.pipeline as pl
from llmusic.config import REPO_ROOT
from llmusic.report import load_cells
from tests.helpers import run_multirun


@pytest.mark.parametrize("launcher,target", [
    ("local", "hydra._internal.core_plugins.basic_launcher.BasicLauncher"),
    ("joblib", "hydra_plugins.hydra_joblib_launcher.joblib_launcher.JoblibLauncher"),
    ("slurm", "hydra_plugins.hydra_submitit_launcher.submitit_launcher.SlurmLauncher"),
])
def test_launcher_configs_compose(launcher, target, compose):
    cfg = compose("pipeline", f"launcher={launcher}", hydra=True)
    assert cfg.hydra.launcher._target_ == target
    get_class(target)  # the optional extra (.[joblib], .[slurm]) is installed
    if launcher == "slurm":
        assert cfg.hydra.launcher.gpus_per_node == 1 and cfg.hydra.launcher.timeout_min > 0
        assert cfg.hydra.launcher.submitit_folder == f"{cfg.hydra.sweep.dir}/.submitit/%j"
    if launcher == "joblib":
        assert cfg.hydra.launcher.n_jobs == 2 and cfg.hydra.launcher.backend == "loky"


def test_optuna_config_searches_the_genre_cnn_on_validation_loss(compose):
    cfg = compose("pipeline", "hpo=cnn_optuna", hydra=True)
    sweeper = cfg.hydra.sweeper
    assert sweeper._target_ == "hydra_plugins.hydra_optuna_sweeper.optuna_sweeper.OptunaSweeper"
    get_class(sweeper._target_)
    assert sweeper.direction == "minimize" and sweeper.sampler.seed == 0
    assert set(sweeper.params) == {"cnn.lr", "cnn.conv1", "cnn.conv2", "cnn.dropout"}
    assert OmegaConf.to_container(cfg.objective) == {"student": "genre", "metric": "val/loss"}
    assert cfg.students.style is None and cfg.students.melody is None
    # The searched values reach the genre student's train config.
    run = pl.train_config(cfg, "genre", [f"experiment={cfg.students.genre.experiment}", *cfg.students.genre.overrides],
                          REPO_ROOT / "runs" / "none", REPO_ROOT / "runs" / "none")
    assert run.model.optimizer.lr == cfg.cnn.lr
    assert list(run.model.net.channels) == [cfg.cnn.conv1, cfg.cnn.conv2]
    assert run.model.net.dropout == cfg.cnn.dropout


def test_ddp_trainer_composes_for_every_student(compose):
    cfg = compose("pipeline", "train_overrides=['trainer=ddp']", hydra=True)
    for name, spec in cfg.students.items():
        run = pl.train_config(cfg, name, [f"experiment={spec.experiment}", *cfg.train_overrides],
                              REPO_ROOT / "runs" / "none", REPO_ROOT / "runs" / "none")
        trainer = OmegaConf.to_container(run.trainer, resolve=True)
        assert trainer["_target_"] == "lightning.pytorch.Trainer"
        assert (trainer["strategy"], trainer["devices"], trainer["accelerator"]) == ("ddp", 2, "gpu")


def test_joblib_sweep_runs_every_cell(tmp_path, shared_data):
    done = run_multirun(tmp_path, tmp_path / "sweep", "launcher=joblib", "prompt=genre_only,genre_style")
    assert "Joblib.Parallel(n_jobs=2" in done.stdout + done.stderr
    cells = load_cells(tmp_path / "sweep")
    assert sorted(c["choices"]["prompt"] for c in cells) == ["genre_only", "genre_style"]
    assert all(c["students"]["genre"]["test_data"] == "real" for c in cells)
    assert all((Path(c["students"]["genre"]["run_dir"]) / "metrics.json").exists() for c in cells)
    assert (tmp_path / "sweep" / "sweep_report.md").read_text().count("\n| prompt=") == 2


def test_optuna_sweep_minimises_the_returned_validation_loss(tmp_path, shared_data):
    run_multirun(tmp_path, tmp_path / "sweep", "hpo=cnn_optuna", "hydra.sweeper.n_trials=2")
    result = yaml.safe_load((tmp_path / "sweep" / "optimization_results.yaml").read_text())
    cells = load_cells(tmp_path / "sweep")
    losses = [c["students"]["genre"]["validation"]["val/loss"] for c in cells]
    assert len(cells) == 2 and all(math.isfinite(v) for v in losses)
    assert result["best_value"] == pytest.approx(min(losses))
    assert set(result["best_params"]) == {"cnn.lr", "cnn.conv1", "cnn.conv2", "cnn.dropout"}
