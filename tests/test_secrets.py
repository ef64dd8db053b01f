"""No secret in any file (issue 12, item 5): a canary key passed every way a user might pass one is
refused before Hydra saves anything, or, passed the right way (the environment), reaches no file of
the output tree, its `.hydra/`, its log or the reply cache."""

from __future__ import annotations

import base64
import logging
import os
import subprocess
import sys
from pathlib import Path
from urllib.parse import urlsplit

import pytest

from llmusic.config import REPO_ROOT, ConfigError
from llmusic.generate import generate
from llmusic.secret_guard import find_secrets, quiet_http_logs, redact
from llmusic.train import train
from tests.fake_openai import FakeOpenAI
from tests.helpers import compose_entry

CANARY = "sk-canary-" + os.urandom(16).hex()
GRID = ["n_per_combo=1", "taxonomy.genres=[Pop]", "taxonomy.styles=[Swing,Ballad]"]


def files_holding_the_canary(*roots: Path) -> list[Path]:
    files = [p for root in roots if root.exists() for p in root.rglob("*") if p.is_file()]
    return [p for p in files if CANARY.encode() in p.read_bytes()]


def cli(module: str, *overrides: str, env: dict | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", module, *overrides], cwd=REPO_ROOT, capture_output=True, text=True,
                          timeout=300, env={**os.environ, "OPENAI_API_KEY": "sk-unused", **(env or {})})


@pytest.fixture(scope="module")
def server():
    with FakeOpenAI() as fake:
        yield fake


WRONG_WAYS = {  # how a key reached config.yaml and .hydra/*.yaml, or generate.log
    "an override of a new api_key": ("+llm.api_key={key}", "llm.api_key is a secret-like key"),
    "pasted into llm.api_key_env": ("llm.api_key_env={key}", "llm.api_key_env must name an environment variable"),
    "a base_url with user:password@": ("llm.base_url=http://me:{key}@127.0.0.1:{port}/v1",
                                       "llm.base_url holds a URL with credentials"),
    "any value that looks like a key": ("llm.model={key}", "llm.model holds text that looks like an API key"),
}


@pytest.mark.parametrize("way", list(WRONG_WAYS))
def test_a_key_in_the_config_is_refused_before_anything_is_saved(tmp_path, server, way):
    override, named = WRONG_WAYS[way]
    out = tmp_path / "run"
    done = cli("llmusic.generate", "llm=openai", f"llm.base_url={server.base_url}", f"out_dir={out}",
               f"cache_dir={tmp_path / 'cache'}", *GRID, override.format(key=CANARY, port=urlsplit(server.base_url).port))
    assert done.returncode == 2 and done.stderr.startswith("error: a secret in the config") and named in done.stderr
    assert "environment variable named by llm.api_key_env" in done.stderr and CANARY not in done.stderr
    assert not out.exists() and not (tmp_path / "cache").exists()  # no .hydra/, no log, no lock, no reply


def test_the_pipeline_refuses_a_key_in_its_sub_run_overrides(compose):
    """The pipeline registers the same guard (below); what it finds in a pipeline config:"""
    cfg = compose("pipeline", f"generate_overrides=['+llm.api_key={CANARY}']", hydra=True)
    assert find_secrets(cfg, list(cfg.hydra.overrides.task)) == [
        "generate_overrides[0] holds text that looks like an API key", "the override of generate_overrides holds a secret"]


def test_a_config_composed_without_the_command_line_is_refused_too(tmp_path):
    with pytest.raises(ConfigError, match="llm.api_key is a secret-like key") as err:
        generate(compose_entry("generate", "llm=openai", f"+llm.api_key={CANARY}", f"out_dir={tmp_path}", *GRID))
    assert CANARY not in str(err.value) and not (tmp_path / "manifest.jsonl").exists()


def test_a_train_run_composed_without_the_command_line_is_refused_too(tmp_path):
    """A pipeline cell composes its students' train runs from `train_overrides`: a secret-like key
    there (its value need not look like a key) reaches no config.yaml."""
    with pytest.raises(ConfigError, match="model.api_key is a secret-like key") as err:
        train(compose_entry("train", "+model.api_key=plain-words", f"paths.output_dir={tmp_path / 'run'}"))
    assert "plain-words" not in str(err.value) and not (tmp_path / "run").exists()


def test_every_entry_point_registers_the_guard(compose):
    for name in ("generate", "pipeline", "train", "describe", "analyze"):
        callbacks = compose(name, hydra=True).hydra.callbacks
        assert callbacks.secret_guard._target_ == "llmusic.secret_guard.SecretGuard", name
    assert not find_secrets(compose("pipeline", "preset=paper", hydra=True))  # no config of ours trips it


@pytest.mark.parametrize("where", ["llm.base_url", "OPENAI_BASE_URL"])
def test_a_key_from_the_environment_reaches_no_file(tmp_path, server, where):
    """The right way: the key in OPENAI_API_KEY (the server's URL in llm.base_url), or a server's
    credentials in the SDK's own OPENAI_BASE_URL (never in a config). Every file of the run, its
    .hydra/, its log and the cache is searched for the key (and for its Basic-auth form)."""
    out, cache = tmp_path / "run", tmp_path / "cache"
    server.requests.clear()
    if where == "llm.base_url":
        config, env = [f"llm.base_url={server.base_url}"], {"OPENAI_API_KEY": CANARY}
        sent = f"Bearer {CANARY}"
    else:
        config, env = [], {"OPENAI_BASE_URL": f"http://me:{CANARY}@127.0.0.1:{urlsplit(server.base_url).port}/v1"}
        sent = "Basic " + base64.b64encode(f"me:{CANARY}".encode()).decode()  # httpx sends URL credentials so
    done = cli("llmusic.generate", "llm=openai", f"out_dir={out}", f"cache_dir={cache}", *GRID, *config, env=env)
    assert done.returncode == 0, done.stderr[-2000:]
    headers = [{k.lower(): v for k, v in r["headers"].items()} for r in server.requests]
    assert sent in {h.get("authorization") for h in headers}  # it did travel: finding it in
    assert (out / ".hydra" / "config.yaml").is_file() and (out / "generate.log").is_file() and any(cache.iterdir())
    assert files_holding_the_canary(out, cache) == [] and CANARY not in done.stdout + done.stderr  # no file means
    assert not [p for p in out.rglob("*") if p.is_file() and sent.split()[1].encode() in p.read_bytes()]  # something


def test_logs_keep_http_requests_quiet_and_redact_what_they_write(caplog):
    quiet_http_logs()
    assert logging.getLogger("httpx").getEffectiveLevel() >= logging.WARNING
    assert redact(f"POST http://me:{CANARY}@host/v1 with {CANARY}") == "POST http://***@host/v1 with ***"
    handler = logging.StreamHandler(stream := __import__("io").StringIO())
    logging.getLogger().addHandler(handler)
    try:
        quiet_http_logs()
        logging.getLogger("llmusic.test").warning("retrying http://me:%s@host/v1", CANARY)
    finally:
        logging.getLogger().removeHandler(handler)
    assert stream.getvalue() == "retrying http://***@host/v1\n"
