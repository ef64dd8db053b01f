"""Render benchmark: song -> MIDI file and song -> piano roll, against a plain mido writer.

Makes N seeded valid random songs shaped like replies to the paper's prompt (16 melody notes, 8
chords of 3 simultaneous notes, 8 bass notes, 16 drum hits; `paper` constraint set), then times on
the same songs, in the same run:
  ours  : llmusic.midi.song_to_score(song).dump_midi(path)  and  song_pianoroll(song, 7680)
  mido  : a writer like the paper's official code (one MidiTrack per role, note_on/note_off sorted
          by time, mido.MidiFile.save), but correct: every note at its own start
Each path runs in one process first (like for like; CPU seconds as well as wall seconds, since the
machine may be shared), then ours again on --workers processes for the whole set (the wall-clock
goal: 16,250 songs, MIDI + rolls, under 30 s on 2 cores). Results: benchmarks/README-render.md.

    python benchmarks/render_benchmark.py            # the full 16,250 songs
    python benchmarks/render_benchmark.py --n 2000   # quicker
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import platform
import shutil
import tempfile
import time
from pathlib import Path

import mido
import symusic
from hydra import compose, initialize_config_dir
from hydra.utils import instantiate
from tqdm import tqdm

from llmusic.midi import song_pianoroll, song_to_score
from llmusic.midi.synthetic import random_song
from llmusic.song import DRUM_TRACK, Song

CONF = Path(__file__).resolve().parents[1] / "conf"
SONGS: list[Song] = []  # set before forking so workers share the songs without pickling them
SPAN = 7680


def mido_file(song: Song) -> mido.MidiFile:
    """The obvious alternative: messages per role sorted by absolute time, then delta-encoded."""
    midi = mido.MidiFile(type=1, ticks_per_beat=song.ticks_per_quarter)
    numerator, denominator = song.time_signature
    midi.tracks.append(mido.MidiTrack([
        mido.MetaMessage("set_tempo", tempo=mido.bpm2tempo(song.tempo_bpm), time=0),
        mido.MetaMessage("time_signature", numerator=numerator, denominator=denominator, time=0)]))
    for channel, (role, events) in enumerate(song.tracks.items()):
        channel = 9 if role == DRUM_TRACK else channel
        timed = []
        for pitch, duration, velocity, start in events.tolist():
            on = mido.Message("note_on", channel=channel, note=pitch, velocity=max(velocity, 1))
            timed.append((start, 1, on))
            timed.append((start + duration, 0, mido.Message("note_off", channel=channel, note=pitch)))
        timed.sort(key=lambda t: (t[0], t[1]))  # note-offs before note-ons at one tick
        track = mido.MidiTrack([mido.MetaMessage("track_name", name=role, time=0)])
        if role != DRUM_TRACK:
            track.append(mido.Message("program_change", channel=channel, program=song.programs[role], time=0))
        now = 0
        for tick, _, message in timed:
            track.append(message.copy(time=tick - now))
            now = tick
        midi.tracks.append(track)
    return midi


class _Sink:
    """A write-only file object that drops bytes: serialisation cost without the disk."""

    def write(self, data: bytes) -> int:
        return len(data)


OUT = Path()  # where files go; set in main before forking


def ours_disk(i: int) -> None:
    song_to_score(SONGS[i]).dump_midi(str(OUT / f"{i}.mid"))


def ours_bytes(i: int) -> None:
    song_to_score(SONGS[i]).dumps_midi()


def ours_roll(i: int) -> None:
    song_pianoroll(SONGS[i], SPAN)  # consumed, not kept: 16,250 rolls would be 4.3 GB


def ours_disk_and_roll(i: int) -> None:
    ours_disk(i)
    ours_roll(i)


def mido_bytes(i: int) -> None:
    mido_file(SONGS[i]).save(file=_Sink())


def mido_disk(i: int) -> None:
    mido_file(SONGS[i]).save(str(OUT / f"mido_{i}.mid"))


def timed(job, indices: range) -> tuple[float, float]:
    """(wall, CPU) seconds of job(i) over indices. CPU time is the fairer figure on a shared machine."""
    wall, cpu = time.perf_counter(), time.process_time()
    for i in indices:
        job(i)
    return time.perf_counter() - wall, time.process_time() - cpu


def _shard(args: tuple[int, int]) -> tuple[float, float]:
    first, step = args
    return timed(ours_disk_and_roll, range(first, len(SONGS), step))


def same_onsets(song: Song, ours: Path, theirs: Path) -> bool:
    """Both files hold every note at its own start (the official writer's bug would fail this)."""
    def onsets(path: Path) -> list[tuple[int, int]]:
        notes = [t.notes.numpy() for t in symusic.Score(str(path)).tracks]
        return sorted((int(p), int(s)) for n in notes for p, s in zip(n["pitch"], n["time"]))
    want = sorted((int(p), int(s)) for ev in song.tracks.values() for p, s in zip(ev[:, 0], ev[:, 3]))
    return onsets(ours) == want == onsets(theirs)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--n", type=int, default=16_250, help="songs (the paper's 16,250 by default)")
    parser.add_argument("--workers", type=int, default=2, help="processes for the whole-set run")
    parser.add_argument("--out", type=Path, default=None,
                        help="where files go (default: a temp dir on /dev/shm, removed afterwards)")
    args = parser.parse_args()

    with initialize_config_dir(config_dir=str(CONF), version_base=None):
        constraints = instantiate(compose(overrides=["+constraints=paper"]).constraints)
    start = time.perf_counter()
    SONGS.extend(random_song(seed, constraints) for seed in tqdm(range(args.n), desc="songs"))
    made = time.perf_counter() - start
    notes = sum(song.n_notes for song in SONGS)

    # A RAM disk by default: creating a file costs 0.05-2 ms on this machine's ext4 depending on
    # load, which would measure the disk, not the writers. Pass --out to time a real disk.
    ram = "/dev/shm" if Path("/dev/shm").is_dir() else None
    out = Path(tempfile.mkdtemp(prefix="render_bench_", dir=ram)) if args.out is None else args.out
    out.mkdir(parents=True, exist_ok=True)
    global OUT
    OUT = out
    every = range(args.n)
    try:
        results = {name: timed(job, every) for name, job in [
            ("ours_midi_disk", ours_disk), ("ours_midi_bytes", ours_bytes), ("ours_roll", ours_roll),
            ("mido_midi_bytes", mido_bytes), ("mido_midi_disk", mido_disk)]}
        assert same_onsets(SONGS[0], out / "0.mid", out / "mido_0.mid")
        OUT = out / "parallel"  # new files again: overwriting costs less than creating
        OUT.mkdir()
        with multiprocessing.get_context("fork").Pool(args.workers) as pool:
            wall = time.perf_counter()
            shard_times = pool.map(_shard, [(k, args.workers) for k in range(args.workers)])
            results[f"ours_midi_disk_and_roll_{args.workers}_processes"] = (
                time.perf_counter() - wall, sum(cpu for _, cpu in shard_times))
    finally:
        if args.out is None:
            shutil.rmtree(out)

    parallel = f"ours_midi_disk_and_roll_{args.workers}_processes"
    report = {
        "songs": args.n, "notes": notes, "make_songs_s": round(made, 2), "out": str(out),
        "machine": f"{platform.machine()}, {multiprocessing.cpu_count()} cores, "
                   f"Python {platform.python_version()}",
        "wall_s": {k: round(wall, 3) for k, (wall, _) in results.items()},
        "cpu_s": {k: round(cpu, 3) for k, (_, cpu) in results.items()},
        "files_per_s_wall": {k: round(args.n / wall) for k, (wall, _) in results.items()},
        "speedup_vs_mido_cpu": {
            "bytes": round(results["mido_midi_bytes"][1] / results["ours_midi_bytes"][1], 1),
            "disk": round(results["mido_midi_disk"][1] / results["ours_midi_disk"][1], 1),
        },
        "speedup_vs_mido_wall": {
            "bytes": round(results["mido_midi_bytes"][0] / results["ours_midi_bytes"][0], 1),
            "disk": round(results["mido_midi_disk"][0] / results["ours_midi_disk"][0], 1),
            f"disk + rolls, {args.workers} processes, vs mido disk, 1 process":
                round(results["mido_midi_disk"][0] / results[parallel][0], 1),
        },
    }
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
