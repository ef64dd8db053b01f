"""The classifier-free probe: its statistics on known answers (identical and transposed sets, a
brute-force AUC and permutation chance), real data against itself (near-perfect retrieval, realism
near 0.5, chance on shuffled labels), and `python -m llmusic.probe` end to end on a baseline run."""

from __future__ import annotations

import itertools
import json
from pathlib import Path

import numpy as np
import pytest
from matplotlib.image import imread
from threadpoolctl import threadpool_limits

from llmusic.data.labels import TOPMAGD_GENRES
from llmusic.midi.features import COLUMN, FEATURE_NAMES, song_features
from llmusic.midi.synthetic import random_song
from llmusic.probe import PROBE_FILE
from llmusic.probe.__main__ import probe
from llmusic.probe.compare import compare
from llmusic.probe.distance import energy_distances, permutation_chance, standardise, standardiser
from llmusic.probe.gaps import feature_gaps, ranked, sentence
from llmusic.probe.realism import fit_logistic, realism, weighted_auc
from llmusic.probe.samples import FeatureSet, halves, real_features
from llmusic.report import main as report_main
from llmusic.song import Song
from llmusic.train import train
from tests.helpers import compose_entry, compose_train, constraint_set, run_generate

PAPER = constraint_set("paper")


@pytest.fixture(autouse=True, scope="module")
def one_blas_thread():
    """As `python -m llmusic.probe` runs (threads=1): idle BLAS threads spin on a busy machine."""
    with threadpool_limits(1):
        yield


def synthetic_set(n: int, transpose: int = 0, seed: int = 0) -> FeatureSet:
    """n random songs (one group), each transposed by `transpose` semitones (drums kept); a song keeps
    its name when transposed, so the pairs of a song and its own transposition are left out."""
    rows = []
    for k in range(n):
        song = random_song(seed * 1000 + k, PAPER)
        song = Song({role: ev + [0 if role == "rhythm" else transpose, 0, 0, 0] for role, ev in song.tracks.items()})
        rows.append(song_features(song, PAPER.time_span_ticks, PAPER.ticks_per_quarter))
    names = np.array([f"{seed}:{k}" for k in range(n)], dtype=object)
    return FeatureSet(np.stack(rows), names, np.zeros(n, np.int64), ["all"])


def distance(x: FeatureSet, y: FeatureSet, n_resamples: int = 0) -> np.ndarray:
    mean, scale, kept = standardiser(y.features)
    zx, zy = standardise(x.features, mean, scale, kept), standardise(y.features, mean, scale, kept)
    return energy_distances(zx, x.song, x.group, 1, zy, y.song, y.group, 1, n_resamples)[:, 0, 0]


def test_distance_is_zero_for_identical_sets_and_grows_with_transposition():
    songs = synthetic_set(40)
    same = distance(songs, songs, n_resamples=200)
    assert same[0] == 0.0
    grown = [distance(synthetic_set(40, k), songs)[0] for k in (1, 3, 7, 12)]
    assert 0 < grown[0] < grown[1] < grown[2] < grown[3]
    # Each side is resampled on its own, so resamples scatter around 0, well below a transposition's.
    assert abs(np.mean(same[1:])) < 0.1 * grown[1] and np.percentile(same[1:], 97.5) < grown[2]
    # Key-normalised pitch classes ignore the transposition; the register does not.
    moved = synthetic_set(40, 7)
    assert np.allclose(moved.features[:, COLUMN["pitch_class_C"]], songs.features[:, COLUMN["pitch_class_C"]])


def test_other_songs_of_the_same_kind_are_close_and_windows_of_one_song_count_once():
    a, b = synthetic_set(40, seed=1), synthetic_set(40, seed=2)
    near, far = distance(a, b)[0], distance(synthetic_set(40, 12, seed=1), b)[0]
    assert abs(near) < 0.2 * far
    # A song's windows are never paired with each other: doubling every window of b changes nothing.
    doubled = FeatureSet(np.repeat(b.features, 2, axis=0), np.repeat(b.song, 2), np.repeat(b.group, 2), b.groups)
    assert distance(a, doubled)[0] == pytest.approx(distance(a, b)[0])


def test_weighted_auc_against_brute_force():
    rng = np.random.default_rng(0)
    score = rng.integers(0, 6, 40).astype(float)  # many ties
    positive = rng.random(40) < 0.4
    weight = rng.random((3, 40))
    for r in range(3):
        pos, neg = np.flatnonzero(positive), np.flatnonzero(~positive)
        credit = sum(weight[r, i] * weight[r, j] * ((score[i] > score[j]) + 0.5 * (score[i] == score[j]))
                     for i in pos for j in neg)
        expected = credit / weight[r, pos].sum() / weight[r, neg].sum()
        assert weighted_auc(score, positive, weight)[r] == pytest.approx(expected)


def test_logistic_regression_solves_its_optimality_condition():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(200, 3))
    y = (x @ [1.0, -2.0, 0.5] + rng.normal(size=200) > 0).astype(float)
    beta = fit_logistic(x, y, np.ones(200), l2=1.0)
    p = 1 / (1 + np.exp(-(x @ beta[:3] + beta[3])))
    gradient = np.column_stack([x, np.ones(200)]).T @ (p - y) + np.r_[beta[:3], 0.0]
    assert np.abs(gradient).max() < 1e-6 and beta[1] < -1 < 0.5 < beta[0]


def test_realism_tells_transposed_songs_apart_and_not_others():
    base, other, moved = synthetic_set(30, seed=3), synthetic_set(30, seed=4), synthetic_set(30, 12, seed=4)
    same = realism(other.features, other.song, base.features, base.song, n_resamples=200)
    apart = realism(np.nan_to_num(moved.features), moved.song, np.nan_to_num(base.features), base.song, n_resamples=200)
    assert abs(same["auc"] - 0.5) < 0.2 and same["interval"][0] < 0.5 < same["interval"][1]
    assert apart["auc"] > 0.95 and (same["llm_songs"], same["real_songs"], same["folds"]) == (30, 30, 5)


def test_permutation_chance_is_exact():
    nearest, targets = np.array([0, 0, 1, 2, 2]), np.array([0, 0, 0, 1, 2])
    accuracies = [np.mean(nearest == np.array(p)) for p in itertools.permutations(targets)]
    chance, p_value = permutation_chance(nearest, targets, n_permutations=2000)
    assert chance == pytest.approx(np.mean(accuracies))
    assert p_value == pytest.approx(np.mean(np.array(accuracies) >= np.mean(nearest == targets)), abs=0.03)


def test_gaps_say_which_feature_moved_and_by_how_much():
    base, moved = synthetic_set(30, seed=5), synthetic_set(30, 12, seed=5)
    sd = np.nanstd(base.features, axis=0)
    gap = feature_gaps(moved.features, moved.song, base.features, base.song, sd, n_resamples=100)
    top = ranked(gap, "Pop", "Pop_Rock", top=3)
    assert {g["feature"] for g in top} <= {f"{r}_pitch_mean" for r in ("melody", "chords", "bass")}
    assert all(g["mean_llm"] - g["mean_real"] == pytest.approx(12) for g in top)
    assert "12.0 semitones higher than real Pop_Rock" in top[0]["sentence"]
    same = feature_gaps(base.features, base.song, base.features, base.song, sd, n_resamples=10)
    assert np.nanmax(np.abs(same["d"])) == 0
    assert sentence("distinct_pitch_classes", "Jazz", "Jazz", 4.2, 7.0, -1.3).startswith(
        "LLM Jazz has 40% fewer distinct pitch classes than real Jazz (4.2 vs 7")


@pytest.fixture(scope="module")
def real(shared_data):
    """Real TOP-MAGD songs of the combined Lakh set, at most 60 per class, classes with >= 20."""
    return real_features([shared_data / "lmd_subset" / "midi", shared_data / "lmd_extra" / "midi"],
                         shared_data / "labels" / "midi_genre_map.json", "topmagd", TOPMAGD_GENRES,
                         PAPER.time_span_ticks, PAPER.ticks_per_quarter, windows_per_song=8, max_songs_per_group=60,
                         ).at_least(20)


def test_real_data_against_itself(real):
    """Half of each class's songs against the other half: the genre is found, realism is near 0.5."""
    assert len(real.groups) >= 6 and real.skipped["few_songs"] > 0 and real.skipped["multiple_labels"] > 0
    identity = {c: c for c in real.groups}
    found = [compare(*halves(real, seed), identity, n_resamples=200, calibration=False, seed=seed) for seed in range(3)]
    assert np.mean([f["retrieval"]["accuracy"] for f in found]) >= 0.75
    assert all(f["retrieval"]["chance"] == 1 / len(real.groups) and f["retrieval"]["p_value"] < 0.01 for f in found)
    assert all(abs(f["realism"]["mean_auc"] - 0.5) < 0.1 for f in found)
    assert all(abs(f["distance_to_mapped"]["mean"]) < 0.1 for f in found)


def test_real_data_with_shuffled_labels_retrieves_at_chance(real):
    identity = {c: c for c in real.groups}
    accuracies, p_values = [], []
    for seed in range(3):
        a, b = halves(real, seed)
        names, song = np.unique(a.song.astype(str), return_inverse=True)
        group_of_song = np.zeros(len(names), np.int64)
        group_of_song[song] = a.group
        shuffled = np.random.default_rng(seed).permutation(group_of_song)[song]
        found = compare(FeatureSet(a.features, a.song, shuffled, a.groups), b, identity, n_resamples=50,
                        calibration=False, seed=seed)
        accuracies.append(found["retrieval"]["accuracy"])
        p_values.append(found["retrieval"]["p_value"])
    assert np.mean(accuracies) <= 2.5 / len(real.groups) and min(p_values) > 0.05


@pytest.fixture(scope="module")
def probed(tmp_path_factory):
    """`python -m llmusic.probe` on a 24-song baseline run against the LMD subset, small settings."""
    out = tmp_path_factory.mktemp("probe")
    run_generate(out / "run", "taxonomy.genres=[Pop,Jazz,Country,Classical]", "taxonomy.styles=[Swing,Funky,Ballad]",
                 "n_per_combo=2")
    cfg = compose_entry("probe", f"llm_run={out / 'run'}", "real_roots=[${dataset.root}]", "n_resamples=50",
                        "max_songs_per_group=40", "min_real_songs=10", "workers=1", "windows_per_song=4")
    return probe(cfg), cfg


def test_probe_end_to_end(probed):
    result, cfg = probed
    out = cfg.out_dir
    assert out.endswith("run/probe/topmagd-paper_to_topmagd")
    saved = json.loads((Path(out) / PROBE_FILE).read_text())
    assert saved["distance"]["rows"] == ["Pop", "Jazz", "Country", "Classical"]
    assert saved["songs"]["llm"] == {"Pop": 6, "Jazz": 6, "Country": 6, "Classical": 6}
    # The LMD subset holds >= 10 single-label songs of Pop_Rock, Country and Latin only: Jazz is not
    # kept, Classical maps to nothing.
    assert list(saved["songs"]["real"]) == ["Pop_Rock", "Country", "Latin"]
    assert saved["skipped"]["real"]["few_songs"] == 7 + 3 + 2 + 1 + 1
    scored = [r for r in saved["rows"] if r["scored"]]
    assert [r["mapped"] for r in scored] == ["Pop_Rock", "Country"]
    assert "not among the real classes kept" in saved["rows"][1]["note"] and "note" not in saved["rows"][3]
    assert saved["retrieval"]["scored_genres"] == 2 and 0 <= saved["retrieval"]["accuracy"] <= 1
    assert 0.5 <= saved["realism"]["mean_auc"] <= 1  # a rule-based composer is easy to tell from real music
    assert np.isclose(saved["realism"]["mean_auc"], np.mean([r["realism"]["auc"] for r in scored]))
    assert saved["calibration"]["realism"]["mean_auc"] < saved["realism"]["mean_auc"]
    assert list(saved["gaps"]["by_genre"]) == ["Pop", "Country"] and len(saved["gaps"]["by_genre"]["Pop"]) == cfg.top_gaps
    assert saved["features"]["names"] == list(FEATURE_NAMES)
    assert saved["settings"]["n_resamples"] == 50 and saved["real_roots"][0].endswith("lmd_subset/midi")
    report = (Path(out) / "report.md").read_text()
    assert f"{saved['realism']['mean_auc']:.3f}" in report and "permutation chance" in report
    for png in ("distance_heatmap.png", "realism_auc.png", "feature_gaps.png"):
        assert imread(Path(out) / png).ndim == 3


@pytest.mark.parametrize("overrides, message", [
    (["constraints=paper_consistent"], "set constraints=paper"),
    (["label=style"], "maps genre labels"),
    (["dataset=midi_folder"], "Lakh-style"),
])
def test_probe_refuses_what_does_not_fit(probed, overrides, message):
    _, cfg = probed
    with pytest.raises(ValueError, match=message):
        probe(compose_entry("probe", f"llm_run={cfg.llm_run}", *overrides))


def table_rows(markdown: str) -> list[list[str]]:
    lines = [line for line in markdown.splitlines() if line.startswith("| ")]
    return [[cell.strip() for cell in line.strip("|").split(" | ")] for line in lines[1:]]


def test_leaderboard_one_row_per_generate_run(probed, tmp_path):
    """`python -m llmusic.report --leaderboard`: the probed run with a genre student trained on it,
    and a run with neither."""
    result, cfg = probed
    other = tmp_path / "other"
    run_generate(other, "taxonomy.genres=[Pop]", "taxonomy.styles=[Swing]", "n_per_combo=1")
    student = train(compose_train(["experiment=genre_llm_to_topmagd", "scale=small", "+trainer.fast_dev_run=true",
                                   f"llm_run={cfg.llm_run}"], tmp_path / "train" / "genre"))
    out = tmp_path / "board.md"
    report_main(["--leaderboard", cfg.llm_run, str(other), "--search", str(tmp_path / "train"), "--out", str(out)])
    text = out.read_text()
    header = text.splitlines()[0]
    probed_row, other_row = table_rows(text)
    assert header.startswith("| run | backend | model | prompt | constraints | songs | valid rate | genre retrieval")
    retrieval, realism = result["retrieval"], result["realism"]
    assert probed_row[1:7] == ["baseline", "rules-v1", "paper", "paper", "24", "100.0%"]
    assert probed_row[7].startswith(f"{retrieval['accuracy']:.0%} [")
    assert f"({retrieval['chance']:.0%}; 2 genres)" in probed_row[7]
    assert probed_row[8] == (f"{realism['mean_auc']:.2f} [{realism['interval'][0]:.2f}, "
                             f"{realism['interval'][1]:.2f}]")
    song = student["test"]["song"]
    assert probed_row[10].startswith(f"{song['model']['f1_macro']:.3f} ({song['chance']['f1_macro']:.3f}, "
                                     f"{song['majority']['f1_macro']:.3f}; 1 run(s)")
    assert probed_row[11] == "-" and probed_row[12].startswith("topmagd via paper_to_topmagd: ")
    assert other_row[5:7] == ["1", "100.0%"] and other_row[7:] == ["-"] * 6
    assert (tmp_path / "board.csv").read_text().count("\n") == 3
