"""CNN training throughput on CPU, with data loading measured apart from the model step.

    python -m benchmarks.train_benchmark [--batches 30] [--batch-size 64] [--num-workers 0] [--threads N] \
        [train overrides ...]

Three timings over the same real training windows (the genre corpus, conf/train.yaml's default
experiment; any `python -m llmusic.train` override can follow):
  loader alone   iterate the DataLoader, no model;
  model alone    forward + backward + AdamW step on one batch held in memory;
  both           the real loop: loader then step.
If `both` is close to `model alone`, the loader is not the bottleneck. Table: train.md/.csv.
"""

from __future__ import annotations

import argparse
import itertools
import time

import torch
from hydra.utils import instantiate

from benchmarks.tables import add_table_dir, machine, write_table
from llmusic.config import compose_config


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batches", type=int, default=30)
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--num-workers", type=int, default=0)
    parser.add_argument("--threads", type=int, default=None, help="torch intra-op threads (default: torch's)")
    parser.add_argument("overrides", nargs="*", help="e.g. scale=small (narrow CNN) or experiment=...")
    add_table_dir(parser)
    args = parser.parse_args()

    cfg = compose_config("train", [f"data.batch_size={args.batch_size}", f"data.num_workers={args.num_workers}",
                                   "paths.output_dir=/tmp", *args.overrides])
    if args.threads:
        torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    data = instantiate(cfg.data)
    module = instantiate(cfg.model, **data.model_kwargs())
    optimizer = module.configure_optimizers()
    n = args.batches * args.batch_size
    note = (f"torch threads {torch.get_num_threads()}, batch {args.batch_size}, workers {args.num_workers}, "
            f"{args.batches} batches, CNN {sum(p.numel() for p in module.parameters()):,} parameters, "
            f"{len(data.train)} training windows; {machine()}")

    def step(batch) -> None:
        x, y, _ = batch
        loss = module.loss(module(x), y)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()

    def batches():
        return itertools.islice(itertools.cycle(data.train_dataloader()), args.batches)

    next(iter(data.train_dataloader()))  # warm-up: workers, caches, first allocation
    t = time.perf_counter()
    for _ in batches():
        pass
    loader = time.perf_counter() - t

    held = next(iter(data.train_dataloader()))
    module.train()
    step(held)  # warm-up
    t = time.perf_counter()
    for _ in range(args.batches):
        step(held)
    model = time.perf_counter() - t

    t = time.perf_counter()
    for batch in batches():
        step(batch)
    both = time.perf_counter() - t

    write_table(args.table_dir, "train", ["timing", "samples/s", "seconds / model alone"],
                [["loader alone", n / loader, loader / model], ["model alone", n / model, 1.0],
                 ["both", n / both, both / model]], note)


if __name__ == "__main__":
    main()
