"""Melody-completion ranking: scoring every (query, candidate) pair vs each distinct phrase once.

    python benchmarks/melody_ranking_benchmark.py [--queries 64] [--rounds 2]

Scores the first POP909 test queries (../shared/data) with an untrained scale=small transformer
(d_model 64) on one torch thread, two ways, alternating in the same run: `per_pair` (every
candidate's representation and context-free likelihood computed for every query, as before) and
`LitCompletion.score_candidates` (computed once per distinct phrase). Prints seconds, the ratio and
the largest score difference (should be 0).
"""

from __future__ import annotations

import argparse
import sys
import time
from functools import partial
from pathlib import Path

import torch
import torch.nn.functional as F
from hydra import compose, initialize_config_dir
from hydra.utils import instantiate

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from llmusic.models.lit_completion import LitCompletion  # noqa: E402


def per_pair(module: LitCompletion, context: torch.Tensor, candidates: torch.Tensor) -> dict[str, torch.Tensor]:
    """The obvious alternative: nothing shared between queries."""
    b, n, t = candidates.shape
    flat, net = candidates.reshape(b * n, t), module.net
    generated = net.represent(net.generate(context, t))
    candidate = net.represent(flat).view(b, n, -1)
    likelihood = module._likelihood(context, flat).view(b, n)
    prior = module._likelihood(torch.full_like(context, net.config.pad_id), flat).view(b, n)
    return {"cosine": F.cosine_similarity(generated.unsqueeze(1), candidate, dim=-1),
            "likelihood": likelihood, "pmi": likelihood - prior}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--queries", type=int, default=64)
    parser.add_argument("--rounds", type=int, default=2)
    args = parser.parse_args()
    torch.set_num_threads(1)
    torch.manual_seed(0)
    with initialize_config_dir(config_dir=str(REPO / "conf"), version_base="1.3"):
        queries = instantiate(compose("describe", overrides=["dataset=melody_pop909"]).dataset)
    context = torch.as_tensor(queries.context[:args.queries])
    candidates = torch.as_tensor(queries.candidates[:args.queries])
    module = LitCompletion({"d_model": 64, "d_ff": 256}, partial(torch.optim.Adam)).eval()
    distinct = torch.unique(candidates.reshape(-1, candidates.shape[-1]), dim=0).shape[0]
    print(f"{len(context)} queries x {candidates.shape[1]} candidates, {distinct} distinct phrases")
    times: dict[str, list[float]] = {"per_pair": [], "distinct": []}
    results: dict[str, dict[str, torch.Tensor]] = {}
    with torch.no_grad():
        for _ in range(args.rounds):  # alternate, so a change of load hits both alike
            for name, score in (("per_pair", partial(per_pair, module)), ("distinct", module.score_candidates)):
                start = time.perf_counter()
                results[name] = score(context, candidates)
                times[name].append(time.perf_counter() - start)
    diff = max(float((results["per_pair"][k] - results["distinct"][k]).abs().max()) for k in results["per_pair"])
    best = {k: min(v) for k, v in times.items()}
    print(f"per_pair {best['per_pair']:.2f} s, distinct {best['distinct']:.2f} s, "
          f"ratio {best['per_pair'] / best['distinct']:.2f}x, largest score difference {diff:g}")


if __name__ == "__main__":
    main()
