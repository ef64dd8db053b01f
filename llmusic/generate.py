"""Generate a song data set: python -m llmusic.generate [llm=baseline|replay|openai] [key=value ...].

Plans genre x style x n_per_combo songs (or a recording's lines), asks the configured backend,
parses, validates and renders every reply, and writes into `out_dir`:
  manifest.jsonl  one record per song (labels, status, reason, midi path, prompt, sampling,
                  every attempt, usage, cost)
  replies.jsonl   every raw reply text, one line per attempt that got one
  midi/<Genre>__<Style>/<index>.mid
  config.yaml     the resolved config (API keys are env-var names only, never values)
  summary.json    valid rates per genre and style, requests, attempts, tokens, cost, time
"""

from __future__ import annotations

import asyncio
import json
import os
from pathlib import Path

import hydra
from hydra.utils import instantiate
from omegaconf import DictConfig, OmegaConf

from llmusic.engine import Engine, PlannedSong, ReplyCache, plan_grid
from llmusic.engine.summary import print_summary, summarize
from llmusic.llm.base import Backend


def plan(cfg: DictConfig, backend: Backend) -> list[PlannedSong]:
    """The songs to make: a recording's own lines, or the taxonomy grid."""
    prompt, constraints = instantiate(cfg.prompt), instantiate(cfg.constraints)
    if hasattr(backend, "recorded_songs"):
        return backend.recorded_songs(prompt, constraints)
    tax = cfg.taxonomy
    return plan_grid(list(tax.genres), list(tax.styles), list(tax.moods), cfg.n_per_combo, prompt,
                     constraints, instantiate(cfg.sampling), cfg.seed)


def write_jsonl(path: Path, records: list[dict]) -> None:
    tmp = path.with_name(f".{path.name}.tmp")
    with open(tmp, "w") as f:
        for record in records:
            f.write(json.dumps(record, ensure_ascii=False) + "\n")
    os.replace(tmp, path)  # a reader never sees half a manifest


def generate(cfg: DictConfig) -> dict:
    """Run one generation and return its summary (also written to out_dir/summary.json)."""
    instantiate(cfg.prompt).check(instantiate(cfg.constraints))  # before anything is written or paid
    out_dir = Path(cfg.out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    OmegaConf.save(cfg, out_dir / "config.yaml", resolve=True)
    backend: Backend = instantiate(cfg.llm)
    songs = plan(cfg, backend)
    engine = Engine(
        backend, instantiate(cfg.constraints), out_dir, policy=cfg.parse.policy, max_attempts=cfg.max_attempts,
        cache=ReplyCache(cfg.cache_dir, cfg.cache_fsync) if backend.paid else None, prices=instantiate(cfg.prices),
        cache_only=cfg.cache_only, seed=cfg.sampling.seed, progress=cfg.progress,
    )

    async def run() -> list[dict]:
        try:
            return await engine.run(songs)
        finally:
            await backend.aclose()

    records = asyncio.run(run())
    write_jsonl(out_dir / "manifest.jsonl", records)
    summary = summarize(records, engine.stats, engine.identity, backend.is_llm)
    (out_dir / "summary.json").write_text(json.dumps(summary, indent=2))
    if cfg.progress:
        print_summary(summary)
    return summary


@hydra.main(config_path="../conf", config_name="generate", version_base="1.3")
def main(cfg: DictConfig) -> None:
    generate(cfg)


if __name__ == "__main__":
    main()
