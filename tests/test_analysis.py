"""Analysis of generate runs: statistics checked against independent counts on hand-made songs,
every figure a real PNG, audio previews real audio, through the real `conf/analyze.yaml`."""

from __future__ import annotations

import json
import math
import os
import shutil
import subprocess
import sys
from collections import Counter
from pathlib import Path

import numpy as np
import pytest
from matplotlib.image import imread

from llmusic.analysis import plots
from llmusic.analysis.audio import FluidSynthRenderer, SineRenderer, pick_renderer, wav_info
from llmusic.analysis.manifest import load_manifest, valid_rates
from llmusic.analysis.stats import (
    FEATURES,
    genre_distinctness,
    js_distance,
    notes_per_bar,
    onset_polyphony,
    pitch_class_histogram,
    song_features,
)
from llmusic.analyze import analyze
from llmusic.config import REPO_ROOT
from llmusic.midi.render import write_midi
from llmusic.song import Song
from tests.helpers import compose_entry, run_generate

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
SONG_SECONDS = 8.0  # the paper span: 7680 ticks = 4 bars of 4/4 at 120 BPM


def compose_analyze(overrides: list[str]):
    return compose_entry("analyze", *overrides)


def make_song(root: int, velocity: int = 100) -> Song:
    """Four bars: a quarter-note scale melody, a root-position major triad per bar, half-note bass,
    kick/hat/snare/hat eighths... every count is known: 16 / 12 / 8 / 16 notes, 4 / 3 / 2 / 4 per bar."""
    scale = [0, 2, 4, 5, 7, 9, 11, 12]
    return Song({
        "melody": [(root + scale[k % 8], 480, velocity, 480 * k) for k in range(16)],
        "chords": [(root - 12 + d, 1920, 70, 1920 * bar) for bar in range(4) for d in (0, 4, 7)],
        "bass": [(root - 24, 960, 90, 960 * k) for k in range(8)],
        "rhythm": [(p, 240, 100, 480 * k) for k, p in zip(range(16), [35, 42, 38, 42] * 4)],
    })


# (genre, style, index, status, reason, song or "garbage" / "missing" / None, final repairs)
HANDMADE = [
    ("Pop", "Ballad", 0, "ok", None, make_song(60), {}),
    ("Pop", "Ballad", 1, "repaired", "clamped 2 pitch", make_song(62, velocity=64), {"clamped_pitch": 2}),
    ("Pop", "Swing", 0, "failed", "no_json", None, {}),
    ("Pop", "Swing", 1, "ok", None, make_song(67), {"ignored_keys": 0}),
    ("Jazz", "Ballad", 0, "ok", None, make_song(63), {}),
    ("Jazz", "Ballad", 1, "failed", "out_of_range: pitch 300", None, {}),
    ("Jazz", "Swing", 0, "ok", None, "garbage", {}),
    ("Jazz", "Swing", 1, "ok", None, "missing", {}),
    ("Jazz", "Swing", 2, "failed", "out_of_range: velocity -5", None, {}),
    ("Jazz", "Swing", 3, "repaired", "clamped 1 pitch, dropped 1 malformed event(s)", make_song(70),
     {"clamped_pitch": 1, "dropped_malformed": 1}),
]
MAX_ATTEMPTS = 3


def write_run(out_dir: Path, spec=HANDMADE) -> Path:
    """A run laid out as generate lays it out (manifest.jsonl + midi/<Genre>__<Style>/), plus one
    line cut mid-write at the end, as a killed run leaves it. A failed song used every attempt, a
    repaired one two, an ok one one."""
    lines = []
    for n, (genre, style, index, status, reason, song, repairs) in enumerate(spec):
        rel = f"midi/{genre}__{style}/{index:04d}.mid" if song is not None else None
        if rel:
            (out_dir / rel).parent.mkdir(parents=True, exist_ok=True)
        if isinstance(song, Song):
            write_midi(song, out_dir / rel)
        elif song == "garbage":
            (out_dir / rel).write_bytes(b"MThd this is not a MIDI file")
        n_attempts = {"failed": MAX_ATTEMPTS, "repaired": 2, "ok": 1}[status]
        attempts = [{"attempt": a, "status": "failed", "reason": "no_json", "repairs": {}}
                    for a in range(n_attempts - 1)]
        attempts.append({"attempt": n_attempts - 1, "status": status, "reason": reason, "repairs": repairs})
        record = {"genre": genre, "style": style, "mood": ["happy", "sad"][n % 2], "index": index,
                  "status": status, "reason": reason, "midi": rel, "attempts": attempts}
        lines.append(json.dumps(record))
    (out_dir / "manifest.jsonl").write_text("\n".join(lines) + '\n{"genre": "Pop", "sty')
    return out_dir


@pytest.fixture(scope="module")
def handmade(tmp_path_factory) -> tuple[Path, dict]:
    out = write_run(tmp_path_factory.mktemp("handmade_run"))
    cfg = compose_analyze([f"out_dir={out}", "progress=false", "songs_per_genre=2"])
    return out, analyze(cfg)


# ---- per-song statistics against independent counts ------------------------------------------

@pytest.mark.parametrize(
    "events, expected",
    [
        ([(60, 960, 80, 0), (64, 960, 80, 0), (67, 960, 80, 0)], [3]),  # a triad
        ([(60, 480, 80, 0), (62, 480, 80, 480), (64, 480, 80, 960)], [1, 1, 1]),  # legato: no overlap
        ([(60, 960, 80, 0), (64, 480, 80, 480), (67, 240, 80, 720)], [1, 2, 3]),  # staggered entries
        ([(48, 1920, 80, 0), (60, 480, 80, 0), (62, 480, 80, 480)], [2, 2]),  # a held note under a line
        ([], []),
    ],
)
def test_onset_polyphony(events, expected):
    song = Song({"chords": events})
    assert onset_polyphony(song.tracks["chords"]).tolist() == expected


def test_notes_per_bar_counts_empty_bars():
    ev = Song({"melody": [(60, 240, 80, t) for t in (0, 100, 1920 * 2, 1920 * 2 + 5)]}).tracks["melody"]
    assert notes_per_bar(ev, 1920, 4).tolist() == [2, 0, 2, 0]


def test_song_features_match_construction():
    song = make_song(60)
    feats = song_features(song, time_span_ticks=7680)
    assert feats["chords"]["polyphony"].tolist() == [3, 3, 3, 3]
    assert feats["melody"]["polyphony"].tolist() == [1] * 16
    assert {r: feats[r]["density"].tolist() for r in feats} == {
        "melody": [4] * 4, "chords": [3] * 4, "bass": [2] * 4, "rhythm": [4] * 4}
    assert feats["bass"]["duration"].tolist() == [2.0] * 8  # half notes in quarters
    assert sorted(feats["rhythm"]["pitch"].tolist()) == sorted([35, 42, 38, 42] * 4)


def test_pitch_class_histogram_against_counter():
    song = make_song(62)
    pitched = [int(p) for role in ("melody", "chords", "bass") for p in song.tracks[role][:, 0]]
    counts = Counter(p % 12 for p in pitched)
    expected = np.array([counts[pc] / len(pitched) for pc in range(12)])
    np.testing.assert_allclose(pitch_class_histogram(song), expected)
    assert pitch_class_histogram(Song({"rhythm": [(35, 240, 90, 0)]})).sum() == 0  # drums don't count


def test_js_distance_known_values():
    p, q = np.array([0.5, 0.5, 0.0]), np.array([0.0, 0.5, 0.5])
    m = (p + q) / 2
    kl = lambda a, b: sum(x * math.log2(x / y) for x, y in zip(a, b) if x > 0)  # noqa: E731
    assert js_distance(p, q) == pytest.approx(math.sqrt((kl(p, m) + kl(q, m)) / 2))
    assert js_distance(p, p) == 0
    assert js_distance(np.array([1.0, 0]), np.array([0, 1.0])) == pytest.approx(1.0)
    pair = np.stack([p, q])
    matrix = js_distance(pair[:, None], pair[None])
    np.testing.assert_allclose(matrix, matrix.T)


def test_distinctness_separates_and_confuses():
    rng = np.random.default_rng(0)
    c_major, f_sharp = np.eye(12)[[0, 4, 7]].sum(0) / 3, np.eye(12)[[6, 10, 1]].sum(0) / 3

    def noisy(base: np.ndarray) -> np.ndarray:  # 20 songs around a triad
        x = base + rng.uniform(0, 0.02, (20, 12))
        return x / x.sum(1, keepdims=True)

    apart = genre_distinctness({"A": noisy(c_major), "B": noisy(f_sharp)})
    assert apart.silhouette > 0.8 and apart.between_within > 5
    assert apart.distances[0, 0] == 0 and apart.distances[0, 1] > 0.8
    same = genre_distinctness({"A": noisy(c_major), "B": noisy(c_major)})
    assert same.silhouette < 0.2 and same.between_within < 1.5
    one = genre_distinctness({"A": noisy(c_major)})
    assert math.isnan(one.silhouette)


# ---- the analysis of a hand-made run with failures ---------------------------------------------

def expected_rates(records: list[dict]) -> dict[tuple[str, str], float]:
    total, valid = Counter(), Counter()
    for r in records:
        total[r["genre"], r["style"]] += 1
        valid[r["genre"], r["style"]] += r["status"] in ("ok", "repaired")
    return {k: valid[k] / total[k] for k in total}


def test_valid_rate_matrix_and_heatmap_equal_manifest(handmade):
    out, result = handmade
    records = [json.loads(line) for line in (out / "manifest.jsonl").read_text().splitlines()[:-1]]
    m = result["valid_rate_matrix"]
    expected = expected_rates(records)
    assert expected == {("Pop", "Ballad"): 1.0, ("Pop", "Swing"): 0.5, ("Jazz", "Ballad"): 0.5,
                        ("Jazz", "Swing"): 0.75}
    got = {(g, s): m["rates"][i][j] for i, g in enumerate(m["genres"]) for j, s in enumerate(m["styles"])}
    assert got == expected
    rates, _ = valid_rates(load_manifest(out), m["genres"], m["styles"], {"ok", "repaired"})
    drawn = plots.valid_rate_heatmap(rates, m["genres"], m["styles"]).axes[0].images[0].get_array()
    np.testing.assert_allclose(drawn, np.array(m["rates"], dtype=float))
    assert result["songs_in_manifest"] == len(HANDMADE)  # the line cut mid-write is skipped
    assert result["valid_rate"] == pytest.approx(7 / 10)


def test_failures_and_unreadable_files_are_counted(handmade):
    _, result = handmade
    assert result["failure_reasons"] == {"out_of_range": 2, "no_json": 1}
    assert result["failure_examples"]["out_of_range"] == "out_of_range: pitch 300"
    assert result["skipped_midi"] == {"unreadable": 1, "missing": 1}
    assert result["songs_analysed"] == 5
    assert result["statuses"] == {"ok": 5, "failed": 3, "repaired": 2}
    assert result["repairs"] == {"clamped_pitch": 2, "dropped_malformed": 1}  # songs, not events
    assert result["attempts"] == {1: 5, 2: 2, MAX_ATTEMPTS: 3}


def test_note_statistics_against_construction(handmade):
    _, result = handmade
    songs = {"Pop": [make_song(60), make_song(62, velocity=64), make_song(67)],
             "Jazz": [make_song(63), make_song(70)]}
    for genre, made in songs.items():
        notes = result["notes"][genre]
        assert notes["songs"] == len(made)
        assert notes["chords"]["polyphony"]["mean"] == 3.0 and notes["chords"]["polyphony"]["max"] == 3
        assert notes["melody"]["density"]["mean"] == 4.0
        assert notes["bass"]["duration"]["mean"] == 2.0
        melody = np.concatenate([s.tracks["melody"][:, 0] for s in made])
        assert notes["melody"]["pitch"]["mean"] == pytest.approx(melody.mean())
        velocities = Counter(int(v) // 8 for s in made for v in s.tracks["melody"][:, 2])
        hist = result["histograms"]["velocity"]["counts"]["melody"][genre]
        assert hist == [velocities[b] for b in range(16)]
        # the mean pitch-class histogram, counted here with a Counter per song
        per_song = []
        for s in made:
            pcs = Counter(int(p) % 12 for r in ("melody", "chords", "bass") for p in s.tracks[r][:, 0])
            per_song.append([pcs[c] / sum(pcs.values()) for c in range(12)])
        d = result["distinctness"]
        np.testing.assert_allclose(d["centroids"][d["genres"].index(genre)], np.mean(per_song, 0), atol=1e-5)
    assert set(result["histograms"]) == set(FEATURES)


def test_every_figure_is_a_png_and_linked(handmade):
    out, result = handmade
    dest = out / "analysis"
    expected = {"valid_rate", "failure_reasons", "genre_distinctness",
                *(f"hist_{f}" for f in FEATURES)}
    assert set(result["figures"]) == expected
    pictures = [dest / p for p in result["figures"].values()]
    pictures += [dest / s["pianoroll"] for s in result["previews"]["songs"]]
    summary = (dest / "summary.md").read_text()
    for png in pictures:
        assert png.read_bytes()[:8] == PNG_MAGIC, png
        h, w, _ = imread(png).shape
        assert h > 150 and w > 300, png
        assert str(png.relative_to(dest)) in summary
    assert json.loads((dest / "stats.json").read_text())["figures"] == result["figures"]
    assert (dest / "config.yaml").is_file()


def test_previews_are_first_valid_songs_per_genre_with_real_audio(handmade):
    out, result = handmade
    previews = result["previews"]
    # Jazz|Swing|0 and 1 are valid in the manifest but their files are unreadable / missing
    assert [s["id"] for s in previews["songs"]] == ["Pop|Ballad|0", "Pop|Ballad|1", "Jazz|Ballad|0",
                                                    "Jazz|Swing|3"]
    summary = (out / "analysis" / "summary.md").read_text()
    installed = shutil.which("fluidsynth") and Path("/usr/share/sounds/sf2/FluidR3_GM.sf2").is_file()
    assert previews["renderer"] == ("fluidsynth" if installed else "sine")
    assert f"Audio previews rendered with: **{previews['renderer_description']}**" in summary
    for s in previews["songs"]:
        info = wav_info(out / "analysis" / s["wav"])
        assert info.sample_rate == 22050 and not info.silent
        # FluidSynth lets reverb and release ring on for about 3 s after the last note-off
        assert SONG_SECONDS <= info.duration_s <= SONG_SECONDS + 4.0


# ---- choosing songs, and the audio renderers -----------------------------------------------------

FAKE_FLUIDSYNTH = '''#!{python}
"""Stands in for the fluidsynth CLI: logs its arguments, writes a stereo 440 Hz WAV as long as the
MIDI file plus the one-second release tail FluidSynth renders."""
import json, sys, wave
import numpy as np, symusic
args = sys.argv[1:]
with open({log!r}, "a") as f:
    f.write(json.dumps(args) + "\\n")
if {fail!r}:
    sys.exit("fluidsynth: error: cannot load soundfont")
rate = int(args[args.index("-r") + 1])
t = np.arange(int(rate * (symusic.Score(args[-1]).to("second").end() + 1.0))) / rate
pcm = (0.3 * np.sin(2 * np.pi * 440 * t) * 32767).astype("<i2")
with wave.open(args[args.index("-F") + 1], "wb") as w:
    w.setnchannels(2); w.setsampwidth(2); w.setframerate(rate)
    w.writeframes(np.repeat(pcm, 2).tobytes())
'''


def fake_fluidsynth(tmp_path: Path, monkeypatch, fail: bool = False) -> tuple[Path, Path]:
    """A fake `fluidsynth` first on PATH and a dummy soundfont; returns (argv log, soundfont)."""
    bindir, log, soundfont = tmp_path / "bin", tmp_path / "fluidsynth_calls.jsonl", tmp_path / "GM.sf2"
    bindir.mkdir()
    exe = bindir / "fluidsynth"
    exe.write_text(FAKE_FLUIDSYNTH.format(python=sys.executable, log=str(log), fail=fail))
    exe.chmod(0o755)
    soundfont.write_bytes(b"RIFF....sfbk")
    monkeypatch.setenv("PATH", f"{bindir}{os.pathsep}{os.environ['PATH']}")
    return log, soundfont


def test_fluidsynth_renderer_command_line(handmade, tmp_path, monkeypatch):
    out, _ = handmade
    log, soundfont = fake_fluidsynth(tmp_path, monkeypatch)
    cfg = compose_analyze([f"out_dir={out}", f"analysis_dir={tmp_path / 'a'}", "progress=false",
                           "songs=[Pop|Swing|1]", f"audio.renderers.fluidsynth.soundfont={soundfont}",
                           "audio.sample_rate=16000"])
    result = analyze(cfg)
    previews = result["previews"]
    assert previews["renderer"] == "fluidsynth" and previews["renderers_unavailable"] == {}
    assert "FluidSynth" in (tmp_path / "a" / "summary.md").read_text()
    (call,) = [json.loads(line) for line in log.read_text().splitlines()]
    wav = tmp_path / "a" / previews["songs"][0]["wav"]
    assert call == ["-n", "-i", "-g", "0.6", "-r", "16000", "-T", "wav", "-F", str(wav),
                    str(soundfont), str(out / "midi/Pop__Swing/0001.mid")]
    info = wav_info(wav)
    assert info.sample_rate == 16000 and info.channels == 2 and not info.silent
    assert SONG_SECONDS <= info.duration_s <= SONG_SECONDS + 2.5


def test_fluidsynth_failure_is_reported(handmade, tmp_path, monkeypatch):
    out, _ = handmade
    _, soundfont = fake_fluidsynth(tmp_path, monkeypatch, fail=True)
    with pytest.raises(RuntimeError, match="cannot load soundfont"):
        FluidSynthRenderer(soundfont=str(soundfont)).render(out / "midi/Pop__Swing/0001.mid", tmp_path / "x.wav")


def test_sine_fallback_is_used_and_reported(handmade, tmp_path):
    out, _ = handmade
    cfg = compose_analyze([f"out_dir={out}", f"analysis_dir={tmp_path}", "progress=false",
                           "songs=[Jazz|Ballad|0]", "audio.renderers.fluidsynth.executable=no-such-fluidsynth"])
    previews = analyze(cfg)["previews"]
    assert previews["renderer"] == "sine"
    assert previews["renderers_unavailable"] == {"fluidsynth": "no `no-such-fluidsynth` on PATH"}
    summary = (tmp_path / "summary.md").read_text()
    assert "sine-wave synthesis" in summary and "`fluidsynth` not used: no `no-such-fluidsynth` on PATH" in summary
    info = wav_info(tmp_path / previews["songs"][0]["wav"])
    assert info.channels == 1 and not info.silent and SONG_SECONDS <= info.duration_s <= SONG_SECONDS + 2.5


def test_sine_renderer_sounds_drums(tmp_path):
    """pretty_midi leaves drum tracks silent; the preview must not."""
    write_midi(Song({"rhythm": [(35, 240, 100, 480 * k) for k in range(8)]}), tmp_path / "drums.mid")
    SineRenderer(sample_rate=8000).render(tmp_path / "drums.mid", tmp_path / "drums.wav")
    assert not wav_info(tmp_path / "drums.wav").silent


def test_pick_renderer_order():
    missing = FluidSynthRenderer(soundfont="/nonexistent.sf2", executable=sys.executable)
    renderer, skipped = pick_renderer([missing, SineRenderer()])
    assert renderer.name == "sine" and skipped == {"fluidsynth": "no soundfont at /nonexistent.sf2"}


@pytest.mark.parametrize("songs, message", [
    ("[Pop|Swing|9]", "not in the manifest"),
    ("[Pop|Swing|0]", "without a valid, readable MIDI file"),  # failed
    ("[Jazz|Swing|0]", "without a valid, readable MIDI file"),  # valid but unreadable
])
def test_bad_song_choice_is_a_clear_error(handmade, tmp_path, songs, message):
    out, _ = handmade
    cfg = compose_analyze([f"out_dir={out}", f"analysis_dir={tmp_path}", "progress=false", f"songs={songs}"])
    with pytest.raises(ValueError, match=message):
        analyze(cfg)


def test_run_where_every_song_failed(tmp_path):
    write_run(tmp_path, [row for row in HANDMADE if row[3] == "failed"])
    result = analyze(compose_analyze([f"out_dir={tmp_path}", "progress=false"]))
    assert result["valid_rate"] == 0 and result["songs_analysed"] == 0 and result["setting"] is None
    assert set(result["figures"]) == {"valid_rate", "failure_reasons"}
    assert result["previews"]["songs"] == []
    summary = (tmp_path / "analysis" / "summary.md").read_text()
    assert "Fewer than two genres" in summary and "| `out_of_range` | 2 |" in summary
    assert "Generated with: not recorded" in summary  # a run whose summary names no setting


def test_missing_manifest_is_a_clear_error(tmp_path):
    with pytest.raises(FileNotFoundError, match="no manifest.jsonl"):
        analyze(compose_analyze([f"out_dir={tmp_path}", "progress=false"]))


# ---- real runs from the generate entry point -----------------------------------------------------

def test_real_baseline_run(tmp_path):
    summary = run_generate(tmp_path, "llm=baseline", "n_per_combo=2", "taxonomy.genres=[Pop,Jazz,Metal]",
                           "taxonomy.styles=[Ballad,Swing,Bossa Nova]")
    result = analyze(compose_analyze([f"out_dir={tmp_path}", "progress=false", "audio.sample_rate=8000",
                                      "songs=[Metal|Bossa Nova|1,Pop|Ballad|0]"]))
    assert result["songs_in_manifest"] == summary["songs"] == 18
    assert result["valid_rate"] == pytest.approx(summary["valid_rate"])
    assert result["valid_rate_matrix"]["genres"] == ["Pop", "Jazz", "Metal"]  # the run's taxonomy order
    assert result["valid_rate_matrix"]["styles"] == ["Ballad", "Swing", "Bossa Nova"]
    for genre, row in summary["per_genre"].items():
        assert result["by_genre"][genre]["valid"] == row["valid"]
        assert result["notes"][genre]["songs"] == row["valid"]  # every valid file reads
    dest = tmp_path / "analysis"
    for s in result["previews"]["songs"]:
        assert (dest / s["pianoroll"]).read_bytes()[:8] == PNG_MAGIC
        assert not wav_info(dest / s["wav"]).silent
    assert [s["pianoroll"] for s in result["previews"]["songs"]] == [
        "pianoroll/Metal__Bossa_Nova__1.png", "pianoroll/Pop__Ballad__0.png"]


@pytest.mark.parametrize("mode, named", [
    ([], "parse.policy clamp (not the official reading), render polyphonic (not the official writer), "
         "constraints paper: not the official code's setting"),
    (["preset=official"], "parse.policy official (the official reading), render official (the official "
                          "writer), constraints paper: the official code's setting"),
])
def test_real_replay_run_with_failures(tmp_path, mode, named):
    """The parser's recorded reply cases, generated through the replay backend: real failures and
    repairs, counted by the analysis exactly as the generate summary counts them, in either mode;
    the report names the setting that made the run."""
    cases = sorted((REPO_ROOT / "tests" / "replies").glob("*.txt"))
    lines = [json.dumps({"genre": ["Pop", "Jazz"][i % 2], "style": ["Ballad", "Swing"][i % 3 % 2],
                         "mood": "calm", "response": p.read_text()}) for i, p in enumerate(cases)]
    (tmp_path / "replies.jsonl").write_text("\n".join(lines) + "\n")
    summary = run_generate(tmp_path / "run", "llm=replay", f"llm.path={tmp_path / 'replies.jsonl'}", *mode)
    result = analyze(compose_analyze([f"out_dir={tmp_path / 'run'}", "progress=false", "audio.enabled=false"]))
    assert result["setting"] == summary["setting"]
    report = (tmp_path / "run" / "analysis" / "summary.md").read_text()
    assert "Generated with: prompt paper (the official text, sha256 30261911de354b7b), " + named in report
    assert 0 < result["valid_rate"] < 1
    assert result["valid_rate"] == pytest.approx(summary["valid_rate"])
    keys = Counter()
    for reason, n in summary["failure_reasons"].items():
        keys[reason.split(":")[0]] += n
    assert result["failure_reasons"] == dict(keys)
    assert result["previews"]["renderer"] is None
    assert "audio disabled" in (tmp_path / "run" / "analysis" / "summary.md").read_text()


def test_cli_writes_hydra_config_beside_results(handmade, tmp_path):
    out, _ = handmade
    done = subprocess.run(
        [sys.executable, "-m", "llmusic.analyze", f"out_dir={out}", f"analysis_dir={tmp_path}",
         "progress=false", "audio.enabled=false", "songs=[Pop|Ballad|0]"],
        cwd=tmp_path, capture_output=True, text=True, timeout=120,
    )
    assert done.returncode == 0, done.stderr
    assert (tmp_path / ".hydra" / "config.yaml").is_file() and (tmp_path / "stats.json").is_file()
    assert "analysis of 5 songs" in done.stderr + done.stdout
