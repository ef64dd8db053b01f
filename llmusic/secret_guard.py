"""No secret in any file: keys come only from the environment, never from a config.

An API key is read only from the environment variable that `llm.api_key_env` names. `SecretGuard`,
a Hydra callback every entry point's config registers, runs before Hydra saves anything (its
`.hydra/` folder, the job's log) and refuses a config - one error line, exit status 2 - that
holds a secret: a key whose name is secret-like (`api_key`, `token`, `password`, ...), an `*_env`
key whose value is not a variable name (a key pasted in its place), a value that looks like a key
(`sk-...`, `hf_...`, ...) anywhere, or a URL with credentials (`https://user:password@host`). The
message names the key, never the value. `find_secrets` is the same check for configs composed
without Hydra's command line (the pipeline's sub-runs, tests), which `generate` and `train` apply too.

Logs: `quiet_http_logs()` keeps the HTTP client's request logging at WARNING (at INFO it writes
every request URL to the job's log) and redacts URL credentials and key-like text in every record
the root logger's handlers write.
"""

from __future__ import annotations

import logging
import re
import sys
from collections.abc import Iterator
from typing import Any

from hydra.experimental.callback import Callback
from omegaconf import DictConfig, OmegaConf

from llmusic.config import ConfigError

SECRET_NAME = re.compile(r"(?i)^(?:.*[_-])?(?:api[_-]?key|apikey|secret(?:[_-]key)?|password|passwd|token|"
                         r"access[_-]token|auth[_-]token|bearer|credentials?)$")
ENV_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
KEY_LIKE = re.compile(r"\b(?:sk-[A-Za-z0-9_-]{16,}|rk-[A-Za-z0-9_-]{16,}|hf_[A-Za-z0-9]{20,}|gsk_[A-Za-z0-9]{20,}|"
                      r"xai-[A-Za-z0-9]{20,}|AIza[0-9A-Za-z_-]{30,}|gh[pousr]_[A-Za-z0-9]{30,}|"
                      r"github_pat_[A-Za-z0-9_]{30,})")
URL_CREDENTIALS = re.compile(r"(\b[A-Za-z][A-Za-z0-9+.-]*://)[^/\s@:]*:[^/\s@]*@")
HTTP_LOGGERS = ("httpx", "httpx2", "httpcore", "openai")


def redact(text: str) -> str:
    """`text` with URL credentials and key-like strings replaced by `***`."""
    return KEY_LIKE.sub("***", URL_CREDENTIALS.sub(r"\1***@", text))


def _leaves(node: Any, path: str = "") -> Iterator[tuple[str, Any]]:
    """(dotted key, value as written) of every leaf of a plain container."""
    if isinstance(node, dict):
        for key, value in node.items():
            yield from _leaves(value, f"{path}.{key}" if path else str(key))
    elif isinstance(node, list):
        for i, value in enumerate(node):
            yield from _leaves(value, f"{path}[{i}]")
    else:
        yield path, node


def _resolved(cfg: DictConfig, key: str, raw: Any) -> Any:
    """What an interpolation resolves to (an `${oc.env:...}` can carry a key), or None."""
    if not (isinstance(raw, str) and "${" in raw):
        return None
    try:
        return OmegaConf.select(cfg, key, throw_on_missing=False)
    except Exception:  # noqa: BLE001 - a `${hydra:...}` outside a run: nothing to check
        return None


def find_secrets(cfg: DictConfig, overrides: list[str] | tuple[str, ...] = ()) -> list[str]:
    """What in a config (and in its command-line overrides) holds a secret, by key: never the value."""
    found = []
    plain = OmegaConf.to_container(cfg, resolve=False)
    plain.pop("hydra", None)
    for key, raw in _leaves(plain):
        name = key.rsplit(".", 1)[-1].split("[")[0]
        values = [v for v in (raw, _resolved(cfg, key, raw)) if isinstance(v, str) and v]
        if values and SECRET_NAME.match(name):
            found.append(f"{key} is a secret-like key")
        elif name.endswith("_env") and values and not ENV_NAME.match(values[-1]):
            found.append(f"{key} must name an environment variable, and holds {len(values[-1])} characters that "
                         "are not a variable name (a key pasted in its place?)")
        elif any(URL_CREDENTIALS.search(v) for v in values):
            found.append(f"{key} holds a URL with credentials (user:password@)")
        elif any(KEY_LIKE.search(v) for v in values):
            found.append(f"{key} holds text that looks like an API key")
    for override in overrides:
        key = override.split("=", 1)[0].lstrip("+~")
        value = override.split("=", 1)[-1] if "=" in override else ""
        name = key.rsplit(".", 1)[-1]
        if value and (SECRET_NAME.match(name) or KEY_LIKE.search(value) or URL_CREDENTIALS.search(value)) and \
                not any(f.startswith(f"{key} ") for f in found):
            found.append(f"the override of {key} holds a secret")
    return found


def refusal(found: list[str]) -> str:
    return ("a secret in the config would be saved with it (config.yaml, .hydra/, logs): " + "; ".join(found) +
            ". Nothing was run or saved. Keys are read only from the environment variable named by "
            "llm.api_key_env (e.g. `export OPENAI_API_KEY=...`); give a server's credentials the same way, "
            "not in a URL")


def check_no_secrets(cfg: DictConfig) -> None:
    """ConfigError (its message names the keys) when a config composed without Hydra's command line
    holds a secret."""
    found = find_secrets(cfg)
    if found:
        raise ConfigError(refusal(found))


class _Redact(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        clean = redact(message)
        if clean != message:
            record.msg, record.args = clean, ()
        return True


def quiet_http_logs() -> None:
    """HTTP request logging at WARNING, and every handler of the root logger redacting secrets."""
    for name in HTTP_LOGGERS:
        logger = logging.getLogger(name)
        logger.setLevel(max(logger.level, logging.WARNING))
    for handler in logging.getLogger().handlers:
        if not any(isinstance(f, _Redact) for f in handler.filters):
            handler.addFilter(_Redact())


class SecretGuard(Callback):
    """Refuses a config holding a secret before Hydra saves anything; quiets the HTTP logs of the job."""

    def _check(self, config: DictConfig) -> None:
        found = find_secrets(config, list(config.hydra.overrides.task))
        if found:
            print(f"error: {refusal(found)}", file=sys.stderr)
            sys.exit(2)

    def on_run_start(self, config: DictConfig, **kwargs: Any) -> None:
        self._check(config)

    def on_multirun_start(self, config: DictConfig, **kwargs: Any) -> None:
        self._check(config)

    def on_job_start(self, config: DictConfig, **kwargs: Any) -> None:
        quiet_http_logs()  # the job's log handlers exist now
