"""Generate a song data set: python -m llmusic.generate [llm=baseline|replay|openai] [key=value ...].

Plans genre x style x n_per_combo songs (or a recording's lines), asks the configured backend,
reads every reply under `parse.policy`, writes each song with the `render` renderer and writes
the run into `out_dir` through `llmusic.run_dir.GenerateRun` (which documents the files: a
manifest record per song, the raw replies, MIDI files, the saved config and a summary that names
the setting). A rerun replaces the folder's run only once it is done, so a killed rerun leaves
the earlier run whole. `preset=official` is the paper's official code: its prompt, its reading
of a reply and its MIDI writer (conf/preset/official.yaml).
"""

from __future__ import annotations

import asyncio

import hydra
from hydra.utils import instantiate
from omegaconf import DictConfig

from llmusic.engine import Engine, ReplyCache, plan_songs
from llmusic.engine.summary import generation_setting, print_summary, summarize
from llmusic.llm.base import Backend
from llmusic.midi.render import Renderer
from llmusic.parse import check_policy
from llmusic.run_dir import GenerateRun


def generate(cfg: DictConfig) -> dict:
    """Run one generation into cfg.out_dir and return its summary (also saved in the run)."""
    prompt, constraints = instantiate(cfg.prompt), instantiate(cfg.constraints)
    prompt.check(constraints)  # before anything is written or paid
    check_policy(cfg.parse.policy, constraints)
    renderer: Renderer = instantiate(cfg.render)
    backend: Backend = instantiate(cfg.llm)
    songs = plan_songs(backend, prompt, constraints, cfg.taxonomy, cfg.n_per_combo, instantiate(cfg.sampling),
                       cfg.seed)
    with GenerateRun(cfg.out_dir).rerun() as run:
        run.save_config(cfg)
        engine = Engine(
            backend, constraints, run, policy=cfg.parse.policy, renderer=renderer, max_attempts=cfg.max_attempts,
            cache=ReplyCache(cfg.cache_dir, cfg.cache_fsync) if backend.paid else None,
            prices=instantiate(cfg.prices), cache_only=cfg.cache_only, seed=cfg.sampling.seed, progress=cfg.progress,
        )

        async def ask() -> list[dict]:
            try:
                return await engine.run(songs)
            finally:
                await backend.aclose()

        records = asyncio.run(ask())
        run.write_manifest(records)
        summary = summarize(records, engine.stats, engine.identity, backend.is_llm,
                            generation_setting(prompt, constraints, cfg.parse.policy, renderer))
        run.write_summary(summary)
    if cfg.progress:
        print_summary(summary)
    return summary


@hydra.main(config_path="../conf", config_name="generate", version_base="1.3")
def main(cfg: DictConfig) -> None:
    generate(cfg)


if __name__ == "__main__":
    main()
