"""llmusic.runs and llmusic.report on run folders as `llmusic.train` writes them: seed groups,
paired tests between two runs (classification and ranking), and the refusal of different test data."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from omegaconf import OmegaConf

from llmusic.eval.classification import classification_report
from llmusic.report import compare_markdown, main, render_report
from llmusic.runs import collect_runs, compare_runs, group_runs

CLASSES = ["a", "b", "c"]
TEST = {"_target_": "llmusic.data.lmd.LakhMidiDataset", "split": "test", "fold": 0, "cache_dir": None}


def write_run(root: Path, name: str, seed: int, logits: np.ndarray, target: np.ndarray, test: dict = TEST,
              **variant) -> Path:
    """A classification run folder: config.yaml, metrics.json (the real report of these logits) and predictions.npz."""
    run = root / name
    run.mkdir(parents=True)
    config = {"name": "genre_x", "seed": seed, "data": {"seed": seed, "test": test}, "model": {"net": {"channels": [8]}},
              "paths": {"output_dir": str(run)}, "callbacks": {"ckpt": {"dirpath": f"{run}/checkpoints"}}}
    OmegaConf.save(OmegaConf.create(config), run / "config.yaml")
    report = classification_report(torch.as_tensor(logits), target, CLASSES, False, intervals=True)
    metrics = {"name": "genre_x", "seed": seed, "fold": 0, "test": {"window": report, "song": report},
               "variant": {"protocol": "paper", "control": "none", "balance": False, "model": "CNN", **variant}}
    (run / "metrics.json").write_text(json.dumps(metrics))
    np.savez(run / "predictions.npz", song_id=np.arange(len(target)), target=target, pred=logits.argmax(1),
             logits=logits, scored=np.ones(len(target), bool))
    return run


def noisy_logits(target: np.ndarray, accuracy: float, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    pred = np.where(rng.random(len(target)) < accuracy, target, rng.integers(0, 3, len(target)))
    return np.eye(3)[pred] + rng.normal(0, 0.01, (len(target), 3))


@pytest.fixture()
def target() -> np.ndarray:
    return np.random.default_rng(0).integers(0, 3, 300)


def test_runs_that_differ_only_by_seed_form_a_group(tmp_path, target):
    for seed in (0, 1, 2):
        write_run(tmp_path, f"seed={seed}", seed, noisy_logits(target, 0.6, seed), target)
    write_run(tmp_path, "shuffled", 0, noisy_logits(target, 0.3, 9), target, control="shuffled_labels")
    runs = collect_runs(tmp_path)
    groups = group_runs(runs)
    assert sorted(len(g) for g in groups) == [1, 3]
    (three,) = [g for g in groups if len(g) == 3]
    assert [r.metrics["seed"] for r in three] == [0, 1, 2]
    md = render_report(runs)
    f1 = [r.metrics["test"]["song"]["model"]["f1_micro"] for r in three]
    mean, sd = np.mean(f1), np.std(f1, ddof=1)
    assert "## Over seeds" in md and f"{100 * mean:.1f} ± {100 * sd:.1f}" in md
    assert "control=shuffled_labels" in md and "majority" in md and "chance" in md


def test_compare_classification_runs_on_the_same_songs(tmp_path, target):
    good = write_run(tmp_path, "good", 0, noisy_logits(target, 0.8, 1), target)
    bad = write_run(tmp_path, "bad", 0, noisy_logits(target, 0.4, 2), target)
    same = write_run(tmp_path, "same", 1, np.load(good / "predictions.npz")["logits"], target)
    a, b, c = (collect_runs(d)[0] for d in (good, bad, same))
    result = compare_runs(a, b)
    assert result["items"] == 300 and result["accuracy"][0] > result["accuracy"][1]
    assert result["mcnemar_p"] < 1e-6 and result["permutation_p"] < 1e-3 and result["f1_macro_swap_p"] < 1e-2
    identical = compare_runs(a, c)
    assert identical["mcnemar_p"] == 1.0 and identical["f1_micro_swap_p"] == 1.0
    md = compare_markdown(a, b)
    assert "McNemar" in md and "swap" in md and str(good) in md


def test_compare_the_feature_baseline_with_the_cnn_on_the_same_songs(tmp_path, target):
    """inputs=features reads the same windows of the same songs as the CNN's rolls: a paired test applies."""
    cnn = write_run(tmp_path, "cnn", 0, noisy_logits(target, 0.7, 1), target, test={**TEST, "inputs": "rolls"})
    features = write_run(tmp_path, "features", 0, noisy_logits(target, 0.5, 2), target,
                         test={**TEST, "inputs": "features"}, model="FeatureLinear")
    result = compare_runs(*(collect_runs(d)[0] for d in (cnn, features)))
    assert result["items"] == 300 and result["accuracy"][0] > result["accuracy"][1]


def test_compare_refuses_runs_tested_on_different_data(tmp_path, target, capsys):
    a = write_run(tmp_path, "fold0", 0, noisy_logits(target, 0.6, 1), target)
    b = write_run(tmp_path, "fold1", 0, noisy_logits(target, 0.6, 2), target, test={**TEST, "fold": 1})
    with pytest.raises(ValueError, match=r"different data \(data.test: fold\)"):
        compare_runs(*(collect_runs(d)[0] for d in (a, b)))
    shorter = write_run(tmp_path, "fewer", 0, noisy_logits(target[:200], 0.6, 3), target[:200])
    with pytest.raises(ValueError, match="test items differ"):
        compare_runs(collect_runs(a)[0], collect_runs(shorter)[0])
    with pytest.raises(SystemExit):
        main(["--compare", str(a), str(b)])
    assert "different data" in capsys.readouterr().err


def test_compare_ranking_runs_per_scoring(tmp_path):
    rng = np.random.default_rng(0)
    dirs = []
    for name, best in (("strong", 0.6), ("weak", 0.1)):
        run = tmp_path / name
        run.mkdir()
        OmegaConf.save(OmegaConf.create({"name": "melody_x", "seed": 0, "data": {"test": {"n_candidates": 50}}}),
                       run / "config.yaml")
        ranks = {s: np.where(rng.random(400) < best, 1, rng.integers(1, 51, 400)) for s in ("cosine", "pmi")}
        test = {s: {"map": {"value": float((1 / r).mean()), "chance": 0.09}} for s, r in ranks.items()}
        (run / "metrics.json").write_text(json.dumps({"name": "melody_x", "seed": 0, "test": test}))
        np.savez(run / "predictions.npz", query_id=np.arange(400), **{f"rank__{s}": r for s, r in ranks.items()})
        dirs.append(run)
    a, b = (collect_runs(d)[0] for d in dirs)
    result = compare_runs(a, b)
    assert result["kind"] == "ranking" and set(result["scorings"]) == {"cosine", "pmi"}
    for scoring in result["scorings"].values():
        assert scoring["map"][0] > scoring["map"][1] and scoring["permutation_p"] < 1e-3
    assert compare_runs(a, a)["scorings"]["cosine"]["permutation_p"] == 1.0
    assert "per-query reciprocal rank" in compare_markdown(a, b)
