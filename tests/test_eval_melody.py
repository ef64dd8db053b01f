"""Non-learned melody baselines (llmusic.eval.melody_baselines) and the ranking report's intervals
and verdicts (llmusic.eval.ranking): hand-made phrases, and a plain per-phrase reading of real
POP909 queries (the benchmark's reference) that the vectorised code must match."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from benchmarks.melody_queries_benchmark import plain_scores
from llmusic.eval.melody_baselines import (BASELINES, baseline_scores, interval_continuity,
                                           onset_position_histogram, pitch_class_histogram, zscore)
from llmusic.eval.ranking import chance_map, rankings_report, report_from_ranks
from llmusic.eval.uncertainty import mean_interval
from llmusic.midi.phrase import HOLD, PAD, REST
from tests.helpers import build_dataset


def phrase(*notes: tuple[int | None, int], length: int = 32, n_tokens: int = 32) -> np.ndarray:
    """(pitch, steps) notes one after another (pitch None: a rest), then REST to `length`, PAD after."""
    tokens = []
    for pitch, steps in notes:
        tokens += [REST] * steps if pitch is None else [pitch] + [HOLD] * (steps - 1)
    tokens += [REST] * (length - len(tokens))
    return np.array(tokens + [PAD] * (n_tokens - length), dtype=np.uint8)


def test_histograms_of_a_hand_made_phrase():
    tokens = phrase((60, 4), (None, 2), (64, 2), (72, 8), (67, 1))  # steps 0, 6, 8, 16
    assert pitch_class_histogram(tokens, HOLD).tolist() == [12, 0, 0, 0, 2, 0, 0, 1, 0, 0, 0, 0]  # C 4 + 8, E 2, G 1
    assert onset_position_histogram(tokens, steps_per_bar=8).tolist() == [3, 0, 0, 0, 0, 0, 1, 0]
    carried = np.array([HOLD, HOLD, 62, HOLD, PAD, PAD], dtype=np.uint8)  # a note from before the phrase: silence
    assert pitch_class_histogram(carried, HOLD).tolist() == [0, 0, 2] + [0] * 9
    assert onset_position_histogram(carried, steps_per_bar=4).tolist() == [0, 0, 1, 0]  # 6 steps: a bar and a half
    assert pitch_class_histogram(np.full(8, REST, np.uint8), HOLD).sum() == 0


def test_each_baseline_prefers_the_obvious_continuation():
    context = phrase((60, 8), (64, 8), (67, 8), (72, 8))[None]  # C E G C on the beat, ends on C5
    candidates = np.stack([
        phrase((74, 8), (72, 8), (67, 8), (64, 8)),  # steps down from D5: same key, same rhythm, a tone away
        phrase((61, 3), (66, 5), (70, 7), (63, 17)),  # F# major-ish, off the beat, a leap from C5
        phrase(length=32),  # silence: no pitch, no onsets
    ])[None]
    scores = baseline_scores(context, candidates, HOLD, steps_per_bar=32)
    assert set(scores) == set(BASELINES)
    for name in BASELINES:
        assert scores[name].shape == (1, 3) and scores[name].dtype == np.float32
        assert scores[name][0].argmax() == 0, name
    assert interval_continuity(context, candidates).tolist() == [[-2.0, -11.0, -128.0]]
    assert scores["pitch_class_cosine"][0, 2] == 0 and scores["rhythm_cosine"][0, 2] == 0  # a zero histogram


def test_zscore_is_per_query_and_flat_rows_are_zero():
    scores = np.array([[1.0, 2.0, 3.0], [5.0, 5.0, 5.0]])
    z = zscore(scores)
    np.testing.assert_allclose(z[0], [-1.2247449, 0.0, 1.2247449], rtol=1e-6)
    assert z[1].tolist() == [0.0, 0.0, 0.0]


def test_vectorised_baselines_equal_a_plain_reading_of_real_queries(shared_data, tmp_path):
    queries = build_dataset("melody_pop909", f"dataset.pairs.source.root={shared_data / 'pop909'}",
                            f"dataset.pairs.cache_dir={tmp_path}")
    context, candidates = queries.context[:40], queries.candidates[:40]
    got = baseline_scores(context, candidates, HOLD, steps_per_bar=32)
    expected = plain_scores(context, candidates, steps_per_bar=32)  # the benchmark's reference
    for name in BASELINES:
        np.testing.assert_allclose(got[name], expected[name], rtol=1e-5, atol=1e-5, err_msg=name)


# --- intervals and verdicts ---------------------------------------------------------------------------------

def test_report_intervals_are_the_bootstrap_of_the_per_query_values():
    ranks = np.random.default_rng(0).integers(1, 51, size=300)
    report = report_from_ranks(ranks, 50)
    assert report["map"]["value"] == pytest.approx(np.mean(1 / ranks))
    assert report["map"]["interval"] == pytest.approx(list(mean_interval(1 / ranks)))  # the same seeded resamples
    assert report["hits@10"]["interval"] == pytest.approx(list(mean_interval(ranks <= 10)))
    for metric in ("map", "mean_rank", "hits@1", "hits@25"):
        lo, hi = report[metric]["interval"]
        assert lo <= report[metric]["value"] <= hi
    assert all(np.isnan(report_from_ranks(np.zeros(0), 50)["map"]["interval"]))  # no queries, no interval


@pytest.mark.parametrize("model_rank,verdict", [
    (1, "beats chance and the best baseline"),  # always first: beats both
    (3, "beats chance, not the best baseline"),  # MAP 1/3: above chance, below the baseline's 1/2
    (50, "beats neither chance nor the best baseline"),  # always last
])
def test_verdict_against_chance_and_the_best_baseline(model_rank, verdict):
    q, n = 200, 50
    true_index = torch.zeros(q, dtype=torch.long)
    def ranked(rank):  # scores that put the true candidate (index 0) at `rank`
        scores = torch.arange(n, 0, -1, dtype=torch.float32).repeat(q, 1)  # candidate j scores n - j
        scores[:, 0] = n - rank + 0.5  # rank - 1 candidates score higher
        return scores
    baselines = {"weak": ranked(20), "strong": ranked(2)}
    reports, ranks = rankings_report({"model": ranked(model_rank)}, baselines, true_index)
    assert ranks["model"].tolist() == [model_rank] * q and ranks["strong"].tolist() == [2] * q
    assert reports["weak"]["kind"] == reports["strong"]["kind"] == "baseline" and "versus" not in reports["weak"]
    versus = reports["model"]["versus"]
    assert versus["verdict"] == verdict and versus["best_baseline"] == "strong"
    assert versus["best_baseline_map"] == pytest.approx(0.5)
    assert versus["map_minus_best_baseline"]["value"] == pytest.approx(1 / model_rank - 0.5)
    assert reports["model"]["map"]["chance"] == chance_map(n)
