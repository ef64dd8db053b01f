"""`python -m llmusic.train` through the real configs: every experiment composes, builds its data
sets and runs a fast_dev_run on CPU; full tiny runs write what they promise and repeat exactly."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from hydra.utils import instantiate
from omegaconf import DictConfig, OmegaConf
from torch.utils.data import WeightedRandomSampler

from llmusic.config import CONF_DIR, REPO_ROOT
from llmusic.data.labels import CLASS_ORDERS
from llmusic.eval.melody_baselines import BASELINES
from llmusic.eval.paper_numbers import numbers_for
from llmusic.midi.features import FEATURE_NAMES
from llmusic.report import collect_runs, render_report
from llmusic.train import train
from tests.helpers import compose_train, run_generate

EXPERIMENTS = sorted(p.stem for p in (CONF_DIR / "experiment").glob("*.yaml"))
# The pipeline's fallbacks without real data (tested on held-out generated songs), and the
# experiments for runs made with taxonomy=topmagd_masd: each kind has its own test below.
HOLDOUT = ["genre_llm_holdout", "style_llm_holdout", "melody_llm_holdout"]
IDENTITY = ["genre_identity_to_topmagd", "style_identity_to_masd", "genre_identity_holdout", "style_identity_holdout"]


@pytest.fixture(scope="session")
def llm_run(tmp_path_factory) -> Path:
    """A small LLM-MIDI run from the offline baseline composer: prompt genres and styles that the
    paper's label maps send to TOP-MAGD / MASD classes."""
    out = tmp_path_factory.mktemp("llm_run")
    run_generate(out, "llm=baseline", "n_per_combo=3", "taxonomy.genres=[Pop,Jazz,Hip-Hop,Country]",
                 "taxonomy.styles=[Funky,Swing,Trance,Grunge]")
    return out


@pytest.mark.parametrize("experiment", [e for e in EXPERIMENTS if e not in HOLDOUT + IDENTITY])
def test_every_experiment_runs_a_fast_dev_run(experiment, llm_run, tmp_path, shared_data):
    cfg = compose_train([f"experiment={experiment}", "scale=small", "+trainer.fast_dev_run=true",
                         f"llm_run={llm_run}"], tmp_path)
    assert cfg.name == experiment
    metrics = train(cfg)
    saved = json.loads((tmp_path / "metrics.json").read_text())
    assert saved == json.loads(json.dumps(metrics))
    assert OmegaConf.load(tmp_path / "config.yaml").name == experiment
    if cfg.model._target_.endswith("LitClassifier"):
        for level in ("window", "song"):
            report = saved["test"][level]
            assert {"model", "chance", "majority", "support", "per_class"} <= set(report)
            assert set(report["model"]) == set(report["chance"]) == {"accuracy", "f1_micro", "f1_macro", "f1_weighted"}
            assert report["n"] > 0 and sum(report["support"].values()) == report["n"]  # single-label test sets
            assert report["headline"] in ("f1_micro", "f1_macro") and set(report["below_majority"]) <= set(report["model"])
        assert set(saved["test"]["song"]["interval"]) == set(saved["test"]["song"]["model"])
        if "llm_to" in experiment:  # a label map leaves classes unscored: the open score counts their songs
            coverage = saved["data"]["test"]["coverage"]
            assert coverage["open"]["songs"] > coverage["closed"]["songs"] and coverage["open"]["unscored_songs"] > 0
            # fast_dev_run tests one batch: the open score counts the songs of that batch, the closed its scored ones
            assert saved["test"]["song"]["n"] <= saved["test"]["song_open"]["n"] <= coverage["open"]["songs"]
        assert (tmp_path / "confusion_window.png").exists() and (tmp_path / "confusion_song.png").exists()
    else:
        assert_ranking_report(saved, tmp_path)
    data = saved["data"]
    assert data["train"]["samples"] > 0 and data["val"]["samples"] > 0 and data["test"]["samples"] > 0


def assert_ranking_report(metrics: dict, run_dir: Path) -> None:
    """Every scoring beside chance, an interval, the four baselines on the same queries and a verdict;
    the report's table shows them all."""
    test = metrics["test"]
    assert set(test) == {"cosine", "likelihood", "pmi", *BASELINES}
    for name, report in test.items():
        assert report["kind"] == ("baseline" if name in BASELINES else "model")
        assert report["n_candidates"] == 50 and report["map"]["chance"] == pytest.approx(0.0899, abs=1e-4)
        assert set(report) >= {"map", "hits@1", "hits@25"} and len(report["map"]["interval"]) == 2
        if name not in BASELINES:
            assert report["versus"]["best_baseline"] in BASELINES and report["versus"]["verdict"].startswith("beats")
    with np.load(run_dir / "predictions.npz") as items:  # per-query ranks of every scoring, for paired tests
        assert set(items) == {"query_id", *(f"rank__{name}" for name in test)}
    md = render_report(collect_runs(run_dir))
    assert all(f"*{name}*" in md for name in BASELINES) and "chance 0.090" in md and "best baseline" in md


@pytest.mark.parametrize("experiment", ["melody_completion_supervised", "melody_completion_llm"])
def test_melody_experiments_test_on_lakh_melodies(experiment, llm_run, tmp_path, shared_data):
    """dataset@data.test=melody_lmd: the Lakh test queries (120 files here); the supervised model
    trains on the other Lakh songs, the LLM one on the run, at the run's phrase length (2 bars)."""
    cfg = compose_train([f"experiment={experiment}", "dataset@data.test=melody_lmd", "data.test.pairs.source.max_files=120",
                         "scale=small", "+trainer.fast_dev_run=true", f"llm_run={llm_run}"], tmp_path)
    metrics = train(cfg)
    phrases = metrics["data"]["test"]["phrases"]
    assert phrases["source"] == "LakhPhrases" and phrases["key_normalization"] == "profile"
    assert phrases["phrase_bars"] == (4 if experiment.endswith("supervised") else 2)
    assert metrics["data"]["train"]["phrases"]["source"] == ("LakhPhrases" if experiment.endswith("supervised")
                                                             else "LlmMidiPhrases")
    assert_ranking_report(metrics, tmp_path)


@pytest.mark.parametrize("override,message", [
    ("data.test.pairs.source.phrase_bars=4", r"train phrases \(.*'phrase_bars': 2.*\) and test phrases \(.*'phrase_bars': 4"),
    ("phrase_bars=4", "phrase_bars=4 needs pieces of 8 bars.*generate with constraints=paper_consistent"),
])
def test_a_train_test_length_mismatch_stops_the_run_at_start(override, message, llm_run, tmp_path, shared_data):
    """The paper's 4-bar pieces give 2-bar phrases; 4-bar test phrases (or asking for 4-bar training
    phrases) stop the run before training, naming the keys to set, instead of padding anything."""
    cfg = compose_train(["experiment=melody_completion_llm", "scale=small", f"llm_run={llm_run}", override], tmp_path)
    with pytest.raises(Exception, match=message) as stopped:
        train(cfg)
    assert "phrase_bars" in str(stopped.value) and "constraints=paper_consistent" in str(stopped.value)
    assert not (tmp_path / "checkpoints").exists() and not (tmp_path / "metrics.json").exists()


@pytest.mark.parametrize("experiment", HOLDOUT)
def test_holdout_experiments_test_on_the_runs_own_held_out_songs(experiment, llm_run, tmp_path):
    # 5 held-out test pieces leave too few negatives for 50 candidates: rank 4.
    cfg = compose_train([f"experiment={experiment}", "scale=small", "+trainer.fast_dev_run=true", f"llm_run={llm_run}",
                         *(["data.test.pairs.n_candidates=4"] if experiment.startswith("melody") else [])], tmp_path)
    test = cfg.data.test.pairs.source if experiment.startswith("melody") else cfg.data.test
    assert test.out_dir == str(llm_run)  # the generate run the students train on
    metrics = train(cfg)
    data = metrics["data"]
    assert data["train"]["songs"] > 0 and data["test"]["samples"] > 0
    if experiment.startswith("melody"):
        assert metrics["test"]["cosine"]["n_candidates"] == 4
    else:  # a 5-fold split by song: fold 0 tests, the other four train
        assert data["test"]["songs"] < data["train"]["songs"] + data["val"]["songs"]


@pytest.fixture(scope="session")
def identity_run(tmp_path_factory) -> Path:
    """A run whose prompt labels are the evaluation labels (taxonomy=topmagd_masd), one song a pair."""
    out = tmp_path_factory.mktemp("identity_run")
    run_generate(out, "llm=baseline", "taxonomy=topmagd_masd", "n_per_combo=1")
    return out


@pytest.mark.parametrize("experiment", IDENTITY)
def test_identity_experiments_keep_and_score_every_class(experiment, identity_run, tmp_path, shared_data):
    cfg = compose_train([f"experiment={experiment}", "scale=small", f"llm_run={identity_run}"], tmp_path)
    data = instantiate(cfg.data)
    taxonomy = "topmagd" if experiment.startswith("genre") else "masd"
    assert data.model_kwargs()["classes"] == list(CLASS_ORDERS[taxonomy])
    assert "unmapped_label" not in data.train_full.skipped


def test_paper_setting_shares_the_evaluation_classes(llm_run, tmp_path, shared_data):
    cfg = compose_train(["experiment=genre_llm_to_topmagd", "scale=small", f"llm_run={llm_run}"], tmp_path)
    data = instantiate(cfg.data)
    scored = ["Pop_Rock", "Electronic", "Country", "Jazz", "Rap", "Folk", "Reggae", "Blues"]
    assert data.model_kwargs() == {"classes": scored, "multilabel": False,
                                   "unscored_classes": ["RnB", "Latin", "International", "Vocal", "New Age"]}
    assert set(data.train_full.song_ids[data.train.indices]).isdisjoint(data.train_full.song_ids[data.val.indices])


def _tiny(tmp_path: Path, seed: int = 0) -> DictConfig:
    return compose_train(["scale=small", f"seed={seed}", "trainer.max_epochs=2", "trainer.limit_train_batches=3",
                          "trainer.limit_val_batches=2", "data.test.max_windows_per_song=2"], tmp_path)


def test_same_command_same_numbers_and_a_loadable_best_checkpoint(tmp_path, shared_data):
    first = train(_tiny(tmp_path / "a"))
    second = train(_tiny(tmp_path / "b"))
    assert first["test"] == second["test"]
    assert first["seed"] == 0 and OmegaConf.load(tmp_path / "a" / "config.yaml").seed == 0
    other = train(_tiny(tmp_path / "c", seed=1))
    assert other["test"]["window"]["model"] != first["test"]["window"]["model"]
    ckpt = torch.load(tmp_path / "a" / first["checkpoint"], weights_only=True)  # plain hyperparameters only
    assert ckpt["hyper_parameters"]["classes"] == list(first["test"]["window"]["support"])


def test_wandb_is_offline_without_a_key_and_never_sees_it(tmp_path, monkeypatch):
    monkeypatch.delenv("WANDB_API_KEY", raising=False)
    assert compose_train(["logger=wandb"], tmp_path).logger.wandb.offline is True
    monkeypatch.setenv("WANDB_API_KEY", "secret-123")
    cfg = compose_train(["logger=[csv,wandb,tensorboard]"], tmp_path)
    assert cfg.logger.wandb.offline is False
    assert "secret-123" not in OmegaConf.to_yaml(cfg, resolve=True)
    assert set(cfg.logger) == {"csv", "wandb", "tensorboard"}


@pytest.mark.parametrize("trainer,accelerator,strategy",
                         [("cpu", "cpu", None), ("gpu", "gpu", None), ("ddp", "gpu", "ddp")])
def test_trainer_configs(trainer, accelerator, strategy, tmp_path):
    cfg = compose_train([f"trainer={trainer}"], tmp_path)
    assert cfg.trainer.accelerator == accelerator and cfg.trainer.get("strategy") == strategy
    if trainer == "cpu":
        assert instantiate(cfg.trainer, logger=False).max_epochs == cfg.trainer.max_epochs


def test_cli_multirun_over_folds_and_seeds_then_report_and_compare(tmp_path, shared_data):
    """The documented sweep: one run dir per fold and seed, then `python -m llmusic.report` over them
    (mean and sd over seeds, and over folds), and `--compare` of two of them."""
    sweep = tmp_path / "sweep"
    cmd = [sys.executable, "-m", "llmusic.train", "-m", "experiment=genre_supervised_corpus", "fold=0,1", "seed=0,1",
           "scale=small", "+trainer.fast_dev_run=true", "~logger", "threads=1", f"hydra.sweep.dir={sweep}"]
    subprocess.run(cmd, cwd=REPO_ROOT, check=True, capture_output=True, env={**os.environ, "HYDRA_FULL_ERROR": "1"})
    runs = collect_runs(sweep)
    assert sorted(r.dir.name for r in runs) == ["fold=0,seed=0", "fold=0,seed=1", "fold=1,seed=0", "fold=1,seed=1"]
    assert all((r.dir / "config.yaml").exists() and (r.dir / "metrics.json").exists() for r in runs)
    md = render_report(runs)
    assert "genre_supervised_corpus" in md and "fold=1,seed=1" in md
    assert "## Over seeds" in md and md.count("| 2 (0,1) | closed |") == 2  # a group of two seeds per fold
    assert "## Over folds" in md and "| 4 (0,0,1,1) | closed |" in md
    out = tmp_path / "report.md"
    subprocess.run([sys.executable, "-m", "llmusic.report", str(sweep), "--out", str(out)], cwd=REPO_ROOT, check=True)
    assert out.read_text() == md
    compare = [sys.executable, "-m", "llmusic.report", "--compare"]
    same_fold = subprocess.run([*compare, str(sweep / "fold=0,seed=0"), str(sweep / "fold=0,seed=1")], cwd=REPO_ROOT,
                               check=True, capture_output=True, text=True)
    assert "McNemar" in same_fold.stdout and "macro" not in same_fold.stderr
    other_fold = subprocess.run([*compare, str(sweep / "fold=0,seed=0"), str(sweep / "fold=1,seed=0")], cwd=REPO_ROOT,
                                capture_output=True, text=True)
    assert other_fold.returncode != 0 and "different data (data.test: fold)" in other_fold.stderr


def test_protocol_musicbert_scores_multilabel_over_every_class(tmp_path, shared_data):
    """protocol=musicbert: no label map, multi-label over all 13 TOP-MAGD genres, MusicBERT's number beside it only."""
    cfg = compose_train(["experiment=genre_supervised_topmagd", "protocol=musicbert", "scale=small",
                         "+trainer.fast_dev_run=true"], tmp_path)
    assert cfg.data.train.multilabel and cfg.data.test.multilabel
    metrics = train(cfg)
    song = metrics["test"]["song"]
    assert song["classes"] == list(CLASS_ORDERS["topmagd"]) and len(song["classes"]) == 13
    assert metrics["variant"]["protocol"] == "musicbert"
    assert numbers_for("genre_supervised_topmagd", "musicbert") and not numbers_for("genre_supervised_topmagd")


def test_feature_baseline_and_balanced_training_read_the_same_songs(llm_run, tmp_path, shared_data):
    """model=feature_logreg feeds each window's note statistics; data.balance=true draws windows by class weight."""
    overrides = ["experiment=genre_llm_to_topmagd", "scale=small", f"llm_run={llm_run}"]
    features = instantiate(compose_train([*overrides, "model=feature_logreg"], tmp_path / "f").data)
    rolls = instantiate(compose_train([*overrides, "data.balance=true"], tmp_path / "b").data)
    x = features.train[0][0]  # (F,): the note statistics of one window
    assert x.shape == (len(FEATURE_NAMES),)
    assert np.array_equal(features.train_full.song_ids, rolls.train_full.song_ids)
    assert isinstance(rolls.train_dataloader().sampler, WeightedRandomSampler)
    assert not isinstance(features.train_dataloader().sampler, WeightedRandomSampler)


def test_cli_resolves_the_melody_phrase_length_from_the_constraints(llm_run, tmp_path):
    """The command line (not only the tests' compose) knows the configs' resolvers: the LLM melody
    experiment's N bars come from its constraint set, the same for training and test."""
    cmd = [sys.executable, "-m", "llmusic.train", "experiment=melody_completion_llm", f"llm_run={llm_run}",
           f"hydra.run.dir={tmp_path}", "--cfg", "job", "--resolve"]
    done = subprocess.run(cmd, cwd=REPO_ROOT, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    cfg = OmegaConf.create(done.stdout)
    assert cfg.phrase_bars == 2  # constraints=paper: pieces of 4 bars, 2 of context and 2 to complete
    assert cfg.data.train.source.phrase_bars == cfg.data.test.pairs.source.phrase_bars == 2
