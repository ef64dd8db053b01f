"""Engine throughput against a zero-latency loopback OpenAI server.

    python -m benchmarks.engine_benchmark [--n 1000] [--concurrency 1 8 64 256] [--repeat 3]

The fake server (tests/fake_openai.py) runs in its own process, so the client's CPU time is its
own. For each concurrency, three clients make the same n requests:
  sdk      the obvious alternative: AsyncOpenAI calls under an asyncio.Semaphore, nothing else
  backend  llmusic's OpenAIChat.complete_many (worker pool, retries, rate limiter, bookkeeping)
  engine   the whole engine: backend + cache write + parse + validate + MIDI render + manifest
Reported (table engine.md/.csv), median and best of --repeat runs: requests/s (wall) and client
CPU ms per request (process time / n): the overhead.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import openai
from hydra.utils import instantiate

from benchmarks.tables import add_table_dir, machine, spread, write_table
from llmusic.config import REPO_ROOT, compose_config
from llmusic.engine import Engine, ReplyCache, plan_grid
from llmusic.run_dir import VALID_STATUSES, GenerateRun

SERVER = ("import time; from tests.fake_openai import FakeOpenAI; s = FakeOpenAI(record=False).start(); "
          "print(s.base_url, flush=True); time.sleep(1e9)")


def compose_openai(base_url: str, concurrency: int):
    return compose_config("generate", ["llm=openai", f"llm.base_url={base_url}", f"llm.concurrency={concurrency}",
                                       "progress=false"])


def planned(cfg, n: int):
    tax = cfg.taxonomy
    per_pair = -(-n // (len(tax.genres) * len(tax.styles)))
    songs = plan_grid(list(tax.genres), list(tax.styles), list(tax.moods), per_pair, instantiate(cfg.prompt),
                      instantiate(cfg.constraints), instantiate(cfg.sampling), cfg.seed)
    return songs[:n]


async def run_sdk(cfg, songs) -> None:
    client = openai.AsyncOpenAI(base_url=cfg.llm.base_url, api_key="sk-bench", max_retries=0)
    gate = asyncio.Semaphore(cfg.llm.concurrency)

    async def one(song) -> str:
        async with gate:
            r = await client.chat.completions.create(
                model=cfg.llm.model, messages=list(song.messages), temperature=song.temperature,
                top_p=song.top_p, max_tokens=song.max_tokens)
            return r.choices[0].message.content

    await asyncio.gather(*(one(s) for s in songs))
    await client.close()


async def run_backend(cfg, songs) -> None:
    backend = instantiate(cfg.llm)
    async for _ in backend.complete_many([s.request(0, None, None) for s in songs]):
        pass
    await backend.aclose()


async def run_engine(cfg, songs) -> None:
    backend = instantiate(cfg.llm)
    out = Path(tempfile.mkdtemp(prefix="engine-bench-"))  # removed by main, outside the timing
    engine = Engine(backend, instantiate(cfg.constraints), GenerateRun(out), cache=ReplyCache(out / "cache"),
                    prices=instantiate(cfg.prices), progress=False)
    records = await engine.run(songs)
    assert all(r["status"] in VALID_STATUSES for r in records)
    await backend.aclose()


def measure(fn, cfg, songs, repeat: int = 1) -> list[float]:
    """Requests per second (median, best) and client CPU ms per request (median, best) of `repeat`
    runs: the machine is shared, so the spread says how much the load moved them."""
    walls, cpus = [], []
    for _ in range(repeat):
        cpu, wall = time.process_time(), time.perf_counter()
        asyncio.run(fn(cfg, songs))
        walls.append(time.perf_counter() - wall)
        cpus.append(1000 * (time.process_time() - cpu) / len(songs))
    fastest, median = spread(walls)
    return [len(songs) / median, len(songs) / fastest, spread(cpus)[1], spread(cpus)[0]]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--n", type=int, default=1000)
    parser.add_argument("--concurrency", type=int, nargs="+", default=[1, 8, 64, 256])
    parser.add_argument("--repeat", type=int, default=3, help="runs per cell (median and best reported)")
    add_table_dir(parser)
    args = parser.parse_args()
    os.environ.setdefault("OPENAI_API_KEY", "sk-bench")
    server = subprocess.Popen([sys.executable, "-c", SERVER], cwd=REPO_ROOT, stdout=subprocess.PIPE, text=True)
    rows = []
    try:
        base_url = server.stdout.readline().strip()
        note = (f"n={args.n} requests per run, median and best of {args.repeat}, server {base_url} (own process); "
                f"before: {machine()}")
        for concurrency in args.concurrency:
            cfg = compose_openai(base_url, concurrency)
            songs = planned(cfg, args.n)
            measure(run_sdk, cfg, songs[:50])  # warm the server's threads and the imports
            sdk_rate = None
            for name, fn in (("sdk", run_sdk), ("backend", run_backend), ("engine", run_engine)):
                measured = measure(fn, cfg, songs, args.repeat)
                sdk_rate = sdk_rate or measured[0]
                rows.append([concurrency, name, *measured, measured[0] / sdk_rate])
                print(f"concurrency {concurrency} {name}: {measured[0]:.0f} req/s (median)", flush=True)
    finally:
        server.kill()
        server.wait()
        for out in Path(tempfile.gettempdir()).glob("engine-bench-*"):
            shutil.rmtree(out)
    write_table(args.table_dir, "engine", ["concurrency", "client", "req/s (median)", "req/s (best)",
                                           "cpu ms/req (median)", "cpu ms/req (best)", "vs sdk (medians)"],
                rows, f"{note}; after: {machine()}")


if __name__ == "__main__":
    main()
