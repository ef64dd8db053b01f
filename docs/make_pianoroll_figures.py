"""Make the pictures of docs/pianoroll.md: a seeded song's roll and windows of two real LMD files.

    python docs/make_pianoroll_figures.py [--data ../shared/data]
"""

from __future__ import annotations

import argparse
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402  (the backend must be chosen first)
import numpy as np  # noqa: E402
from hydra.utils import instantiate  # noqa: E402

from llmusic.config import REPO_ROOT, compose_config  # noqa: E402
from llmusic.midi import MidiSkip, assign_roles, load_score, midi_windows, song_pianoroll  # noqa: E402
from llmusic.midi.synthetic import random_song  # noqa: E402
from llmusic.song import TRACKS  # noqa: E402

IMG = REPO_ROOT / "docs" / "img"
COLOURS = ("Blues", "Greens", "Oranges", "Purples")
STEPS_PER_BAR = 32  # 128 steps over 4 bars of 4/4


def draw(axes_row, roll: np.ndarray, label: str, titles: bool) -> None:
    """One roll (4, 128, steps) across a row of four axes, pitch 21-108 (the piano), bar lines dotted."""
    for c, ax in enumerate(axes_row):
        sounding = np.ma.masked_equal(roll[c, 21:109], 0)  # silence stays white
        ax.imshow(sounding, origin="lower", aspect="auto", cmap=COLOURS[c], vmin=-0.5, vmax=1,
                  extent=(0, roll.shape[-1], 21, 109), interpolation="nearest")
        for bar in range(0, roll.shape[-1] + 1, STEPS_PER_BAR):
            ax.axvline(bar, color="grey", lw=0.5, ls=":")
        if titles:
            ax.set_title(TRACKS[c], fontsize=9)
        ax.tick_params(labelsize=6)
    axes_row[0].set_ylabel(f"{label}\nMIDI pitch", fontsize=7)


def song_figure(constraints) -> Path:
    song = random_song(0, constraints)
    roll = song_pianoroll(song, constraints.time_span_ticks)
    fig, axes = plt.subplots(1, 4, figsize=(12, 3), sharey=True)
    draw(axes, roll, "ticks 0-7680", titles=True)
    for ax in axes:
        ax.set_xlabel("step (60 ticks = a 32nd note; bars dotted)", fontsize=7)
    fig.suptitle(f"random_song(0, paper constraints): {constraints.time_span_ticks} ticks -> 128 steps "
                 "(4 bars of 4/4), binary roll", fontsize=9)
    fig.tight_layout()
    path = IMG / "song_roll.png"
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def lmd_figure(midi_path: Path, constraints, n_windows: int = 3) -> Path:
    score = load_score(midi_path)
    roles = assign_roles(score)
    windows, starts, _ = midi_windows(score, constraints.time_span_ticks, constraints.ticks_per_quarter)
    names = {role: [score.tracks[i].name.strip() or f"#{i}" for i in idx] for role, idx in roles.items()}
    fig, axes = plt.subplots(n_windows, 4, figsize=(12, 2.6 * n_windows), sharey=True, squeeze=False)
    spread = np.linspace(0, len(starts) - 1, n_windows).round().astype(int)  # beginning, middle, end
    for row, (roll, start) in enumerate(zip(windows[spread], starts[spread])):
        bar = start // (4 * score.ticks_per_quarter)
        draw(axes[row], roll, f"tick {start} (bar {bar + 1})", titles=row == 0)
    for ax in axes[-1]:
        ax.set_xlabel("step (a 32nd note; bars dotted)", fontsize=7)
    roles_text = "; ".join(f"{role}: {', '.join(n[:4]) + (' ...' if len(n) > 4 else '') or '-'}"
                           for role, n in names.items())
    fig.suptitle(f"LMD {midi_path.stem} ({score.ticks_per_quarter} ticks per quarter): {n_windows} of the "
                 f"{len(starts)} windows of {constraints.time_span_ticks // constraints.ticks_per_quarter} quarters\ntracks by role: {roles_text}", fontsize=8)
    fig.tight_layout()
    path = IMG / f"lmd_{midi_path.stem[:8]}_windows.png"
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def pick_lmd_files(midi_dir: Path, constraints, n: int = 2) -> list[Path]:
    """The first files (by name) where every role gets a track and 3 windows: telling pictures."""
    picked = []
    for path in sorted(midi_dir.glob("*.mid")):
        score = load_score(path)
        roles = assign_roles(score)
        try:
            starts = midi_windows(score, constraints.time_span_ticks, constraints.ticks_per_quarter).starts
            if all(roles.values()) and len(roles["chords"]) <= 3 and len(starts) >= 3:
                picked.append(path)
        except MidiSkip:
            continue
        if len(picked) == n:
            break
    return picked


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--data", type=Path, default=REPO_ROOT.parent / "shared" / "data")
    args = parser.parse_args()
    IMG.mkdir(parents=True, exist_ok=True)
    constraints = instantiate(compose_config("constraints/paper").constraints)
    print(song_figure(constraints))
    for path in pick_lmd_files(args.data / "lmd_subset" / "midi", constraints):
        print(lmd_figure(path, constraints))


if __name__ == "__main__":
    main()
