"""Melody-completion ranking of the demo's POP909 queries: today's code against the code before the
fast ranking (commit 8b03ced), in the same run.

    python -m benchmarks.melody_ranking_benchmark [--queries 616] [--rounds 3] [--checkpoint PATH]

The earlier code is taken from git (`git archive <baseline> llmusic` into a temp dir); each round
scores the same queries with the same weights in two fresh processes on one torch thread, the
earlier code first, then today's:
  earlier: `LitCompletion.score_candidates` one test batch of 8 queries at a time, as the demo's
           `test_batch_size: 8` ran it (no key/value cache, each batch on its own);
  today:   `LitCompletion.score_candidates` on all queries at once (passes sized by
           `score_memory_mb`, each distinct context, candidate and pair once).
Weights: a seeded `scale=small` transformer (d_model 64), or `--checkpoint` (a train run's
best.ckpt). Timed: the scoring call alone, wall and CPU seconds; peak RSS of each process. Then
the largest score difference per scoring and how many queries' true-candidate rank differs.
Table melody_ranking.md/.csv, rewritten after every round: min and median over the rounds so far, and
the ratio of the medians.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
from functools import partial
from pathlib import Path

import numpy as np
import torch
from hydra.utils import instantiate

from benchmarks.tables import add_table_dir, machine, write_table
from llmusic.config import REPO_ROOT, compose_config
from llmusic.eval.ranking import true_ranks
from llmusic.models.lit_completion import LitCompletion

BASELINE = "8b03ced"  # the last commit before the fast ranking
NET = {"d_model": 64, "d_ff": 256}  # conf/scale_model/small_melody_transformer.yaml

# Runs in a fresh process whose working directory holds the llmusic to time.
WORKER = """
import json, resource, sys, time
from functools import partial
import numpy as np, torch
from llmusic.models.lit_completion import LitCompletion
torch.set_num_threads(1)
folder, batch = sys.argv[1], int(sys.argv[2])
with np.load(f"{folder}/queries.npz") as npz:
    context, candidates = torch.as_tensor(npz["context"]), torch.as_tensor(npz["candidates"])
module = LitCompletion(json.loads(sys.argv[3]), partial(torch.optim.Adam))
module.load_state_dict(torch.load(f"{folder}/weights.pt"))
module.eval()
rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
wall, cpu = time.perf_counter(), time.process_time()
with torch.no_grad():
    parts = [module.score_candidates(context[i:i + batch], candidates[i:i + batch]) for i in range(0, len(context), batch)]
wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
np.savez(f"{folder}/scores_{sys.argv[4]}.npz", **{k: torch.cat([p[k] for p in parts]).numpy() for k in parts[0]})
print(json.dumps({"wall_s": wall, "cpu_s": cpu, "rss_before_mb": rss / 1024,
                  "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}))
"""


def weights(checkpoint: Path | None) -> dict[str, torch.Tensor]:
    """The module's state dict: a trained run's, or a seeded scale=small one."""
    if checkpoint is not None:
        return torch.load(checkpoint, map_location="cpu", weights_only=True)["state_dict"]
    torch.manual_seed(0)
    return LitCompletion(NET, partial(torch.optim.Adam)).state_dict()


def score(code: Path, folder: Path, batch: int, net: dict, name: str) -> dict:
    out = subprocess.run([sys.executable, "-c", WORKER, str(folder), str(batch), json.dumps(net), name],
                         cwd=code, capture_output=True, text=True, env={**os.environ, "PYTHONPATH": str(code)})
    if out.returncode:
        raise RuntimeError(f"the {name} scoring process failed:\n{out.stderr[-3000:]}")
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--queries", type=int, default=None, help="the first N queries (default: all 616)")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--checkpoint", type=Path, default=None, help="a melody train run's best.ckpt")
    parser.add_argument("--baseline", default=BASELINE, help="the git commit of the earlier code")
    add_table_dir(parser)
    args = parser.parse_args()
    queries = instantiate(compose_config("describe", ["dataset=melody_pop909"]).dataset)
    context, candidates = queries.context[:args.queries], queries.candidates[:args.queries]
    state = weights(args.checkpoint)
    net = {"d_model": state["net.token_embedding.weight"].shape[1], "d_ff": state["net.encoder.layers.0.linear1.weight"].shape[0]}
    load = [os.getloadavg()[0]]
    runs: dict[str, list[dict]] = {"earlier": [], "today": []}
    with tempfile.TemporaryDirectory(prefix="ranking_bench_") as tmp:
        folder, earlier = Path(tmp), Path(tmp) / "earlier"
        earlier.mkdir()
        # int64, as the data set's items are (its stored queries are uint8; the earlier code embeds them as given)
        np.savez(folder / "queries.npz", context=np.asarray(context, np.int64), candidates=np.asarray(candidates, np.int64))
        torch.save(state, folder / "weights.pt")
        archive = subprocess.run(["git", "archive", args.baseline, "llmusic"], cwd=REPO_ROOT, check=True,
                                 capture_output=True).stdout
        subprocess.run(["tar", "-x", "-C", str(earlier)], input=archive, check=True)
        for r in range(args.rounds):  # alternate, so a change of load hits both alike
            runs["earlier"].append(score(earlier, folder, 8, net, "earlier"))
            runs["today"].append(score(REPO_ROOT, folder, len(context), net, "today"))
            load.append(os.getloadavg()[0])
            print(f"round {r + 1}: " + ", ".join(f"{k} {v[-1]['wall_s']:.1f} s wall, {v[-1]['cpu_s']:.1f} s CPU"
                                                   for k, v in runs.items()), flush=True)
            # After every round, so a run stopped early (a busy shared machine) leaves its table.
            report(args, queries, folder, runs, load, net)


def report(args: argparse.Namespace, queries, folder: Path, runs: dict[str, list[dict]], load: list[float],
           net: dict) -> None:
    """The table of the rounds so far: min and median times, peak RSS, the score differences."""
    scores = {name: np.load(folder / f"scores_{name}.npz") for name in runs}
    n_queries = len(scores["today"][scores["today"].files[0]])
    true_index = torch.as_tensor(queries.true_index[:n_queries])
    diffs = {k: float(np.abs(scores["today"][k] - scores["earlier"][k]).max()) for k in scores["earlier"].files}
    rank_changes = {k: int((true_ranks(torch.as_tensor(scores["today"][k]), true_index)
                            != true_ranks(torch.as_tensor(scores["earlier"][k]), true_index)).sum())
                    for k in scores["earlier"].files}

    def stat(name: str, key: str, f) -> float:
        return f([run[key] for run in runs[name]])

    rows = [[name, stat(name, "wall_s", min), stat(name, "wall_s", statistics.median), stat(name, "cpu_s", min),
             stat(name, "cpu_s", statistics.median), stat(name, "peak_rss_mb", max),
             n_queries / stat(name, "wall_s", statistics.median)] for name in runs]
    rows.append(["earlier / today", *(a / b for a, b in zip(rows[0][1:5], rows[1][1:5])), "", ""])
    note = (f"{n_queries} POP909 queries x {queries.candidates.shape[1]} candidates; "
            f"{'checkpoint ' + str(args.checkpoint) if args.checkpoint else 'seeded weights'} (d_model "
            f"{net['d_model']}); earlier = {args.baseline} in test batches of 8, today = all at once; "
            f"{len(runs['today'])} of {args.rounds} rounds, 1 torch thread; largest score difference "
            + ", ".join(f"{k} {v:.1e}" for k, v in diffs.items())
            + "; queries whose true-candidate rank differs: " + ", ".join(f"{k} {v}" for k, v in rank_changes.items())
            + f"; load average {min(load):.1f}-{max(load):.1f} during the rounds; {machine()}")
    write_table(args.table_dir, "melody_ranking",
                ["code", "wall s (min)", "wall s (median)", "CPU s (min)", "CPU s (median)", "peak RSS MB",
                 "queries/s (median wall)"], rows, note)

if __name__ == "__main__":
    main()
