"""Generate a song data set: python -m llmusic.generate [llm=baseline|replay|openai] [key=value ...].

Plans genre x style x n_per_combo songs (or a recording's lines), asks the configured backend,
reads every reply under `parse.policy`, writes each song with the `render` renderer and writes
the run into `out_dir` through `llmusic.run_dir.GenerateRun` (which documents the files: a
manifest record per song, the raw replies, MIDI files, the saved config and a summary that names
the setting). A rerun replaces the folder's run only once it is done, so a killed rerun leaves
the earlier run whole. `preset=official` is the paper's official code: its prompt, its reading
of a reply and its MIDI writer (conf/preset/official.yaml).

The config is checked before anything is built, asked or written (`check_config`: the key and the
value of what is wrong). One process at a time holds `out_dir` and the reply cache: a second one
stops with a message naming the holder (or waits for it with `wait_for_lock=true`, as pipeline
cells sharing a run do). A user's error ends the command with one `error:` line and status 2.
"""

from __future__ import annotations

import asyncio
from contextlib import nullcontext

import hydra
from hydra.utils import instantiate
from omegaconf import DictConfig, ListConfig, OmegaConf

from llmusic.config import CONF_DIR, ConfigError, user_errors_exit
from llmusic.engine import Engine, ReplyCache, plan_songs
from llmusic.engine.summary import generation_setting, print_summary, summarize
from llmusic.llm.base import Backend
from llmusic.midi.render import Renderer
from llmusic.parse import check_policy
from llmusic.run_dir import GenerateRun
from llmusic.secret_guard import check_no_secrets


def _count(cfg: DictConfig, key: str, least: int) -> None:
    value = OmegaConf.select(cfg, key)
    if isinstance(value, bool) or not isinstance(value, int) or value < least:
        raise ConfigError(f"{key} must be an integer >= {least}, got {value!r}")


def _names(cfg: DictConfig, key: str, known: list[str] | None) -> None:
    value = OmegaConf.select(cfg, key)
    if not isinstance(value, ListConfig) or not value or not all(isinstance(v, str) and v.strip() for v in value):
        raise ConfigError(f"{key} must be a non-empty list of names, got {value!r}")
    if len(set(value)) < len(value):
        raise ConfigError(f"{key} names a class twice: {list(value)}")
    unknown = [v for v in value if known is not None and v not in known]
    if unknown:
        raise ConfigError(f"{key}: {unknown} not in taxonomy {cfg.taxonomy.name!r} (conf/taxonomy/"
                          f"{cfg.taxonomy.name}.yaml: {known}); to prompt with names of your own, also set "
                          f"taxonomy.name to a new name")


def check_config(cfg: DictConfig) -> None:
    """ConfigError, naming the key and the value, for a generate config that cannot give the run it
    describes (or that holds a secret: named by its key only); paths a backend reads are checked where
    it is built."""
    check_no_secrets(cfg)
    _count(cfg, "n_per_combo", 1)
    _count(cfg, "max_attempts", 1)
    _count(cfg, "seed", 0)
    listed = CONF_DIR / "taxonomy" / f"{cfg.taxonomy.name}.yaml"
    taxonomy = OmegaConf.load(listed) if listed.is_file() else {}
    for kind in ("genres", "styles", "moods"):
        known = taxonomy.get(kind)
        _names(cfg, f"taxonomy.{kind}", list(known) if known is not None else None)


def generate(cfg: DictConfig) -> dict:
    """Run one generation into cfg.out_dir and return its summary (also saved in the run)."""
    check_config(cfg)
    prompt, constraints = instantiate(cfg.prompt), instantiate(cfg.constraints)
    prompt.check(constraints)  # before anything is written or paid
    try:
        check_policy(cfg.parse.policy, constraints)
    except ValueError as err:
        raise ConfigError(str(err)) from err
    renderer: Renderer = instantiate(cfg.render)
    backend: Backend = instantiate(cfg.llm)
    songs = plan_songs(backend, prompt, constraints, cfg.taxonomy, cfg.n_per_combo, instantiate(cfg.sampling),
                       cfg.seed)
    cache = ReplyCache(cfg.cache_dir, cfg.cache_fsync) if backend.paid else None
    with GenerateRun(cfg.out_dir).rerun(wait=cfg.wait_for_lock) as run, \
            cache.locked(wait=cfg.wait_for_lock) if cache is not None else nullcontext():
        run.save_config(cfg)
        engine = Engine(
            backend, constraints, run, policy=cfg.parse.policy, renderer=renderer, max_attempts=cfg.max_attempts,
            cache=cache,
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
                            generation_setting(prompt, constraints, cfg.parse.policy, renderer),
                            cache.damaged if cache is not None else None)
        run.write_summary(summary)
    if cfg.progress:
        print_summary(summary)
    return summary


@hydra.main(config_path="../conf", config_name="generate", version_base="1.3")
def main(cfg: DictConfig) -> None:
    with user_errors_exit():
        generate(cfg)


if __name__ == "__main__":
    main()
