"""Result files written whole and read with errors that name them; JSON lines that hold any text.

Every results file (a run's manifest and summary, a train run's metrics.json, a cell's cell.json)
is written to a temporary file beside it and renamed into place, so a reader - or a rerun after
kill -9 - sees the old file or the new one, never half of one. A file that still does not read (a
disk fault, a hand edit) raises `DamagedFile` naming it, instead of a JSONDecodeError that names
nothing.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import yaml
from omegaconf import DictConfig, OmegaConf


class DamagedFile(ValueError):
    """A results file that exists but does not read; the message names it and says what to do."""


def write_text_atomic(path: str | os.PathLike, text: str) -> None:
    path = Path(path)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    with open(tmp, "w", encoding="utf-8") as f:
        f.write(text)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)


def write_json_atomic(path: str | os.PathLike, obj: object) -> None:
    write_text_atomic(path, json.dumps(obj, indent=2))  # ASCII: any text, lone surrogates included


def read_json(path: str | os.PathLike, remedy: str = "delete it and rerun what wrote it") -> object:
    path = Path(path)
    try:
        return json.loads(path.read_bytes())
    except (ValueError, RecursionError) as err:  # JSONDecodeError, a UnicodeDecodeError, a huge number
        raise DamagedFile(f"{path} is damaged or cut short ({type(err).__name__}: {err}): {remedy}") from err


def read_yaml(path: str | os.PathLike, remedy: str = "delete it and rerun what wrote it") -> DictConfig:
    path = Path(path)
    try:
        return OmegaConf.load(path)
    except (yaml.YAMLError, ValueError, RecursionError, TypeError) as err:
        raise DamagedFile(f"{path} is damaged or cut short ({type(err).__name__}: {err}): {remedy}") from err


# Characters `str.splitlines` breaks lines at that JSON leaves raw inside strings (the ASCII ones
# it escapes itself): escaped too, so a reader splitting either way sees one record per line.
_SEPARATORS = {"\x85": "\\u0085", "\u2028": "\\u2028", "\u2029": "\\u2029"}


def json_line(obj: object) -> str:
    """One JSON line holding `obj` losslessly: UTF-8 text where it encodes, the escaped form where it
    does not (a lone UTF-16 surrogate from a reply, `\\ud800`) and for line separators, so writing it
    never raises and reading it back, by `\\n` or by `splitlines`, gives one line per record."""
    text = json.dumps(obj, ensure_ascii=False)
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return json.dumps(obj) + "\n"
    for raw, escaped in _SEPARATORS.items():
        text = text.replace(raw, escaped)
    return text + "\n"
