"""How fast `parse_reply` turns replies into songs, against the obvious alternatives.

  python -m benchmarks.parse_benchmark [--n 16250] [--set paper]

1. A data set's worth of replies (default 16,250, as in the paper) cycling through every
   real-looking reply in tests/replies/ (strict JSON, fences, prose, Python literals, event
   objects, cut-off and broken replies): replies/s.
2. The strict-JSON subset (the 52-event song, compact and pretty-printed): parse_reply against
   plain `json.loads` + the minimum checks (tracks present, 4 numbers per event, clamped).
3. The Python-literal form of the same song: parse_reply (tolerant tokenizer) against
   `ast.literal_eval` + the same checks, which reads the form but cannot repair cut replies.
Ratios are taken in the same run, of the median of --repeats passes (CPU seconds; the best pass
is shown beside it). Tables: parse.md/.csv (the three comparisons) and parse_per_file.md/.csv (µs
per reply file).
"""

from __future__ import annotations

import argparse
import ast
import json
import time
from collections.abc import Callable

from hydra.utils import instantiate

from benchmarks.tables import add_table_dir, machine, spread, write_table
from llmusic.config import REPO_ROOT, compose_config
from llmusic.constraints import ConstraintSet
from llmusic.parse import parse_reply
from llmusic.song import Song

REPLIES = REPO_ROOT / "tests" / "replies"


def checked_song(obj: dict, constraints: ConstraintSet) -> Song:
    """The baseline: what a hand-written validator of strict, well-formed replies does."""
    limits = (constraints.pitch_range, constraints.duration_range, constraints.velocity_range,
              (0, constraints.time_span_ticks))
    tracks = {}
    for track in constraints.tracks:
        rows = []
        for event in obj[track]:
            if len(event) != 4:
                continue
            rows.append([min(max(int(v), lo), hi) for v, (lo, hi) in zip(event, limits)])
        tracks[track] = rows
    return Song(tracks=tracks, ticks_per_quarter=constraints.ticks_per_quarter,
                tempo_bpm=constraints.tempo_bpm, programs=dict(constraints.programs))


def rates(fn: Callable[[str], object], texts: list[str], repeats: int) -> tuple[float, float]:
    """Replies per CPU second over `texts`: (median, best) of `repeats` passes.

    CPU time of this (single-threaded) process, not wall time, so that other jobs on a shared
    machine do not skew the ratios.
    """
    seconds = []
    for _ in range(repeats):
        start = time.process_time()
        for text in texts:
            fn(text)
        seconds.append(time.process_time() - start)
    best, median = spread(seconds)
    return len(texts) / median, len(texts) / best


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=16_250, help="replies per timed pass")
    parser.add_argument("--set", default="paper", help="constraint config under conf/constraints")
    parser.add_argument("--repeats", type=int, default=3)
    add_table_dir(parser)
    args = parser.parse_args()
    constraints = instantiate(compose_config(f"constraints/{args.set}").constraints)

    fixtures = {p.name: p.read_text() for p in sorted(REPLIES.glob("*.txt"))}
    mix = [fixtures[name] for name in fixtures] * (args.n // len(fixtures) + 1)
    mix = mix[: args.n]
    statuses: dict[str, int] = {}
    for text in mix:
        status = parse_reply(text, constraints).status
        statuses[status] = statuses.get(status, 0) + 1
    load = machine()
    mix_rate, mix_best = rates(lambda t: parse_reply(t, constraints), mix, args.repeats)
    rows = [["mix of every reply form", mix_rate, mix_best, 1e6 / mix_rate, "-", "-", "-"]]

    song = json.loads(fixtures["strict_json.txt"])
    strict = [json.dumps(song), json.dumps(song, indent=2)] * (args.n // 2)
    ours, ours_best = rates(lambda t: parse_reply(t, constraints), strict, args.repeats)
    base, _ = rates(lambda t: checked_song(json.loads(t), constraints), strict, args.repeats)
    rows.append(["strict JSON", ours, ours_best, 1e6 / ours, "json.loads + checks", base, ours / base])

    literal = [fixtures["python_tuples.txt"]] * args.n
    ours, ours_best = rates(lambda t: parse_reply(t, constraints), literal, args.repeats)
    base, _ = rates(lambda t: checked_song(ast.literal_eval(t), constraints), literal, args.repeats)
    rows.append(["Python literal", ours, ours_best, 1e6 / ours, "ast.literal_eval + checks", base, ours / base])
    note = (f"constraint set {constraints.name}; {len(fixtures)} reply files; {args.n} replies per pass, median "
            f"(and best) of {args.repeats} passes (CPU time), ratios of medians; mix outcomes {statuses}; before: "
            f"{load}; after: {machine()}")
    write_table(args.table_dir, "parse", ["replies", "parse_reply /s (median)", "parse_reply /s (best)",
                                          "parse_reply µs (median)", "alternative", "alternative /s (median)",
                                          "ratio"], rows, note)

    per_file = [[name, *(1e6 / r for r in rates(lambda t: parse_reply(t, constraints), [text] * 500, args.repeats))]
                for name, text in fixtures.items()]
    write_table(args.table_dir, "parse_per_file", ["reply file", "parse_reply µs (median)", "parse_reply µs (best)"],
                per_file, f"per reply file, 500 parses each, {args.repeats} passes; {machine()}")


if __name__ == "__main__":
    main()
