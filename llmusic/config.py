"""Where the repository is and how its configs are composed: the core every module may import.

Relative paths in configs (`../shared/data`, a run's `out_dir` handed to a data set) are taken from
the repository root, so a command means the same from any working directory. Sub-configs (the
pipeline's generate and train runs, the tests' fixtures) are composed here with Hydra's compose API
exactly as their `python -m llmusic.<name>` entry point composes them.
"""

from __future__ import annotations

import hashlib
import os
import re
import sys
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path

from hydra import compose, initialize_config_dir
from hydra.core.global_hydra import GlobalHydra
from omegaconf import DictConfig, OmegaConf

from llmusic.constraints import melody_phrase_bars
from llmusic.files import DamagedFile, read_yaml

REPO_ROOT = Path(__file__).resolve().parents[1]
CONF_DIR = REPO_ROOT / "conf"

# Configs that frame melody phrases by a constraint set's span (conf/experiment/melody_completion_llm.yaml).
OmegaConf.register_new_resolver("llmusic.melody_phrase_bars", melody_phrase_bars, replace=True)


def short_sha256(data: bytes) -> str:
    """16 hex digits of sha256: enough to tell contents apart, short enough for a config or a log."""
    return hashlib.sha256(data).hexdigest()[:16]


def file_sha256(path: str) -> str:
    """`short_sha256` of a file's bytes ("missing" where there is none): a config that names a file
    by its path alone would look the same after the file changed."""
    file = Path(os.path.expanduser(str(path)))
    return short_sha256(file.read_bytes()) if file.is_file() else "missing"


OmegaConf.register_new_resolver("llmusic.file_sha256", file_sha256, replace=True)


class UserError(Exception):
    """Something the user fixes (a config value, a folder another process holds): the message says
    what and where; entry points print it as one line and exit with status 2, without a traceback."""


class ConfigError(UserError, ValueError):
    """A config value that cannot work; the message names the key and the value."""


@contextmanager
def user_errors_exit() -> Iterator[None]:
    """Around an entry point's work: a UserError (also one raised while Hydra built an object from
    the config) is printed as `error: <message>` and ends the process with status 2."""
    try:
        yield
    except Exception as error:  # noqa: BLE001 - re-raised unless it is the user's to fix
        cause: BaseException | None = error
        where = ""  # the config key of the object Hydra was building, when it says
        while cause is not None and not isinstance(cause, UserError):
            where = where or "".join(re.findall(r"full_key: (\S+)", str(cause))[:1])
            cause = cause.__cause__
        if cause is None:
            raise
        print(f"error: {cause}{f' (building {where})' if where else ''}", file=sys.stderr)
        sys.exit(2)


def resolve_path(path: str | os.PathLike) -> Path:
    """A relative path is taken from the repository root, so `../shared/data` works from any cwd."""
    path = Path(os.path.expanduser(str(path)))
    return (path if path.is_absolute() else REPO_ROOT / path).resolve()


def existing_path(path: str | os.PathLike, key: str) -> Path:
    """`path` resolved as `resolve_path` does; a ConfigError naming `key` and the path when it is missing."""
    resolved = resolve_path(path)
    if not resolved.exists():
        shown = str(path) if str(path) == str(resolved) else f"{path} (resolved: {resolved})"
        raise ConfigError(f"{key}={shown}: no such file or folder")
    return resolved


def compose_config(name: str, overrides: Sequence[str] = (), return_hydra_config: bool = False) -> DictConfig:
    """conf/<name>.yaml composed with Hydra's compose API, inside a running Hydra app or not."""
    if GlobalHydra.instance().is_initialized():
        return compose(config_name=name, overrides=list(overrides), return_hydra_config=return_hydra_config)
    with initialize_config_dir(config_dir=str(CONF_DIR), version_base="1.3"):
        return compose(config_name=name, overrides=list(overrides), return_hydra_config=return_hydra_config)


def finished_with(saved_config: Path, result: Path, cfg: DictConfig, ignore: Sequence[str] = ()) -> bool:
    """Whether a run finished with `cfg`: it saved its config (resolved) and then its `result` file,
    and that config is `cfg` up to the top-level `ignore` keys."""
    if not (saved_config.is_file() and result.is_file()) or result.stat().st_mtime_ns < saved_config.stat().st_mtime_ns:
        return False
    try:
        old = OmegaConf.to_container(read_yaml(saved_config))
    except DamagedFile:
        return False  # a config that does not read is a run to make again
    new = OmegaConf.to_container(cfg, resolve=True)
    for key in ignore:
        old.pop(key, None)
        new.pop(key, None)
    return old == new
