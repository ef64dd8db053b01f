"""Training throughput on CPU, with data loading measured apart from the model step.

    python -m benchmarks.train_benchmark [--batches 30] [--batch-size 64] [--num-workers 0] [--threads N] \
        [--repeats 3] [train overrides ...]

Three timings over the same real training data (the CNN on the genre corpus, conf/train.yaml's
default experiment; any `python -m llmusic.train` override can follow, e.g.
`experiment=melody_completion_supervised scale=small` for the melody transformer):
  loader alone   iterate the DataLoader, no model;
  model alone    the module's training_step, backward and optimizer step on one batch held in memory;
  both           the real loop: loader then step.
If `both` is close to `model alone`, the loader is not the bottleneck. Each timing runs --repeats
times, in turns; table train.md/.csv: samples/s of the median and of the fastest run.
"""

from __future__ import annotations

import argparse
import itertools
import time

import torch
from hydra.utils import instantiate

from benchmarks.tables import add_table_dir, machine, spread, write_table
from llmusic.config import compose_config


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batches", type=int, default=30)
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--num-workers", type=int, default=0)
    parser.add_argument("--threads", type=int, default=None, help="torch intra-op threads (default: torch's)")
    parser.add_argument("--repeats", type=int, default=3, help="runs of each timing (median and fastest reported)")
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
            f"{args.batches} batches, {type(module.net).__name__} {sum(p.numel() for p in module.parameters()):,} "
            f"parameters, {len(data.train)} training samples; before: {machine()}")

    def step(batch) -> None:
        loss = module.training_step(batch, 0)  # outside a Trainer its self.log warns once and logs nothing
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()

    def batches():
        return itertools.islice(itertools.cycle(data.train_dataloader()), args.batches)

    def loader_alone() -> None:
        for _ in batches():
            pass

    held = next(iter(data.train_dataloader()))

    def model_alone() -> None:
        for _ in range(args.batches):
            step(held)

    def both() -> None:
        for batch in batches():
            step(batch)

    module.train()
    step(held)  # warm-up: workers, caches, first allocation
    timings: dict[str, list[float]] = {"loader alone": [], "model alone": [], "both": []}
    for _ in range(args.repeats):  # in turns, so a change of load hits all three alike
        for name, run in zip(timings, (loader_alone, model_alone, both)):
            t = time.perf_counter()
            run()
            timings[name].append(time.perf_counter() - t)
    model = spread(timings["model alone"])[1]
    write_table(args.table_dir, "train", ["timing", "samples/s (median)", "samples/s (fastest)",
                                          "seconds / model alone (medians)"],
                [[name, n / spread(t)[1], n / spread(t)[0], spread(t)[1] / model] for name, t in timings.items()],
                f"{note}; {args.repeats} runs each; after: {machine()}")


if __name__ == "__main__":
    main()
