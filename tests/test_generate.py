"""`python -m llmusic.generate` with the offline backends: the baseline control and replay.

Every test composes the real configs (conf/generate.yaml and its groups) with Hydra's compose API.
"""

from __future__ import annotations

import json
import subprocess
import sys
from collections import Counter
from pathlib import Path

import numpy as np
import pytest
import symusic
from omegaconf import OmegaConf

from llmusic.config import REPO_ROOT
from llmusic.generate import generate
from llmusic.midi.render import read_midi
from llmusic.parse import parse_reply
from llmusic.prompts import OFFICIAL_TEMPLATE_SHA256
from tests.helpers import compose_entry, official_file_notes

REPLAY = REPO_ROOT / "tests" / "data" / "replay_sample.jsonl"
# What each line of the recording is (index -> (status, reason key)); both policies agree except
# where the reply is out of range. Lines 15-18 and 22 are not readable recordings at all.
REPLAY_EXPECTED = {
    0: ("ok", None), 1: ("ok", None), 2: ("ok", None), 3: ("ok", None),
    # line 5 was cut at max_tokens; a replay has one attempt, so the parser repairs what it can: no rhythm
    4: ("repaired", None), 5: ("failed", "missing_track"), 6: ("repaired", None), 7: ("failed", "missing_track"),
    8: ("ok", None), 9: ("ok", None), 10: ("failed", "no_json"), 11: ("failed", "empty_reply"),
    12: ("failed", "not_an_object"), 13: ("ok", None), 14: ("repaired", None), 15: ("failed", "replay_line"),
    16: ("failed", "replay_line"), 17: ("failed", "replay_line"), 18: ("failed", "replay_line"), 19: ("ok", None),
    20: ("failed", "empty_track"), 21: ("failed", "not_a_list"), 22: ("failed", "replay_line"), 23: ("repaired", None),
}
STRICT_CHANGES = {4: ("failed", "out_of_range"), 23: ("failed", "out_of_range")}
# preset=official: the official code keeps only strict JSON with the four tracks spelled exactly
# and every key a list, clamps what it keeps (4: out-of-range values, 23: starts), cuts floats
# toward zero with int() (14) and keeps an empty track (20).
OFFICIAL_EXPECTED = {
    **{i: ("failed", "replay_line") for i in (15, 16, 17, 18, 22)},
    0: ("ok", None), 1: ("failed", "not_strict_json"),  # 1: fenced, with prose
    2: ("failed", "not_strict_json"), 3: ("failed", "not_strict_json"),  # 2: the prompt's tuples, 3: comments
    4: ("repaired", None), 5: ("failed", "not_strict_json"), 6: ("failed", "not_strict_json"),  # 5: cut
    7: ("failed", "missing_track"), 8: ("failed", "missing_track"),  # 8: "drums" for rhythm
    9: ("failed", "not_an_integer"),  # events as objects: unpacked, their keys go to int()
    10: ("failed", "not_strict_json"), 11: ("failed", "empty_reply"), 12: ("failed", "not_an_object"),
    13: ("failed", "missing_track"), 14: ("repaired", None), 19: ("failed", "not_a_list"),  # 13: wrapped, 19: "tempo"
    20: ("ok", None), 21: ("failed", "not_a_list"), 23: ("repaired", None),
}


def compose_generate(overrides: list[str]):
    return compose_entry("generate", "progress=false", *overrides)


def read_manifest(out_dir: Path) -> list[dict]:
    return [json.loads(line) for line in (out_dir / "manifest.jsonl").read_text().splitlines()]


@pytest.fixture(scope="module")
def baseline_run(tmp_path_factory) -> tuple[Path, dict]:
    out = tmp_path_factory.mktemp("baseline")
    return out, generate(compose_generate(["llm=baseline", "n_per_combo=3", f"out_dir={out}"]))


def test_baseline_writes_the_full_grid(baseline_run):
    out, summary = baseline_run
    cfg = OmegaConf.load(out / "config.yaml")
    genres, styles = list(cfg.taxonomy.genres), list(cfg.taxonomy.styles)
    records = read_manifest(out)
    assert len(records) == len(genres) * len(styles) * 3 == summary["songs"] == 13 * 25 * 3
    assert Counter((r["genre"], r["style"]) for r in records) == {(g, s): 3 for g in genres for s in styles}
    assert summary["valid"] == len(records) and summary["is_llm"] is False
    assert set(summary["per_genre"]) == set(genres) and set(summary["per_style"]) == set(styles)
    replies = (out / "replies.jsonl").read_text().splitlines()
    assert len(replies) == summary["attempts"] == len(records)
    for r in records:
        assert r["status"] in ("ok", "repaired") and r["mood"] in cfg.taxonomy.moods
        assert r["midi"] == f"midi/{r['genre']}__{r['style'].replace(' ', '_')}/{r['index']}.mid"
        assert (out / r["midi"]).is_file()
        temperature = round(0.6 + 0.04 * (r["index"] % 10), 6)
        assert r["sampling"] == {"temperature": temperature, "top_p": 0.9, "max_tokens": 1200}
        assert [m["role"] for m in r["messages"]] == ["system", "user"]
        assert f"'{r['genre']} song in {r['style']} style' with a {r['mood']} mood" in r["messages"][1]["content"]
        assert len(r["attempts"]) == 1 and r["attempts"][0]["status"] == r["status"]


def test_config_is_saved_resolved(baseline_run):
    out, _ = baseline_run
    text = (out / "config.yaml").read_text()
    assert "${" not in text and "???" not in text
    cfg = OmegaConf.load(out / "config.yaml")
    assert cfg.llm._target_ == "llmusic.llm.baseline.BaselineComposer" and cfg.out_dir == str(out)
    assert cfg.llm.constraints.time_span_ticks == 7680 and cfg.parse.policy == "clamp"
    assert cfg.render.name == "polyphonic" and cfg.prompt_sha256 == OFFICIAL_TEMPLATE_SHA256  # prompt=paper
    setting = json.loads((out / "summary.json").read_text())["setting"]
    assert setting == {"prompt": "paper", "prompt_sha256": OFFICIAL_TEMPLATE_SHA256, "constraints": "paper",
                       "parse_policy": "clamp", "renderer": "polyphonic",
                       "official": {"prompt": True, "parse": False, "render": False}, "official_mode": False}


def test_midi_files_hold_the_parsed_reply(baseline_run):
    """Round trip: each written file reads back as the song the parser made of its reply."""
    out, _ = baseline_run
    records = {(r["genre"], r["style"], r["index"]): r for r in read_manifest(out)}
    cfg = OmegaConf.load(out / "config.yaml")
    from hydra.utils import instantiate
    constraints = instantiate(cfg.constraints)
    for line in (out / "replies.jsonl").read_text().splitlines()[::37]:
        reply = json.loads(line)
        record = records[(reply["genre"], reply["style"], reply["index"])]
        assert read_midi(out / record["midi"]).equals(parse_reply(reply["text"], constraints).song)


def _features(song) -> np.ndarray:
    """Per track: note count, mean pitch, mean duration, mean velocity, distinct onsets."""
    rows = []
    for name in ("melody", "chords", "bass", "rhythm"):
        ev = song.tracks[name]
        rows += [len(ev), ev[:, 0].mean(), ev[:, 1].mean(), ev[:, 2].mean(), len(np.unique(ev[:, 3]))]
    return np.array(rows, dtype=np.float64)


@pytest.mark.parametrize("label", ["genre", "style"])
def test_baseline_classes_are_learnable_from_its_midi(baseline_run, label):
    """A nearest-centroid classifier on simple note statistics of the written files, trained on
    songs 0-1 of each pair and tested on song 2, must beat chance by far: the control is usable."""
    out, _ = baseline_run
    records = read_manifest(out)
    x = np.stack([_features(read_midi(out / r["midi"])) for r in records])
    x = (x - x.mean(0)) / (x.std(0) + 1e-9)
    y = np.array([r[label] for r in records])
    train = np.array([r["index"] < 2 for r in records])
    classes = sorted(set(y))
    centroids = np.stack([x[train & (y == c)].mean(0) for c in classes])
    predicted = np.array(classes)[np.argmin(((x[~train, None] - centroids[None]) ** 2).sum(-1), axis=1)]
    accuracy = (predicted == y[~train]).mean()
    assert accuracy > 3 / len(classes), f"{label} accuracy {accuracy:.2f} with {len(classes)} classes"


def test_baseline_is_deterministic_and_seeded(tmp_path, baseline_run):
    out, _ = baseline_run
    narrowed = ["llm=baseline", "n_per_combo=3", "taxonomy.genres=[Jazz,Metal]", "taxonomy.styles=[Swing,Drone]"]
    generate(compose_generate([*narrowed, f"out_dir={tmp_path / 'a'}"]))
    generate(compose_generate([*narrowed, "seed=1", f"out_dir={tmp_path / 'b'}"]))
    full = {(r["genre"], r["style"], r["index"]): r for r in read_manifest(out)}
    same, other = read_manifest(tmp_path / "a"), read_manifest(tmp_path / "b")
    assert len(same) == len(other) == 12
    # Narrowing the taxonomy changes neither a song's mood nor its notes.
    for r in same:
        assert r["mood"] == full[(r["genre"], r["style"], r["index"])]["mood"]
        assert (tmp_path / "a" / r["midi"]).read_bytes() == (out / r["midi"]).read_bytes()
    differ = [(tmp_path / "a" / a["midi"]).read_bytes() != (tmp_path / "b" / b["midi"]).read_bytes()
              for a, b in zip(same, other)]
    assert all(differ)


def test_rerun_rewrites_the_same_out_dir(tmp_path):
    overrides = ["llm=baseline", "n_per_combo=2", "taxonomy.genres=[Pop]", "taxonomy.styles=[Waltz,March]",
                 f"out_dir={tmp_path}"]
    generate(compose_generate(overrides))
    first = (tmp_path / "manifest.jsonl").read_text()
    stale = tmp_path / "midi" / "Old__Style" / "0.mid"
    stale.parent.mkdir(parents=True)
    stale.write_bytes(b"not from this run")
    generate(compose_generate(overrides))
    assert (tmp_path / "manifest.jsonl").read_text() == first
    assert not stale.exists()  # the midi folder holds exactly what the manifest names
    assert sorted(p.relative_to(tmp_path).as_posix() for p in (tmp_path / "midi").rglob("*.mid")) == sorted(
        r["midi"] for r in read_manifest(tmp_path))


@pytest.mark.parametrize("policy", ["clamp", "strict"])
def test_replay_classifies_every_line(tmp_path, policy):
    summary = generate(compose_generate(["llm=replay", f"llm.path={REPLAY}", f"parse.policy={policy}",
                                         f"out_dir={tmp_path}"]))
    records = read_manifest(tmp_path)
    n_lines = len(REPLAY.read_text().splitlines())
    assert [r["index"] for r in records] == list(range(n_lines)) and summary["songs"] == n_lines
    expected = {**REPLAY_EXPECTED, **(STRICT_CHANGES if policy == "strict" else {})}
    got = {r["index"]: (r["status"], r["reason"].split(":")[0] if r["status"] == "failed" else None) for r in records}
    assert got == expected
    lines = REPLAY.read_text().splitlines()
    for r in records:
        assert len(r["attempts"]) == (0 if r["reason"] and r["reason"].startswith("replay_line") else 1)
        assert (r["midi"] is not None) == (r["status"] != "failed")
        if r["midi"]:
            reply = json.loads(lines[r["index"]])["response"]
            assert read_midi(tmp_path / r["midi"]).equals(parse_reply(reply, _paper_constraints(), policy).song)
    assert records[0]["usage"] == {"prompt_tokens": 312, "completion_tokens": 702}
    assert records[23]["sampling"] == {"temperature": 0.72, "top_p": 0.9, "max_tokens": 1200}
    assert summary["failure_reasons"]["replay_line"] == 5


def test_official_preset_classifies_every_line_as_the_official_code(tmp_path):
    """`python -m llmusic.generate preset=official llm=replay llm.path=...`: each line kept or failed
    as the official code would, every kept song's file holding the official writer's notes."""
    done = subprocess.run([sys.executable, "-m", "llmusic.generate", "preset=official", "llm=replay",
                           f"llm.path={REPLAY}", f"out_dir={tmp_path}"],
                          cwd=REPO_ROOT, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert "render official (the official writer)" in " ".join(done.stdout.split())
    records = read_manifest(tmp_path)
    got = {r["index"]: (r["status"], r["reason"].split(":")[0] if r["status"] == "failed" else None) for r in records}
    assert got == OFFICIAL_EXPECTED
    lines = REPLAY.read_text().splitlines()
    for r in records:
        if r["midi"]:
            song = parse_reply(json.loads(lines[r["index"]])["response"], _paper_constraints(), "official").song
            score = symusic.Score(str(tmp_path / r["midi"]))
            notes = {t.name: sorted((n.time, n.duration, n.pitch, n.velocity) for n in t.notes) for t in score.tracks}
            assert notes == {role: official_file_notes(ev.tolist()) for role, ev in song.tracks.items() if len(ev)}
    summary = json.loads((tmp_path / "summary.json").read_text())
    assert summary["setting"]["official_mode"] is True and summary["valid"] == 5
    saved = OmegaConf.load(tmp_path / "config.yaml")
    assert (saved.prompt.name, saved.constraints.name, saved.parse.policy, saved.render.name) == (
        "paper", "paper", "official", "official")


def _paper_constraints():
    from hydra.utils import instantiate
    return instantiate(compose_generate([]).constraints)


def test_cli_entry_point(tmp_path):
    out = tmp_path / "cli"
    done = subprocess.run(
        [sys.executable, "-m", "llmusic.generate", "n_per_combo=1", "taxonomy.genres=[Blues]",
         "taxonomy.styles=[Swing,Bossa Nova]", f"out_dir={out}"],
        cwd=REPO_ROOT, capture_output=True, text=True, timeout=120,
    )
    assert done.returncode == 0, done.stderr
    assert "valid rate per genre" in done.stdout and "Bossa Nova" in done.stdout
    assert json.loads((out / "summary.json").read_text())["songs"] == 2
    assert (out / "midi" / "Blues__Bossa_Nova" / "0.mid").is_file()


def test_a_replay_run_names_its_recordings_content_not_only_its_path(tmp_path):
    """A recording edited in place keeps its path: the saved config tells the two contents apart, so
    a finished run is not reused for the new file, and a run re-made from the old config refuses it."""
    from hydra.errors import InstantiationException
    from hydra.utils import instantiate

    from llmusic.config import compose_config
    from llmusic.run_dir import GenerateRun

    recording = tmp_path / "replies.jsonl"
    recording.write_bytes(REPLAY.read_bytes())
    overrides = ["llm=replay", f"llm.path={recording}", f"out_dir={tmp_path / 'run'}", "progress=false"]
    cfg = compose_config("generate", overrides)
    generate(cfg)
    assert GenerateRun(tmp_path / "run").finished_with(compose_config("generate", overrides), ignore=("progress",))
    saved = OmegaConf.create(OmegaConf.to_container(cfg, resolve=True))

    recording.write_bytes(REPLAY.read_bytes().splitlines(keepends=True)[0])  # the same path, one line left
    assert not GenerateRun(tmp_path / "run").finished_with(compose_config("generate", overrides), ignore=("progress",))
    with pytest.raises(InstantiationException, match="the file changed since this config was resolved"):
        instantiate(saved.llm)
