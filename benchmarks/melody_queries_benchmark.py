"""Melody-completion queries and baselines: building the POP909 and Lakh query sets (first build and
from the cache), and scoring 1,000 queries with each non-learned baseline.

    python -m benchmarks.melody_queries_benchmark [--rounds 3] [--queries 1000]

Build (table melody_queries_build): each round builds a data set's test queries into an empty
cache folder (the first build: read every song, find its key, cut its pairs, draw the candidate
lists) and then again from that cache (what every later run pays). POP909: 909 songs; Lakh: the
1,901 files of lmd_subset and lmd_extra (`conf/dataset/melody_lmd.yaml`).
Baselines (table melody_baselines): `llmusic.eval.melody_baselines`, vectorised over the first
`--queries` Lakh test queries (50 candidates each, repeated if the set is smaller), against the
same scores computed one phrase at a time from `decode_phrase` (`plain_scores`, what one writes
first; tests/test_eval_melody.py checks the two agree), in the same run. Both tables: min and
median over the rounds, the load average above them. Goal (issue 10): 1,000 queries in under 1 s
with the four baselines on 2 cores.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from collections.abc import Callable

import numpy as np
from hydra.utils import instantiate

from benchmarks.tables import add_table_dir, machine, write_table
from llmusic.config import compose_config
from llmusic.eval.melody_baselines import (BASELINES, baseline_scores, interval_continuity, pitch_class_cosine,
                                           rhythm_cosine)
from llmusic.midi.phrase import HOLD, decode_phrase

STEPS_PER_BAR = 32  # 4/4 at 8 steps per quarter, the default framing


def plain_scores(context: np.ndarray, candidates: np.ndarray, steps_per_bar: int = STEPS_PER_BAR) -> dict[str, np.ndarray]:
    """The four baselines one phrase at a time from decode_phrase: the reference the vectorised code must equal."""
    def features(tokens):
        onset, duration, pitch = decode_phrase(tokens)
        return (np.bincount(pitch % 12, weights=duration, minlength=12),
                np.bincount(onset % steps_per_bar, minlength=steps_per_bar), pitch)

    def cosine(a, b):
        norm = np.linalg.norm(a) * np.linalg.norm(b)
        return a @ b / norm if norm else 0.0

    q, n = candidates.shape[:2]
    out = {name: np.zeros((q, n)) for name in BASELINES}
    for i in range(q):
        pcs, rhythm, pitch = features(context[i])
        for j in range(n):
            c_pcs, c_rhythm, c_pitch = features(candidates[i, j])
            out["pitch_class_cosine"][i, j] = cosine(pcs, c_pcs)
            out["rhythm_cosine"][i, j] = cosine(rhythm, c_rhythm)
            out["interval_continuity"][i, j] = -abs(int(c_pitch[0]) - int(pitch[-1])) if len(pitch) and len(c_pitch) else -128
        parts = [out[name][i] for name in ("pitch_class_cosine", "interval_continuity", "rhythm_cosine")]
        out["combined_z"][i] = sum((p - p.mean()) / p.std() if p.std() else 0 * p for p in parts)
    return out


def timed(work: Callable[[], object], rounds: int) -> list[float]:
    times = []
    for _ in range(rounds):
        start = time.perf_counter()
        work()
        times.append(time.perf_counter() - start)
    return times


def build_queries(dataset: str, cache_dir: str):
    return instantiate(compose_config("describe", [f"dataset={dataset}", f"dataset.pairs.cache_dir={cache_dir}"]).dataset)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--queries", type=int, default=1000)
    add_table_dir(parser)
    args = parser.parse_args()

    build_rows, lakh = [], None
    for dataset in ("melody_pop909", "melody_lmd"):
        first, cached = [], []
        for _ in range(args.rounds):
            with tempfile.TemporaryDirectory() as cache_dir:
                first += timed(lambda: build_queries(dataset, cache_dir), 1)
                cached += timed(lambda: build_queries(dataset, cache_dir), 1)
                queries = build_queries(dataset, cache_dir)
        summary = queries.summary()
        build_rows.append([dataset, summary["songs"], len(queries), min(first), statistics.median(first),
                           min(cached), statistics.median(cached)])
        lakh = queries
    write_table(args.table_dir, "melody_queries_build",
                ["test set", "songs", "queries", "first build min s", "median s", "cached min s", "median s"],
                build_rows, f"{args.rounds} rounds; {machine()}")

    take = np.arange(args.queries) % len(lakh)  # the first --queries Lakh test queries (repeated if fewer)
    context, candidates = lakh.context[take], lakh.candidates[take]
    vectorised = {
        "pitch_class_cosine": lambda: pitch_class_cosine(context, candidates, HOLD),
        "interval_continuity": lambda: interval_continuity(context, candidates),
        "rhythm_cosine": lambda: rhythm_cosine(context, candidates, STEPS_PER_BAR),
        "all four (combined_z needs the others)": lambda: baseline_scores(context, candidates, HOLD, STEPS_PER_BAR),
    }
    rows = [[name, min(t), statistics.median(t)] for name, t in
            ((name, timed(work, args.rounds)) for name, work in vectorised.items())]
    plain = timed(lambda: plain_scores(context, candidates), args.rounds)
    fast, slow = baseline_scores(context[:100], candidates[:100], HOLD, STEPS_PER_BAR), plain_scores(context[:100], candidates[:100])
    difference = max(float(np.abs(fast[name] - slow[name]).max()) for name in BASELINES)
    rows.append(["one phrase at a time (decode_phrase), all four", min(plain), statistics.median(plain)])
    all_four = rows[3][2]
    for row in rows:
        row.append(statistics.median(plain) / row[2])
    write_table(args.table_dir, "melody_baselines", ["baseline", "min s", "median s", "plain / this"], rows,
                f"{len(take)} Lakh test queries x {candidates.shape[1]} candidates; {args.rounds} rounds; "
                f"all four vectorised: {all_four:.3f} s median (goal under 1 s); largest difference to the plain "
                f"scores on the first 100 queries {difference:.2g}; {machine()}")


if __name__ == "__main__":
    main()
