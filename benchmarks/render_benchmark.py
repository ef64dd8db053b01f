"""Render benchmark: song -> MIDI file and song -> piano roll, against a plain mido writer.

Makes N seeded valid random songs shaped like replies to the paper's prompt (16 melody notes, 8
chords of 3 simultaneous notes, 8 bass notes, 16 drum hits; `paper` constraint set), then times on
the same songs, in the same run:
  ours  : llmusic.midi.write_midi(song, path) (bytes only: song_to_score(song).dumps_midi())
          and song_pianoroll(song, 7680)
  mido  : a writer like the paper's official code (one MidiTrack per role, note_on/note_off sorted
          by time, mido.MidiFile.save), but correct: every note at its own start
Like with like: both writers run in this one process, write their files to the same directory, and
take turns on chunks of --chunk songs, so a load change on a shared machine hits both alike; CPU
seconds are reported beside wall seconds. The ratio goal is ours >= 50x mido there. Then, reported
separately, ours again on --workers processes for the whole set (the wall-clock goal: 16,250 songs,
MIDI + rolls, under 30 s on 2 cores). Prints the JSON report, then the table render.md/.csv.
Results: benchmarks/README-render.md.

    python -m benchmarks.render_benchmark            # the full 16,250 songs
    python -m benchmarks.render_benchmark --n 2000   # quicker
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import platform
import shutil
import tempfile
import time
from importlib.metadata import version
from pathlib import Path

import mido
import numpy as np
import symusic
from hydra.utils import instantiate
from tqdm import tqdm

from benchmarks.tables import add_table_dir, machine, write_table
from llmusic.config import compose_config
from llmusic.midi import song_pianoroll, song_to_score, write_midi
from llmusic.midi.synthetic import random_song
from llmusic.song import DRUM_TRACK, Song

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
    write_midi(SONGS[i], OUT / f"{i}.mid")


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


def taking_turns(jobs: dict, n: int, chunk: int) -> dict[str, tuple[float, float]]:
    """(wall, CPU) seconds of each job over range(n), the jobs taking turns on chunks of songs."""
    total = {name: (0.0, 0.0) for name in jobs}
    for first in tqdm(range(0, n, chunk), desc="1 process, taking turns"):
        for name, job in jobs.items():
            wall, cpu = timed(job, range(first, min(first + chunk, n)))
            total[name] = (total[name][0] + wall, total[name][1] + cpu)
    return total


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
    parser.add_argument("--chunk", type=int, default=500, help="songs per turn in the 1-process comparison")
    parser.add_argument("--out", type=Path, default=None,
                        help="where files go (default: a temp dir on /dev/shm, removed afterwards)")
    add_table_dir(parser)
    args = parser.parse_args()

    constraints = instantiate(compose_config("constraints/paper").constraints)
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
    try:
        results = taking_turns({"ours_midi_disk": ours_disk, "mido_midi_disk": mido_disk,
                                "ours_midi_bytes": ours_bytes, "mido_midi_bytes": mido_bytes,
                                "ours_roll": ours_roll}, args.n, args.chunk)
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
    one_process = [k for k in results if k != parallel]
    report = {
        "songs": args.n, "notes": notes, "make_songs_s": round(made, 2), "out": str(out),
        "machine": f"{platform.machine()}, {multiprocessing.cpu_count()} cores, Python "
                   f"{platform.python_version()}, numpy {np.__version__}, symusic {symusic.__version__}, "
                   f"mido {version('mido')}",
        "one_process": {k: {"wall_s": round(results[k][0], 3), "cpu_s": round(results[k][1], 3),
                            "cpu_us_per_song": round(results[k][1] / args.n * 1e6, 1),
                            "files_per_s_wall": round(args.n / results[k][0])} for k in one_process},
        "speedup_vs_mido_one_process": {
            what: {"cpu": round(results[f"mido_midi_{what}"][1] / results[f"ours_midi_{what}"][1], 1),
                   "wall": round(results[f"mido_midi_{what}"][0] / results[f"ours_midi_{what}"][0], 1)}
            for what in ("disk", "bytes")},
        "whole_set": {"what": f"ours, MIDI files + rolls, {args.workers} processes",
                      "wall_s": round(results[parallel][0], 3), "cpu_s": round(results[parallel][1], 3)},
    }
    print(json.dumps(report, indent=2))
    for what, label in (("disk", "MIDI files (same directory)"), ("bytes", "MIDI bytes")):
        ours, theirs = results[f"ours_midi_{what}"][1], results[f"mido_midi_{what}"][1]
        ratio = report["speedup_vs_mido_one_process"][what]
        print(f"{label}, 1 process: ours {ours / args.n * 1e6:.1f} µs/song, mido {theirs / args.n * 1e6:.0f} "
              f"µs/song (CPU): {ratio['cpu']}x on CPU time, {ratio['wall']}x on wall time (goal: 50x)")
    print(f"whole set, MIDI files + rolls, {args.workers} processes: {results[parallel][0]:.2f} s wall "
          f"(goal: under 30 s)")
    rows = [[k, *report["one_process"][k].values()] for k in one_process]
    rows.append([parallel, results[parallel][0], results[parallel][1], results[parallel][1] / args.n * 1e6,
                 args.n / results[parallel][0]])
    write_table(args.table_dir, "render", ["what", "wall s", "CPU s", "CPU µs/song", "files/s (wall)"], rows,
                f"{args.n:,} songs ({notes:,} notes); {report['machine']}; {machine()}")


if __name__ == "__main__":
    main()
