"""A generate run's folder, and the one class that reads and writes it: `GenerateRun`.

    <out_dir>/config.yaml      the resolved generate config (API keys are env-var names, never values)
    <out_dir>/manifest.jsonl   one record per song: genre, style, mood, index, status, reason, midi
                               path, prompt, sampling, every attempt, usage, cost
    <out_dir>/replies.jsonl    every raw reply text, one line per attempt that got one
    <out_dir>/midi/<Genre>__<Style>/<index>.mid
    <out_dir>/summary.json     the setting (prompt and its template's sha256, parse policy, renderer,
                               which are the official code's), valid rates per genre and style,
                               requests, attempts, tokens, cost, time

`generate` and the engine write a run through `GenerateRun.rerun()`; the data sets, the analysis
and the pipeline read it through a `GenerateRun` (records, usable songs, the saved config, its
constraint set and taxonomy, the summary). A rerun writes its files beside the old ones (in
`.rerun/`) and moves them into place only once it is done, so a run killed at any moment leaves
either the old complete run or the new one: a move that a kill interrupted is finished by the next
`GenerateRun` opened on the folder, before anything is read (moves happen under the `.swap.lock`
file lock, so two openers never interleave them).

One process at a time writes a folder: `rerun()` holds the exclusive lock `<out_dir>/.lock`
(llmusic.lock) from before the first request to the last move, so a second `generate` on the same
folder stops at once with a message naming the holder (`wait=False`), and parallel pipeline cells
sharing a run wait for it and then reuse it (`locked()`, `wait=True`).
"""

from __future__ import annotations

import fcntl
import json
import os
import re
import shutil
from collections import Counter
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from functools import cached_property
from pathlib import Path

from hydra.utils import instantiate
from omegaconf import DictConfig, OmegaConf

from llmusic.config import finished_with
from llmusic.constraints import ConstraintSet
from llmusic.files import json_line, read_json, read_yaml, write_json_atomic, write_text_atomic
from llmusic.lock import exclusive

CONFIG, MANIFEST, REPLIES, MIDI, SUMMARY = "config.yaml", "manifest.jsonl", "replies.jsonl", "midi", "summary.json"
ARTEFACTS = (CONFIG, MIDI, REPLIES, MANIFEST, SUMMARY)  # what a rerun replaces, in the order it moves them
STAGING = ".rerun"  # a rerun's new files, until they are moved into place
COMMITTED = "COMMITTED"  # in STAGING: the new run is complete (its artefacts listed) and is being moved into place
LOCK = ".lock"  # held by the one process writing the run
SWAP_LOCK = ".swap.lock"  # held while a finished rerun's files are moved into place

VALID_STATUSES = ("ok", "repaired")  # parse outcomes that give a song (repaired: values were clamped or cut)


def valid_statuses(include_repaired: bool = True) -> tuple[str, ...]:
    return VALID_STATUSES if include_repaired else VALID_STATUSES[:1]


def rates_by(records: Iterable[dict], key: str, order: Sequence[str] | None = None,
             valid: Sequence[str] = VALID_STATUSES) -> dict[str, dict]:
    """value of `key` -> {songs, valid, valid_rate}, in `order` (default: as the values first appear)."""
    total, n_valid = Counter(), Counter()
    for r in records:
        total[str(r[key])] += 1
        n_valid[str(r[key])] += r["status"] in valid
    return {k: {"songs": total[k], "valid": n_valid[k], "valid_rate": n_valid[k] / total[k]}
            for k in (order if order is not None else total)}


def describe_setting(setting: dict) -> str:
    """A run's `setting` (summary.json: prompt, prompt_sha256, constraints, parse_policy, renderer,
    `official` per part, `official_mode`) in one line, e.g. "prompt paper (the official text,
    sha256 30261911de354b7b), parse.policy clamp (not the official reading), ...: not the official
    code's setting"."""
    official = setting["official"]
    verdict = "the official code's setting" if setting["official_mode"] else "not the official code's setting"
    return (f"prompt {setting['prompt']} ({'the' if official['prompt'] else 'not the'} official text, "
            f"sha256 {setting['prompt_sha256']}), "
            f"parse.policy {setting['parse_policy']} ({'the' if official['parse'] else 'not the'} official reading), "
            f"render {setting['renderer']} ({'the' if official['render'] else 'not the'} official writer), "
            f"constraints {setting['constraints']}: {verdict}")


def safe_name(text: str) -> str:
    """A label as a file name: 'Bossa Nova' -> 'Bossa_Nova', 'R&B/Soul' -> 'R_B_Soul'."""
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", text).strip("._") or "_"


def _json_records(path: Path) -> Iterator[dict]:
    """The JSON objects of a JSON-lines file; a line that is not one is skipped with a warning."""
    with open(path, encoding="utf-8") as f:
        for lineno, line in enumerate(f, 1):
            if not line.strip():
                continue
            try:
                record = json.loads(line)
            except (ValueError, RecursionError) as err:
                print(f"warning: {path}:{lineno} is not JSON ({type(err).__name__}); skipped")
                continue
            if isinstance(record, dict):
                yield record
            else:
                print(f"warning: {path}:{lineno} is not a record (a JSON object); skipped")


class GenerateRun:
    """The files of one generate run's `out_dir` (see the module docstring for the layout)."""

    def __init__(self, out_dir: str | os.PathLike) -> None:
        self.dir = Path(out_dir)
        self._finish_commit()

    def __repr__(self) -> str:
        return f"GenerateRun({str(self.dir)!r})"

    # --- reading ---------------------------------------------------------------------------------

    def exists(self) -> bool:
        return (self.dir / MANIFEST).is_file()

    def records(self) -> Iterator[dict]:
        """The manifest's records, in file order, one at a time. A line that is not JSON (a damaged
        file) is skipped with a warning naming it: the rest of the run is still usable."""
        path = self.dir / MANIFEST
        if not path.is_file():
            raise FileNotFoundError(f"no {MANIFEST} in {self.dir}: is it a generate run's out_dir?")
        return _json_records(path)

    def usable(self, include_repaired: bool = True) -> tuple[list[dict], Counter]:
        """The records of songs with a MIDI file and a valid status, and the others counted by status."""
        keep = valid_statuses(include_repaired)
        usable, excluded = [], Counter()
        for record in self.records():
            if record.get("status") in keep and record.get("midi"):
                usable.append(record)
            else:
                excluded[record.get("status")] += 1
        return usable, excluded

    def midi_path(self, record: dict) -> Path:
        return self.dir / record["midi"]

    def files(self, records: Iterable[dict]) -> list[Path]:
        """What a data set made of these records depends on: the manifest and their MIDI files."""
        return [self.dir / MANIFEST, *(self.midi_path(r) for r in records)]

    @cached_property
    def config(self) -> DictConfig:
        """The config the run saved when it was made (empty when it saved none)."""
        path = self.dir / CONFIG
        return read_yaml(path, "rerun the generate command") if path.is_file() else OmegaConf.create({})

    @property
    def constraints(self) -> ConstraintSet:
        """The constraint set the songs were asked for: it frames every data set made of them."""
        if self.config.get("constraints") is None:
            raise FileNotFoundError(f"{self.dir / CONFIG} names no constraint set: is {self.dir} a generate run?")
        return instantiate(self.config.constraints)

    @property
    def taxonomy(self) -> DictConfig:
        """The genres, styles and moods the run was asked for (empty when it saved no config)."""
        return self.config.get("taxonomy") or OmegaConf.create({})

    def classes(self, label: str) -> list[str]:
        """The run's own order of a label key's values: its saved taxonomy's `<label>s`, else the
        sorted values its records hold."""
        listed = self.taxonomy.get(f"{label}s")
        if listed is not None:
            return [str(c) for c in listed]
        return sorted({str(r[label]) for r in self.records() if r.get(label) is not None})

    def summary(self) -> dict:
        return read_json(self.dir / SUMMARY, "rerun the generate command (paid replies come from the cache)")

    @property
    def setting(self) -> dict | None:
        """What made the run (summary.json's `setting`, see `describe_setting`); None when its
        summary records none (a run made before runs recorded it, or none written yet)."""
        return self.summary().get("setting") if (self.dir / SUMMARY).is_file() else None

    def finished_with(self, cfg: DictConfig, ignore: Sequence[str] = ()) -> bool:
        """Whether the run in this folder was made with `cfg` (up to the `ignore` keys) and finished."""
        return finished_with(self.dir / CONFIG, self.dir / SUMMARY, cfg, ignore)

    def check_time_span(self, time_span_ticks: int | None, ticks_per_quarter: int | None) -> None:
        """Refuses a data set config that frames the run's songs differently from their constraint set
        (None: the config states nothing, the run's constraint set decides)."""
        cs = self.constraints
        span, tpq = time_span_ticks or cs.time_span_ticks, ticks_per_quarter or cs.ticks_per_quarter
        if span / tpq != cs.time_span_ticks / cs.ticks_per_quarter:
            raise ValueError(
                f"{self.dir} was generated under constraint set {cs.name!r} (time_span_ticks={cs.time_span_ticks} "
                f"at ticks_per_quarter={cs.ticks_per_quarter}), but this config frames its songs with "
                f"time_span_ticks={span} at ticks_per_quarter={tpq}: set constraints={cs.name} "
                f"(constraints.time_span_ticks and constraints.ticks_per_quarter, which every data set's "
                f"time_span_ticks and ticks_per_quarter follow) so train and test windows span what the songs span")

    @contextmanager
    def locked(self, wait: bool = True) -> Iterator[None]:
        """Holds the folder's exclusive lock (see the module docstring); `wait=False`: llmusic.lock.Busy
        at once, naming the holder, when another process has it."""
        with exclusive(self.dir / LOCK, f"the generate run {self.dir}", wait):
            yield

    # --- writing ---------------------------------------------------------------------------------

    @contextmanager
    def rerun(self, wait: bool = False) -> Iterator[GenerateRun]:
        """A GenerateRun to write the new run into, beside this one; its files replace this run's
        when the block ends without an error, and are dropped (the old run kept) when it does not.
        The folder's lock is held throughout (`wait`: as in `locked`)."""
        with self.locked(wait):
            self._finish_commit()  # a rerun killed while moving files in: finished before it is replaced
            staging = self.dir / STAGING
            shutil.rmtree(staging, ignore_errors=True)  # an earlier rerun that never finished: never the run
            staging.mkdir(parents=True)
            try:
                yield GenerateRun(staging)
            except BaseException:
                shutil.rmtree(staging, ignore_errors=True)
                raise
            written = [name for name in ARTEFACTS if (staging / name).exists()]
            write_text_atomic(staging / COMMITTED, json.dumps(written))
            self._finish_commit()

    def _finish_commit(self) -> None:
        """Moves a finished rerun's files into place (again after a kill: every step can be redone).
        An artefact the new run did not write (no song gave MIDI) retires the old one all the same."""
        if not (self.dir / STAGING / COMMITTED).exists():
            return
        with open(self.dir / SWAP_LOCK, "a") as handle:
            fcntl.flock(handle, fcntl.LOCK_EX)  # moves take milliseconds: a second opener waits them out
            staging = self.dir / STAGING
            if not (staging / COMMITTED).exists():
                return  # the opener that held the lock finished the moves
            written = set(json.loads((staging / COMMITTED).read_text()))
            retired = staging / "retired"  # the old files, deleted once every new one is in place
            retired.mkdir(exist_ok=True)
            for name in ARTEFACTS:
                if (staging / name).exists() or name not in written:
                    if (self.dir / name).exists():
                        os.replace(self.dir / name, retired / name)
                    if (staging / name).exists():
                        os.replace(staging / name, self.dir / name)
            shutil.rmtree(staging, ignore_errors=True)

    def save_config(self, cfg: DictConfig) -> None:
        OmegaConf.save(cfg, self.dir / CONFIG, resolve=True)

    @contextmanager
    def replies(self) -> Iterator[Callable[[dict], None]]:
        """A function that appends one raw reply record to replies.jsonl (any text, losslessly)."""
        with open(self.dir / REPLIES, "w", encoding="utf-8") as f:
            yield lambda record: f.write(json_line(record))

    def reply_records(self) -> Iterator[dict]:
        """The raw reply records of replies.jsonl, in the order they were written (a damaged line
        skipped with a warning, as in `records`)."""
        return _json_records(self.dir / REPLIES)

    def midi_file(self, genre: str | None, style: str | None, index: int) -> tuple[str, Path]:
        """Where a song's MIDI file goes: its manifest path (relative to the run) and its full path."""
        rel = f"{MIDI}/{safe_name(genre or '_')}__{safe_name(style or '_')}/{index}.mid"
        path = self.dir / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        return rel, path

    def write_manifest(self, records: Iterable[dict]) -> None:
        with open(self.dir / MANIFEST, "w", encoding="utf-8") as f:
            for record in records:
                f.write(json_line(record))

    def write_summary(self, summary: dict) -> None:
        write_json_atomic(self.dir / SUMMARY, summary)
