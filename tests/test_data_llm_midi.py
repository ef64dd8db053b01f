"""LLM-MIDI runs as data: a tiny fake generate run (manifest.jsonl + MIDI written by write_midi)."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
from hydra.errors import InstantiationException
from omegaconf import OmegaConf

from llmusic.config import CONF_DIR, compose_config
from llmusic.midi import load_score, midi_windows, song_pianoroll
from llmusic.midi.phrase import HOLD, PAD, REST, encode_phrase
from llmusic.midi.render import read_midi, write_midi
from llmusic.run_dir import GenerateRun
from llmusic.song import Song
from tests.helpers import build_dataset, run_generate

GENRES = ["Pop", "Rock", "Classical", "Hip-Hop", "Jazz"]
STATUSES = ["ok", "ok", "repaired", "failed"]  # per index within a genre


def fake_song(rng: np.random.Generator) -> Song:
    """A 4-bar song the way the parser hands them over: starts 0-7680 ticks, durations 240-960."""
    def track(n, lo, hi, step):
        starts = np.sort(rng.choice(np.arange(0, 7680, step), n, replace=False))
        return np.stack([rng.integers(lo, hi, n), rng.choice([240, 480, 960], n), rng.integers(40, 120, n), starts], 1)
    return Song({"melody": track(16, 60, 84, 240), "chords": track(8, 48, 72, 480), "bass": track(8, 28, 48, 480),
                 "rhythm": np.stack([rng.choice([35, 38, 42], 16), np.full(16, 240), np.full(16, 90),
                                     np.arange(16) * 480], 1)})


@pytest.fixture(scope="module")
def fake_run(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("run")
    rng = np.random.default_rng(0)
    records = []
    for genre in GENRES:
        for index, status in enumerate(STATUSES):
            midi = None
            if status != "failed":
                midi = f"midi/{genre}__Ballad/{index}.mid"
                (out / midi).parent.mkdir(parents=True, exist_ok=True)
                write_midi(fake_song(rng), out / midi)
            records.append({"genre": genre, "style": "Ballad", "mood": "happy", "index": index, "status": status,
                            "reason": "no JSON" if status == "failed" else None, "midi": midi})
    (out / "manifest.jsonl").write_text("".join(json.dumps(r) + "\n" for r in records))
    OmegaConf.save({"taxonomy": OmegaConf.load(CONF_DIR / "taxonomy" / "paper.yaml"),
                    "constraints": OmegaConf.load(CONF_DIR / "constraints" / "paper.yaml")}, out / "config.yaml")
    return out


def build(name: str, run: Path, *overrides: str):
    """conf/dataset/<name>.yaml composed for the fake run (its out_dir and a cache inside it)."""
    key = {"llm_midi": ["dataset.out_dir"], "melody_llm_midi": ["dataset.source.out_dir"]}.get(name, [])
    return build_dataset(name, *[f"{k}={run}" for k in key], f"dataset.cache_dir={run / 'cache'}", *overrides)


def test_run_becomes_labelled_windows(fake_run):
    data = build("llm_midi", fake_run)
    paper = OmegaConf.load(CONF_DIR / "taxonomy" / "paper.yaml")
    assert data.classes == list(paper.genres)  # the run's own taxonomy, in its order
    assert data.skipped == {"status_failed": len(GENRES)}
    assert len(data.song_names) == len(data) == 3 * len(GENRES)  # one window per piece
    counts = data.class_counts()
    assert all(counts[g] == 3 for g in GENRES) and sum(counts.values()) == 3 * len(GENRES)
    for i in range(len(data)):
        x, y, song = data[i]
        name = data.song_names[song]
        assert name.startswith(f"midi/{data.classes[y]}__")
        rolls = midi_windows(load_score(fake_run / name), 7680, 480).rolls
        np.testing.assert_array_equal(x.numpy(), rolls[0])


def test_repaired_songs_can_be_left_out(fake_run):
    data = build("llm_midi", fake_run, "dataset.include_repaired=false")
    assert len(data.song_names) == 2 * len(GENRES)
    assert data.skipped == {"status_failed": len(GENRES), "status_repaired": len(GENRES)}


def test_rolling_the_song_equals_cutting_the_file(fake_run):
    """A run that saved no songs (made before midi/songs.npz): each file is read back and cut."""
    from_file = build("llm_midi", fake_run, "dataset.from_song=false")
    from_song = build("llm_midi", fake_run)
    assert not from_song.saved and from_song.cache_path != from_file.cache_path
    assert from_song.song_names == from_file.song_names
    np.testing.assert_array_equal(from_song.packed.dense(), from_file.packed.dense())


@pytest.mark.parametrize("constraints,taxonomy", [
    ("paper", ["prompt=paper", "taxonomy.genres=[Pop,Jazz]", "taxonomy.styles=[Swing,Ballad]"]),
    ("relaxed", ["prompt=paper_structured", "taxonomy.genres=[Rock]", "taxonomy.styles=[Waltz,Funky,March]"])])
def test_songs_the_run_saved_roll_as_their_files_do(tmp_path, constraints, taxonomy):
    """A generate run saves the notes it wrote (midi/songs.npz): they are the files' notes, and the
    rolls made from them, with no file read back, are the rolls of the files cut into windows."""
    run_generate(tmp_path, "llm=baseline", "n_per_combo=3", f"constraints={constraints}", *taxonomy)
    saved, (usable, _) = GenerateRun(tmp_path).songs(), GenerateRun(tmp_path).usable()
    assert saved and sorted(saved) == sorted(r["midi"] for r in usable)
    assert all(song.equals(read_midi(tmp_path / name)) for name, song in saved.items())
    from_file = build("llm_midi", tmp_path, f"constraints={constraints}", "dataset.from_song=false")
    from_song = build("llm_midi", tmp_path, f"constraints={constraints}")
    assert len(from_song.saved) == len(saved) and from_song.song_names == from_file.song_names
    np.testing.assert_array_equal(from_song.packed.dense(), from_file.packed.dense())
    meters = {tuple(song.time_signature) for song in saved.values()}  # other meters: read back and cut
    assert (4, 4) in meters and (constraints == "paper") == (meters == {(4, 4)})


def test_a_run_the_official_writer_wrote_is_read_back(tmp_path):
    """The official writer drifts notes (a chord becomes a sequence), so its run saves no songs and
    every file is read back and cut: the rolls are the files' rolls either way."""
    run_generate(tmp_path, "llm=baseline", "n_per_combo=2", "render=official", "taxonomy.genres=[Pop]",
                 "taxonomy.styles=[Swing,Ballad]")
    assert GenerateRun(tmp_path).songs() == {}
    from_file = build("llm_midi", tmp_path, "dataset.from_song=false")
    from_song = build("llm_midi", tmp_path)
    assert not from_song.saved and from_song.song_names == from_file.song_names and from_file.song_names
    np.testing.assert_array_equal(from_song.packed.dense(), from_file.packed.dense())


def test_label_map_gives_the_evaluation_classes(fake_run, shared_data):
    data = build("llm_midi", fake_run, "label_map@dataset.label_map=paper_to_topmagd")
    assert data.classes == ["Pop_Rock", "Electronic", "Country", "Jazz", "Rap", "Folk", "Reggae", "Blues"]
    assert data.skipped == {"status_failed": len(GENRES), "unmapped_label": 3}  # the Classical songs
    counts = data.class_counts()
    assert counts["Pop_Rock"] == 6 and counts["Rap"] == 3 and counts["Jazz"] == 3 and counts["Country"] == 0
    few = fake_run / "lmd_few"  # a handful of labelled LMD files is enough to see the classes
    few.mkdir(exist_ok=True)
    for md5 in ("000f11ebf4445a710070640060b7302c", "00a4b64cd2d326ffe30a8b158b5ab81c"):
        shutil.copy(shared_data / "lmd_subset" / "midi" / f"{md5}.mid", few)
    lmd = build("lmd_topmagd", fake_run, "label_map@dataset.label_map=paper_to_topmagd", f"dataset.root={few}",
                f"dataset.labels={shared_data / 'lmd_subset' / 'labels.csv'}")
    assert lmd.classes == data.classes  # train and test share classes


def test_label_map_for_another_key_is_refused(fake_run):
    with pytest.raises(InstantiationException, match="maps style labels, but this data set is labelled by 'genre'"):
        build("llm_midi", fake_run, "label_map@dataset.label_map=paper_to_masd")
    styles = build("llm_midi", fake_run, "dataset.label=style", "label_map@dataset.label_map=paper_to_masd")
    assert styles.skipped["unmapped_label"] == 3 * len(GENRES)  # "Ballad" has no MASD counterpart
    assert len(styles.song_names) == 0


def test_identity_keeps_the_run_taxonomy(fake_run):
    data = build("llm_midi", fake_run, "label_map@dataset.label_map=identity")
    plain = build("llm_midi", fake_run)
    assert data.classes == plain.classes and data.song_names == plain.song_names


def test_melody_pairs_are_the_first_and_second_half(fake_run):
    """constraints=paper: 4-bar pieces, phrase_bars 2 (half the span): bars 1-2 then bars 3-4."""
    pairs = build("melody_llm_midi", fake_run, "dataset.split=all", "dataset.source.key_normalization=none")
    assert pairs.framing == {"phrase_bars": 2, "steps_per_quarter": 8, "n_tokens": 64}
    assert len(pairs) == 3 * len(GENRES) and pairs.skipped == {"status_excluded": len(GENRES)}
    for i in range(len(pairs)):
        context, target = (t.numpy() for t in pairs[i])
        score = load_score(fake_run / pairs.song_names[pairs.song_ids[i]])
        layers = [t.notes.numpy() for t in score.tracks if t.name == "melody"]  # write_midi's same-pitch layers
        melody = {k: np.concatenate([layer[k] for layer in layers]) for k in ("time", "duration", "pitch")}
        for tokens, offset in ((context, 0), (target, 3840)):
            expected = encode_phrase((melody["time"].astype(np.int64) - offset) // 60, melody["duration"] // 60,
                                     melody["pitch"].astype(np.int64), 64, 64)
            np.testing.assert_array_equal(tokens, expected)
            assert tokens.shape == (64,) and (tokens != PAD).all()  # two bars, nothing padded
            assert set(tokens.tolist()) - {HOLD, REST}  # holds notes
    # Key normalisation moves every note of a piece by one shift, its key's.
    moved = build("melody_llm_midi", fake_run, "dataset.split=all")
    shift = np.array([k["shift"] for k in moved.song_keys()])[moved.song_ids][:, None]
    notes = pairs.context < HOLD
    np.testing.assert_array_equal(moved.context[notes], (pairs.context.astype(np.int64) + shift)[notes])
    assert {k["method"] for k in moved.song_keys()} == {"profile"}
    # The engine's split: every 10th song is a test song.
    test = build("melody_llm_midi", fake_run, "dataset.split=test")
    assert test.song_names == pairs.song_names[::10]


def test_rolls_of_a_song_match_song_pianoroll(fake_run):
    """The data set's roll is exactly the paper's roll of the song (channels, pitch, 32nd grid)."""
    from llmusic.midi import read_midi
    data = build("llm_midi", fake_run)
    song = read_midi(fake_run / data.song_names[0])
    np.testing.assert_array_equal(data[0][0].numpy(), song_pianoroll(song, 7680))


def test_a_config_that_frames_the_run_otherwise_is_refused_at_start(fake_run):
    """The run was generated under `paper` (7680 ticks); windows of `relaxed` (30720) would not be its songs."""
    with pytest.raises(InstantiationException, match="set constraints=paper"):
        build("llm_midi", fake_run, "constraints=relaxed")


@pytest.fixture(scope="module")
def long_run(fake_run, tmp_path_factory) -> Path:
    """The fake run's songs, saved as if generated under paper_consistent (8 bars: 15360 ticks)."""
    out = tmp_path_factory.mktemp("long_run")
    shutil.copytree(fake_run / "midi", out / "midi")
    shutil.copy(fake_run / "manifest.jsonl", out)
    config = OmegaConf.load(fake_run / "config.yaml")
    config.constraints = compose_config("constraints/paper_consistent").constraints
    OmegaConf.save(config, out / "config.yaml")
    return out


def test_the_runs_constraint_set_frames_its_windows_and_phrases(long_run):
    rolls = build("llm_midi", long_run, "constraints=paper_consistent")
    assert (rolls.time_span_ticks, rolls.ticks_per_quarter) == (15360, 480)  # the run's, not a default
    with pytest.raises(InstantiationException, match="set constraints=paper_consistent"):
        build("melody_llm_midi", long_run, "dataset.split=all")  # the config's constraints (paper) frame 4 bars
    pairs = build("melody_llm_midi", long_run, "dataset.split=all", "constraints=paper_consistent")
    assert pairs.framing["phrase_bars"] == 4  # half of 8 bars
    two = build("melody_llm_midi", long_run, "dataset.split=all", "constraints=paper_consistent",
                "dataset.source.phrase_bars=2")
    assert two.framing["phrase_bars"] == 2 and len(two) > 0  # 2-bar chunks of 8 bars: up to 3 pairs a piece
    with pytest.raises(InstantiationException, match="phrase_bars=6 needs pieces of 12 bars.*span 8 bars"):
        build("melody_llm_midi", long_run, "constraints=paper_consistent", "dataset.source.phrase_bars=6")
