"""Helpers the tests share. Not a test module: fixtures live in conftest.py, and test modules
import only from here (and tests/fake_openai.py), never from one another."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from hydra.core.global_hydra import GlobalHydra
from hydra.core.hydra_config import HydraConfig
from hydra.utils import instantiate
from omegaconf import DictConfig, open_dict

from llmusic.config import REPO_ROOT, compose_config
from llmusic.constraints import ConstraintSet


def mutations(text: str, rng, n: int, max_edits: int, alphabet: str = "{}[](),:'\"0123456789-.e \n#/abcNnul"):
    """n copies of `text`, each with 1 to max_edits characters deleted, inserted or replaced (from
    `alphabet`): replies a model or a transport could garble."""
    for _ in range(n):
        chars = list(text)
        for _ in range(rng.randint(1, max_edits)):
            i = rng.randrange(len(chars))
            op = rng.random()
            if op < 0.4:
                del chars[i]
            elif op < 0.7:
                chars.insert(i, rng.choice(alphabet))
            else:
                chars[i] = rng.choice(alphabet)
        yield "".join(chars)


def official_file_notes(events) -> list[tuple[int, int, int, int]]:
    """(time, duration, pitch, velocity) of the notes the official writer's file holds for one part's
    events (pitch, duration, velocity, start), by its rules (../shared/reference/README.md): events
    sorted by start, each note-on max(0, start - end of the previous note as asked) after the
    previous note-off, lasting its duration; a note of velocity 0 is a note-off, so it is lost."""
    notes, now, asked_end = [], 0, 0
    for pitch, duration, velocity, start in sorted((tuple(e) for e in events), key=lambda e: e[3]):
        now += max(0, start - asked_end)
        if velocity > 0:
            notes.append((now, duration, pitch, velocity))
        now += duration
        asked_end = start + duration
    return notes


def shared_data_dir() -> Path:
    return Path(os.environ.get("LLMUSIC_SHARED_DATA", REPO_ROOT.parent / "shared" / "data")).resolve()


def compose_entry(name: str, *overrides: str, hydra: bool = False) -> DictConfig:
    """conf/<name>.yaml as `python -m llmusic.<name> <overrides>` sees it: Hydra's runtime config is
    set, so `${hydra:...}` resolves (a train run's name); `hydra=True` keeps the `hydra` node."""
    GlobalHydra.instance().clear()
    cfg = compose_config(name, overrides, return_hydra_config=True)
    HydraConfig.instance().set_config(cfg)
    if not hydra:
        with open_dict(cfg):
            del cfg.hydra
    return cfg


def constraint_set(name: str) -> ConstraintSet:
    """conf/constraints/<name>.yaml as the object the code gets."""
    return instantiate(compose_config(f"constraints/{name}").constraints)


def build_dataset(name: str, *overrides: str):
    """A data set from conf/dataset/<name>.yaml, composed as `python -m llmusic.data.describe` composes it."""
    return instantiate(compose_config("describe", [f"dataset={name}", *overrides]).dataset)


def run_generate(out_dir: Path, *overrides: str) -> dict:
    """`python -m llmusic.generate` into out_dir (its own reply cache inside), quietly; the summary."""
    from llmusic.generate import generate

    return generate(compose_config("generate", [f"out_dir={out_dir}", f"cache_dir={out_dir / 'cache'}",
                                                "progress=false", *overrides]))


# The pipeline, tiny: four prompt genres (mapping to three TOP-MAGD classes) and three styles (two
# map to MASD): 4 x 3 x 2 = 24 songs. The students see one epoch of two batches and two test batches.
TRAIN_TINY = ["trainer.max_epochs=1", "++trainer.limit_train_batches=2", "++trainer.limit_val_batches=1",
              "++trainer.limit_test_batches=2", "~callbacks.rich_progress_bar",
              "++trainer.enable_progress_bar=false", "++trainer.enable_model_summary=false"]
PIPELINE_TINY = ["taxonomy.genres=[Pop,Jazz,Country,Rock]", "taxonomy.styles=[Swing,Funky,Ballad]", "n_per_combo=2",
                 "progress=false", "threads=1", "train_overrides=[" + ",".join(f"'{o}'" for o in TRAIN_TINY) + "]"]


def run_multirun(workdir: Path, sweep_dir: Path, *overrides: str) -> subprocess.CompletedProcess:
    """`python -m llmusic.pipeline -m` in `workdir`, tiny, training the genre student only."""
    command = [sys.executable, "-m", "llmusic.pipeline", "-m", *PIPELINE_TINY, f"hydra.sweep.dir={sweep_dir}",
               "students.style=null", "students.melody=null", *overrides]
    env = {**os.environ, "PYTHONPATH": str(REPO_ROOT)}
    done = subprocess.run(command, check=False, cwd=workdir, env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    return done


def compose_train(overrides: list[str], output_dir: Path) -> DictConfig:
    """conf/train.yaml as `python -m llmusic.train <overrides>` sees it, writing to output_dir, on one
    torch thread (the test machines are shared, see `threads` in conf/train.yaml)."""
    return compose_entry("train", "threads=1", *overrides, f"paths.output_dir={output_dir}")
