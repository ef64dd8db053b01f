"""Render benchmark: song -> MIDI and song -> piano roll, against the paper's official writer as written.

Makes N seeded valid random songs shaped like replies to the paper's prompt (16 melody notes, 8
chords of 3 simultaneous notes, 8 bass notes, 16 drum hits; `paper` constraint set), then times on
the same songs, in the same process, taking turns on chunks of --chunk songs (a load change on a
shared machine hits all alike), --repeats times over the whole set (min and median reported):

write only
  ours_midi_file / ours_midi_bytes   llmusic.midi.write_midi(song, path) / song_to_score(song).dumps_midi()
  official_midi_file / _bytes        the official generate.py's writer as written
                                     (../shared/reference/README.md): mido, one message object per
                                     event, events sorted by start, each note at max(0, start - end of
                                     the previous note) then off after its duration, MidiFile.save;
                                     fed the parser's output form (lists of (pitch, duration,
                                     velocity, start) tuples). It drifts notes: the files differ.
end to end (write, then a (4, 128, 128) roll a classifier trains on)
  official_write_read_roll    the official writer, pretty_midi reads the file back, a numpy roll of
                              its four instruments (what a user of the official code would write)
  ours_write_read_roll        write_midi, the file read back and cut into windows (midi_windows: what
                              an LLM-MIDI data set does with from_song=false, and with real files)
  ours_write_roll_from_song   write_midi, the song rolled straight from its notes (song_pianoroll:
                              what an LLM-MIDI data set does by default, from the notes the run saved)
Then ours again, MIDI files + rolls for the whole set on --workers processes (the wall-clock goal:
16,250 songs under 30 s on 2 cores). Files go to a RAM disk. Table render.md/.csv; results in
benchmarks/README-render.md.

    python -m benchmarks.render_benchmark            # the full 16,250 songs
    python -m benchmarks.render_benchmark --n 2000   # quicker
"""

from __future__ import annotations

import argparse
import multiprocessing
import platform
import shutil
import statistics
import tempfile
import time
from importlib.metadata import version
from pathlib import Path

import mido
import numpy as np
import pretty_midi
import symusic
from hydra.utils import instantiate
from tqdm import tqdm

from benchmarks.tables import add_table_dir, machine, write_table
from llmusic.config import compose_config
from llmusic.midi import load_score, midi_windows, song_pianoroll, song_to_score, write_midi
from llmusic.midi.synthetic import random_song
from llmusic.song import Song

SONGS: list[Song] = []  # set before forking so workers share the songs without pickling them
REPLIES: list[dict[str, list[tuple]]] = []  # the same songs as the official parser hands them over
SPAN, TPQ, STEPS = 7680, 480, 128
SPAN_SECONDS = SPAN / TPQ * 60 / 120  # 120 BPM
OFFICIAL_PROGRAMS = {"melody": 0, "chords": 0, "bass": 33, "rhythm": None}


def official_midi(tracks: dict[str, list[tuple]]) -> mido.MidiFile:
    """The official generate.py's writer, by the rules in ../shared/reference/README.md."""
    mid = mido.MidiFile()
    meta = mido.MidiTrack()
    mid.tracks.append(meta)
    meta.append(mido.MetaMessage("set_tempo", tempo=int(60000000 / 120)))
    meta.append(mido.MetaMessage("time_signature", numerator=4, denominator=4))
    meta.append(mido.MetaMessage("end_of_track", time=0))
    for name, events in tracks.items():
        track = mido.MidiTrack()
        mid.tracks.append(track)
        if name != "rhythm" and OFFICIAL_PROGRAMS[name] is not None:
            track.append(mido.Message("program_change", program=OFFICIAL_PROGRAMS[name], time=0))
        channel = 9 if name == "rhythm" else 0
        now = 0
        for pitch, duration, velocity, start in sorted(events, key=lambda e: e[3]):
            track.append(mido.Message("note_on", note=pitch, velocity=velocity, time=max(0, start - now),
                                      channel=channel))
            track.append(mido.Message("note_off", note=pitch, velocity=0, time=duration, channel=channel))
            now = start + duration
        track.append(mido.MetaMessage("end_of_track", time=0))
    return mid


class _Sink:
    """A write-only file object that drops bytes: serialisation cost without the disk."""

    def write(self, data: bytes) -> int:
        return len(data)


OUT = Path()  # where files go; set in main before forking


def ours_midi_file(i: int) -> None:
    write_midi(SONGS[i], OUT / f"{i}.mid")


def ours_midi_bytes(i: int) -> None:
    song_to_score(SONGS[i]).dumps_midi()


def official_midi_file(i: int) -> None:
    official_midi(REPLIES[i]).save(str(OUT / f"official_{i}.mid"))


def official_midi_bytes(i: int) -> None:
    official_midi(REPLIES[i]).save(file=_Sink())


def official_write_read_roll(i: int) -> np.ndarray:
    path = OUT / f"official_e2e_{i}.mid"
    official_midi(REPLIES[i]).save(str(path))
    roll = np.zeros((4, 128, STEPS), dtype=np.float32)
    fs = STEPS / SPAN_SECONDS
    for channel, instrument in enumerate(pretty_midi.PrettyMIDI(str(path)).instruments[:4]):
        for note in instrument.notes:
            roll[channel, note.pitch, int(note.start * fs):int(note.end * fs)] = 1.0
    return roll


def ours_write_read_roll(i: int) -> np.ndarray:
    path = OUT / f"e2e_{i}.mid"
    write_midi(SONGS[i], path)
    return midi_windows(load_score(path), SPAN, TPQ, STEPS)[0][0]


def ours_write_roll_from_song(i: int) -> np.ndarray:
    write_midi(SONGS[i], OUT / f"e2e_song_{i}.mid")
    return song_pianoroll(SONGS[i], SPAN, STEPS)  # consumed, not kept: 16,250 rolls would be 4.3 GB


def timed(job, indices: range) -> tuple[float, float]:
    """(wall, CPU) seconds of job(i) over indices. CPU time is the fairer figure on a shared machine."""
    wall, cpu = time.perf_counter(), time.process_time()
    for i in indices:
        job(i)
    return time.perf_counter() - wall, time.process_time() - cpu


def taking_turns(jobs: list, n: int, chunk: int, desc: str) -> dict[str, tuple[float, float]]:
    """(wall, CPU) seconds of each job over range(n), the jobs taking turns on chunks of songs."""
    total = {job.__name__: (0.0, 0.0) for job in jobs}
    for first in tqdm(range(0, n, chunk), desc=desc, leave=False):
        for job in jobs:
            wall, cpu = timed(job, range(first, min(first + chunk, n)))
            total[job.__name__] = (total[job.__name__][0] + wall, total[job.__name__][1] + cpu)
    return total


def _shard(args: tuple[int, int]) -> tuple[float, float]:
    first, step = args
    return timed(ours_write_roll_from_song, range(first, len(SONGS), step))


JOBS = [ours_midi_file, official_midi_file, ours_midi_bytes, official_midi_bytes,
        official_write_read_roll, ours_write_read_roll, ours_write_roll_from_song]
RATIOS = [("MIDI bytes (write only)", "official_midi_bytes", "ours_midi_bytes"),
          ("MIDI files (write only)", "official_midi_file", "ours_midi_file"),
          ("write, read back, roll", "official_write_read_roll", "ours_write_read_roll"),
          ("write, roll from the song", "official_write_read_roll", "ours_write_roll_from_song")]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--n", type=int, default=16_250, help="songs (the paper's 16,250 by default)")
    parser.add_argument("--repeats", type=int, default=3, help="timings of the whole set (min and median)")
    parser.add_argument("--workers", type=int, default=2, help="processes for the whole-set run")
    parser.add_argument("--chunk", type=int, default=500, help="songs per turn in the 1-process comparison")
    parser.add_argument("--out", type=Path, default=None,
                        help="where files go (default: a temp dir on /dev/shm, removed afterwards)")
    add_table_dir(parser)
    args = parser.parse_args()

    constraints = instantiate(compose_config("constraints/paper").constraints)
    SONGS.extend(random_song(seed, constraints) for seed in tqdm(range(args.n), desc="songs"))
    REPLIES.extend({role: [tuple(e) for e in events.tolist()] for role, events in song.tracks.items()}
                   for song in SONGS)
    notes = sum(song.n_notes for song in SONGS)

    # A RAM disk by default: creating a file costs 0.05-2 ms on this machine's ext4 depending on
    # load, which would measure the disk, not the writers. Pass --out to time a real disk.
    ram = "/dev/shm" if Path("/dev/shm").is_dir() else None
    out = Path(tempfile.mkdtemp(prefix="render_bench_", dir=ram)) if args.out is None else args.out
    out.mkdir(parents=True, exist_ok=True)
    global OUT
    OUT = out
    load = [machine()]
    runs: dict[str, list[tuple[float, float]]] = {}
    parallel = f"ours_write_roll_from_song on {args.workers} processes (whole set)"
    try:
        for r in range(args.repeats):
            for name, times in taking_turns(JOBS, args.n, args.chunk, f"round {r + 1}, 1 process").items():
                runs.setdefault(name, []).append(times)
            OUT = out / f"parallel_{r}"  # new files again: overwriting costs less than creating
            OUT.mkdir()
            with multiprocessing.get_context("fork").Pool(args.workers) as pool:
                wall = time.perf_counter()
                shards = pool.map(_shard, [(k, args.workers) for k in range(args.workers)])
                runs.setdefault(parallel, []).append((time.perf_counter() - wall, sum(cpu for _, cpu in shards)))
            OUT = out
            load.append(machine())
        official = symusic.Score(str(out / "official_e2e_0.mid"))
        assert sum(len(t.notes) for t in official.tracks) == SONGS[0].n_notes  # drifted, but every note
    finally:
        if args.out is None:
            shutil.rmtree(out)

    def median(name: str, k: int) -> float:
        return statistics.median(t[k] for t in runs[name])

    rows = [[name, min(t[0] for t in times), median(name, 0), min(t[1] for t in times), median(name, 1),
             median(name, 1) / args.n * 1e6] for name, times in runs.items()]
    for label, theirs, ours in RATIOS:
        print(f"{label}: official {median(theirs, 1) / args.n * 1e6:,.0f} µs/song, ours "
              f"{median(ours, 1) / args.n * 1e6:,.1f} µs/song (median CPU): {median(theirs, 1) / median(ours, 1):.1f}x "
              f"on CPU time, {median(theirs, 0) / median(ours, 0):.1f}x on wall time")
    rows += [[f"ratio: {label} (official / ours)", median(theirs, 0) / median(ours, 0), "",
              median(theirs, 1) / median(ours, 1), "", ""] for label, theirs, ours in RATIOS]
    write_table(args.table_dir, "render",
                ["what", "wall s (min)", "wall s (median)", "CPU s (min)", "CPU s (median)", "CPU µs/song (median)"],
                rows, f"{args.n:,} songs ({notes:,} notes), {args.repeats} repeats, ratios of medians; "
                      f"{platform.machine()}, Python {platform.python_version()}, numpy {np.__version__}, "
                      f"symusic {symusic.__version__}, mido {version('mido')}, pretty_midi {version('pretty_midi')}; "
                      f"before: {load[0]}; after each repeat: {'; '.join(load[1:])}")


if __name__ == "__main__":
    main()
