"""Melody-completion ranking: scoring every (query, candidate) pair vs each distinct phrase once.

    python -m benchmarks.melody_ranking_benchmark [--queries 64] [--rounds 2]

Scores the first POP909 test queries (../shared/data) with an untrained scale=small transformer
(d_model 64) on one torch thread, two ways, alternating in the same run: `per_pair` (every
candidate's representation and context-free likelihood computed for every query, as before) and
`LitCompletion.score_candidates` (computed once per distinct phrase). Table melody_ranking.md/.csv:
seconds (best of the rounds) and the ratio; above it, the largest score difference (should be 0).
"""

from __future__ import annotations

import argparse
import time
from functools import partial

import torch
import torch.nn.functional as F
from hydra.utils import instantiate

from benchmarks.tables import add_table_dir, machine, write_table
from llmusic.config import compose_config
from llmusic.models.lit_completion import LitCompletion


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
    add_table_dir(parser)
    args = parser.parse_args()
    torch.set_num_threads(1)
    torch.manual_seed(0)
    queries = instantiate(compose_config("describe", ["dataset=melody_pop909"]).dataset)
    context = torch.as_tensor(queries.context[:args.queries])
    candidates = torch.as_tensor(queries.candidates[:args.queries])
    module = LitCompletion({"d_model": 64, "d_ff": 256}, partial(torch.optim.Adam)).eval()
    distinct = torch.unique(candidates.reshape(-1, candidates.shape[-1]), dim=0).shape[0]
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
    note = (f"{len(context)} queries x {candidates.shape[1]} candidates, {distinct} distinct phrases; best of "
            f"{args.rounds} rounds; largest score difference {diff:g}; {machine()}")
    write_table(args.table_dir, "melody_ranking", ["scoring", "seconds", "per_pair / this"],
                [[name, best[name], best["per_pair"] / best[name]] for name in ("per_pair", "distinct")], note)


if __name__ == "__main__":
    main()
