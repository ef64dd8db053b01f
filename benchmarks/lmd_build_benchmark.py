"""Building the Lakh genre test set (lmd_topmagd's defaults), from scratch and from its roll cache.

    python -m benchmarks.lmd_build_benchmark [--repeats 3] [--table-dir runs/benchmarks]

Rows, each the median of `--repeats` builds (`hydra.utils.instantiate` of conf/dataset/lmd_topmagd.yaml):
  subset, from scratch      the 550 files of lmd_subset alone (the data set before issue 11), empty cache;
  combined, from scratch    lmd_subset and lmd_extra together (1,901 files, the default), empty cache;
  subset / combined, from cache    the same again, the roll cache in place;
  combined, dense cache     the alternative cache: the dense bit-packed rolls in a compressed .npz
                            (what the cache held before), loaded, no labels or splits applied.
`files/s` counts the files rolled (those labelled in some taxonomy). Table: lmd_build.md/.csv.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np
from hydra.utils import instantiate

from benchmarks.tables import add_table_dir, machine, write_table
from llmusic.config import compose_config
from llmusic.data.roll_store import SparseWindows


def build(cache_dir: Path, *overrides: str):
    cfg = compose_config("describe", ["dataset=lmd_topmagd", f"dataset.cache_dir={cache_dir}", *overrides])
    return instantiate(cfg.dataset)


def timed(repeats: int, job) -> tuple[float, object]:
    """Median seconds of `repeats` calls of job(i), and the last result."""
    seconds, result = [], None
    for i in range(repeats):
        start = time.perf_counter()
        result = job(i)
        seconds.append(time.perf_counter() - start)
    return statistics.median(seconds), result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3)
    add_table_dir(parser)
    args = parser.parse_args()
    subset = compose_config("describe", ["dataset=lmd_topmagd"]).dataset.root[0]  # the first default root
    sets = {"subset": [f"dataset.root={subset}"], "combined": []}
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for name, overrides in sets.items():
            fresh = [Path(tmp) / f"{name}-{i}" for i in range(args.repeats)]
            seconds, data = timed(args.repeats, lambda i: build(fresh[i], *overrides))
            with np.load(data.cache_path) as npz:
                files = len(npz["paths"])
            rows.append([f"{name}, from scratch", files, len(data.song_names), len(data), seconds, files / seconds])
            seconds, data = timed(args.repeats, lambda i: build(fresh[0], *overrides))
            assert data.cache_hit
            rows.append([f"{name}, from cache", files, len(data.song_names), len(data), seconds, files / seconds])
        # The alternative store: every window dense (bit-packed), compressed, as the cache held it before.
        with np.load(data.cache_path) as npz:
            stored = {k: npz[k] for k in npz.files}
        n_windows = len(stored["owner"])
        dense = Path(tmp) / "dense.npz"
        np.savez_compressed(dense, packed=SparseWindows(stored, n_windows, np.arange(n_windows), data.steps).dense(),
                            owner=stored["owner"], start=stored["start"], reason=stored["reason"], paths=stored["paths"])

        def load_dense(_):
            with np.load(dense) as npz:
                return {k: npz[k] for k in npz.files}
        seconds, _ = timed(args.repeats, load_dense)
        rows.append(["combined, dense cache (load only)", files, "-", n_windows, seconds, files / seconds])
        sizes = f"cache on disk: sparse {data.cache_path.stat().st_size / 1e6:.1f} MB, dense {dense.stat().st_size / 1e6:.1f} MB"
    write_table(args.table_dir, "lmd_build", ["build", "files rolled", "genre songs", "windows", "seconds", "files/s"],
                rows, note=f"median of {args.repeats}; {sizes}; {machine()}")


if __name__ == "__main__":
    main()
