"""A run folder is changed atomically and by one process at a time (issue 12, item 2): kill -9 at
random points of a rerun, two `generate` processes on one folder or one cache, the config checked
before any work."""

from __future__ import annotations

import json
import multiprocessing
import os
import random
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from llmusic.config import REPO_ROOT, ConfigError
from llmusic.generate import generate
from llmusic.lock import Busy
from llmusic.pipeline import run_generation
from llmusic.run_dir import GenerateRun
from tests.fake_openai import FakeOpenAI
from tests.helpers import PIPELINE_TINY, compose_entry

KEY = "sk-test-" + os.urandom(12).hex()
ENV = {**os.environ, "OPENAI_API_KEY": KEY, "PYTHONPATH": str(REPO_ROOT)}
GRID = ["taxonomy.genres=[Pop,Jazz,Rock,Blues]", "taxonomy.styles=[Swing,Ballad]", "n_per_combo=4"]  # 32 songs


def command(*overrides: str) -> list[str]:
    return [sys.executable, "-m", "llmusic.generate", "progress=false", *overrides]


def whole_run(out: Path) -> tuple[int, int]:
    """(n_per_combo of the saved config, songs) of the run a reader sees, checked to be whole: every
    record's MIDI file exists and the summary and the config count the same songs."""
    run = GenerateRun(out)
    records = list(run.records())
    assert all(run.midi_path(r).is_file() for r in records if r["midi"]), "a record names a missing file"
    n = run.config.n_per_combo
    assert run.summary()["songs"] == len(records) == n * len(run.config.taxonomy.genres) * len(run.config.taxonomy.styles)
    assert sorted(p.relative_to(out).as_posix() for p in (out / "midi").rglob("*.mid")) == sorted(
        r["midi"] for r in records if r["midi"])  # and no file of another run is left beside them
    return n, len(records)


def test_kill_minus_9_at_random_points_of_a_rerun_leaves_a_whole_run(tmp_path):
    """A rerun used to delete midi/ at its start and replace the manifest at its end: a kill between
    left a manifest naming 1,323 deleted files. Now every kill leaves the old run or the new one."""
    out = tmp_path / "run"
    grid = ["taxonomy.styles=[Swing,Ballad,Waltz,March,Funky]", f"out_dir={out}"]  # 13 genres x 5 styles
    subprocess.run(command("n_per_combo=2", *grid), cwd=REPO_ROOT, env=ENV, check=True, timeout=120)
    start = time.monotonic()
    subprocess.run(command("n_per_combo=6", *grid), cwd=REPO_ROOT, env=ENV, check=True, timeout=120)
    full = time.monotonic() - start
    assert whole_run(out)[0] == 6
    rng, seen = random.Random(12), set()
    for attempt in range(5):
        n = (2, 3)[attempt % 2]  # every rerun changes the run, so the one a reader sees tells which
        proc = subprocess.Popen(command(f"n_per_combo={n}", *grid), cwd=REPO_ROOT, env=ENV,
                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        time.sleep(rng.uniform(0.3, 1.0) * full)
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        seen.add(whole_run(out)[0])
    assert seen <= {2, 3, 6}


@pytest.fixture()
def slow_server():
    """A server whose replies wait for `server.go` to be set: the first run holds its locks until then."""
    go = threading.Event()
    with FakeOpenAI(faults=lambda body, n: go.wait(120) and None) as server:
        server.go = go
        yield server
        go.set()


def openai_run(server: FakeOpenAI, out: Path, cache: Path, *extra: str) -> list[str]:
    return command("llm=openai", f"llm.base_url={server.base_url}", "llm.concurrency=4", f"out_dir={out}",
                   f"cache_dir={cache}", *GRID, *extra)


def start_and_wait_for_its_lock(cmd: list[str], lock: Path) -> subprocess.Popen:
    proc = subprocess.Popen(cmd, cwd=REPO_ROOT, env=ENV, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 60
    while not (lock.is_file() and lock.read_text()) and time.monotonic() < deadline:
        time.sleep(0.02)
    assert proc.poll() is None, proc.stderr.read()
    return proc


@pytest.mark.parametrize("shared", ["out_dir", "cache"])
def test_a_second_run_on_a_held_folder_or_cache_stops_naming_the_holder_and_pays_nothing(tmp_path, slow_server,
                                                                                          shared):
    """Two generate processes 1.5 s apart on one out_dir used to send 58 requests for 32 songs."""
    first = start_and_wait_for_its_lock(openai_run(slow_server, tmp_path / "a", tmp_path / "cache"),
                                        tmp_path / ("a" if shared == "out_dir" else "cache") / ".lock")
    second = subprocess.run(openai_run(slow_server, tmp_path / ("a" if shared == "out_dir" else "b"),
                                       tmp_path / "cache"),
                            cwd=REPO_ROOT, env=ENV, capture_output=True, text=True, timeout=120)
    slow_server.go.set()
    assert first.wait(timeout=120) == 0, first.stderr.read()
    assert second.returncode == 2 and "Traceback" not in second.stderr, second.stderr
    held = tmp_path / "a" if shared == "out_dir" else tmp_path / "cache"
    assert f"error: the {'generate run' if shared == 'out_dir' else 'reply cache'} {held} is in use by pid " \
           f"{first.pid} (holding it since " in second.stderr
    assert len(slow_server.calls("POST", "/v1/chat/completions")) == slow_server.paid == 32
    assert whole_run(tmp_path / "a") == (4, 32) and not (tmp_path / "b" / "manifest.jsonl").exists()


def test_with_wait_for_lock_the_second_run_waits_and_takes_every_reply_from_the_cache(tmp_path, slow_server):
    first = start_and_wait_for_its_lock(openai_run(slow_server, tmp_path / "a", tmp_path / "cache"),
                                        tmp_path / "a" / ".lock")
    second = subprocess.Popen(openai_run(slow_server, tmp_path / "a", tmp_path / "cache", "wait_for_lock=true"),
                              cwd=REPO_ROOT, env=ENV, stderr=subprocess.PIPE, text=True)
    waiting = second.stderr.readline()
    slow_server.go.set()
    assert first.wait(timeout=120) == 0 and second.wait(timeout=120) == 0, second.stderr.read()
    assert waiting.startswith(f"waiting for the generate run {tmp_path / 'a'}, in use by pid {first.pid}")
    assert slow_server.paid == 32 and json.loads((tmp_path / "a" / "summary.json").read_text())["cache_hits"] == 32


def pipeline_cell(overrides: list[str], results, stderr_fd: int | None = None) -> None:
    """A pipeline cell's generation stage in a forked process (imports inherited: no start-up cost)."""
    if stderr_fd is not None:
        sys.stderr = os.fdopen(stderr_fd, "w", buffering=1)
    results.put(run_generation(compose_entry("pipeline", *PIPELINE_TINY, *overrides)))


def test_pipeline_cells_sharing_a_run_wait_for_it_and_reuse_it(tmp_path, slow_server, monkeypatch):
    monkeypatch.setenv("OPENAI_API_KEY", KEY)
    fork = multiprocessing.get_context("fork")
    results = fork.Queue()
    cell = ["llm=openai", f"llm.base_url={slow_server.base_url}",
            f"generate_overrides=['out_dir={tmp_path / 'run'}','cache_dir={tmp_path / 'cache'}']"]
    first = fork.Process(target=pipeline_cell, args=(cell, results))
    first.start()
    while not (tmp_path / "run" / ".rerun").exists():  # the first cell is generating, holding the run
        assert first.is_alive()
        time.sleep(0.02)
    read, write = os.pipe()
    second = fork.Process(target=pipeline_cell, args=(cell, results, write))
    second.start()
    os.close(write)  # the child's copy stays open: a child that dies ends the read below
    with os.fdopen(read) as stderr:
        assert stderr.readline().startswith(f"waiting for the generate run {tmp_path / 'run'}, in use by pid ")
        slow_server.go.set()
        made, reused = results.get(timeout=120), results.get(timeout=120)
    first.join(), second.join()
    assert (made["reused"], reused["reused"]) == (False, True) and made["songs"] == reused["songs"] == 24
    assert slow_server.paid == 24


def test_the_lock_names_its_holder_waits_when_asked_and_is_reentrant(tmp_path):
    run = GenerateRun(tmp_path)
    holder = subprocess.Popen([sys.executable, "-c", "import sys, time\nfrom llmusic.run_dir import GenerateRun\n"
                               f"with GenerateRun({str(tmp_path)!r}).locked():\n    print('held', flush=True)\n"
                               "    time.sleep(1.5)"], cwd=REPO_ROOT, env=ENV, stdout=subprocess.PIPE, text=True)
    assert holder.stdout.readline() == "held\n"
    with pytest.raises(Busy, match=f"in use by pid {holder.pid} "):
        with run.rerun():
            pass
    start = time.monotonic()
    with run.locked(wait=True), run.rerun() as staged:  # waits out the holder; re-entrant within a process
        assert time.monotonic() - start > 0.5
        staged.write_summary({"songs": 0})
    assert run.summary() == {"songs": 0} and holder.wait(timeout=60) == 0


def existing(tmp_path: Path) -> Path:
    out = tmp_path / "run"
    generate(compose_entry("generate", "n_per_combo=1", "taxonomy.genres=[Pop]", f"out_dir={out}", "progress=false"))
    return out


@pytest.mark.parametrize("override,message", [
    ("n_per_combo=-1", "n_per_combo must be an integer >= 1, got -1"),
    ("n_per_combo=0", "n_per_combo must be an integer >= 1, got 0"),
    ("n_per_combo=1.5", "n_per_combo must be an integer >= 1, got 1.5"),
    ("max_attempts=0", "max_attempts must be an integer >= 1, got 0"),
    ("taxonomy.genres=[Pop,Jaz]", "taxonomy.genres: ['Jaz'] not in taxonomy 'paper'"),
    ("taxonomy.styles=[]", "taxonomy.styles must be a non-empty list of names, got []"),
    ("parse.policy=lenient", "parse.policy must be one of ('clamp', 'strict', 'official'), got 'lenient'"),
])
def test_a_config_that_cannot_work_is_refused_before_the_run_is_touched(tmp_path, override, message):
    """n_per_combo=-1 used to pass and empty an existing run with exit code 0."""
    out = existing(tmp_path)
    before = (out / "manifest.jsonl").read_bytes()
    with pytest.raises(ConfigError) as err:
        generate(compose_entry("generate", override, f"out_dir={out}", "progress=false"))
    assert str(err.value).startswith(message)
    assert (out / "manifest.jsonl").read_bytes() == before and not (out / ".rerun").exists()


def test_names_of_your_own_need_a_taxonomy_name_of_your_own(tmp_path):
    summary = generate(compose_entry("generate", "taxonomy.name=mine", "taxonomy.genres=[Jaz]", "n_per_combo=1",
                                     "taxonomy.styles=[Swing]", f"out_dir={tmp_path}", "progress=false"))
    assert summary["songs"] == 1


@pytest.mark.parametrize("override,message", [
    ("n_per_combo=abc", "error: n_per_combo must be an integer >= 1, got 'abc'"),
    ("n_per_combo=-1", "error: n_per_combo must be an integer >= 1, got -1"),
    ("llm=replay llm.path=/nowhere/replies.jsonl", "error: llm.path=/nowhere/replies.jsonl: no such file"),
])
def test_the_command_says_what_is_wrong_in_one_line_and_exits_2(tmp_path, override, message):
    """n_per_combo=abc used to end in a TypeError traceback."""
    out = existing(tmp_path)
    done = subprocess.run(command(*override.split(), f"out_dir={out}"), cwd=REPO_ROOT, env=ENV, capture_output=True,
                          text=True, timeout=120)
    assert done.returncode == 2 and done.stderr.strip().startswith(message) and "Traceback" not in done.stderr, \
        done.stderr
    assert whole_run(out) == (1, 25)
