"""The analysis figures, drawn on bare `Figure` objects (no pyplot, so no GUI backend and no global
state: safe in workers, tests and notebooks alike). Each function returns its figure and writes a PNG
when given a path."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import numpy as np
from matplotlib.colors import LinearSegmentedColormap
from matplotlib.figure import Figure
from matplotlib.patches import Rectangle
from matplotlib.ticker import MaxNLocator

from llmusic.analysis.stats import FEATURES, Distinctness, ticks_per_bar
from llmusic.song import TRACKS, Song

ROLE_COLORS = {"melody": "#d62728", "chords": "#1f77b4", "bass": "#2ca02c", "rhythm": "#7f7f7f"}
PITCH_CLASSES = ("C", "C#", "D", "D#", "E", "F", "F#", "G", "G#", "A", "A#", "B")


def _save(fig: Figure, path: Path | None) -> Figure:
    if path is not None:
        Path(path).parent.mkdir(parents=True, exist_ok=True)
        fig.savefig(path, dpi=110, bbox_inches="tight")
    return fig


def _annotate(ax, values: np.ndarray, fmt: str, fontsize: float) -> None:
    """Write each cell's value on a heat map, dark on light cells and light on dark ones."""
    finite = values[np.isfinite(values)]
    mid = (finite.min() + finite.max()) / 2 if finite.size else 0
    for (i, j), v in np.ndenumerate(values):
        if np.isfinite(v):
            ax.text(j, i, format(v, fmt), ha="center", va="center", fontsize=fontsize,
                    color="white" if v < mid else "black")


def valid_rate_heatmap(
    rates: np.ndarray, genres: list[str], styles: list[str], path: Path | None = None
) -> Figure:
    """Genre x style heat map of the share of valid songs; grey cells were never asked for."""
    fig = Figure(figsize=(max(6, 0.45 * len(styles) + 3), max(3, 0.38 * len(genres) + 1.5)))
    ax = fig.add_subplot()
    cmap = LinearSegmentedColormap.from_list(
        "fail_ok", ["#7f0000", "#fdae61", "#ffffbf", "#1a9850"]).with_extremes(bad="#cccccc")
    im = ax.imshow(np.ma.masked_invalid(rates), cmap=cmap, vmin=0, vmax=1, aspect="auto")
    _annotate(ax, rates * 100, ".0f", fontsize=6 if len(styles) > 12 else 8)
    ax.set_xticks(range(len(styles)), styles, rotation=60, ha="right", fontsize=8)
    ax.set_yticks(range(len(genres)), genres, fontsize=8)
    ax.set_xlabel("style")
    ax.set_ylabel("genre")
    overall = np.nanmean(rates) if np.isfinite(rates).any() else float("nan")
    ax.set_title(f"Valid songs per genre x style, % (mean over cells {overall:.1%})")
    fig.colorbar(im, ax=ax, fraction=0.03, pad=0.01, label="valid rate")
    return _save(fig, path)


def feature_histograms(
    feature: str, hists: dict[str, np.ndarray], genres: list[str], path: Path | None = None
) -> Figure:
    """One panel per track role: a genre x bin heat map, each genre's row normalised to sum 1.

    Rows rather than overlaid curves because 13 genres' curves are unreadable on one axis; the
    colour is the share of that genre's notes (onsets, bars) in the bin.
    """
    feat = FEATURES[feature]
    fig = Figure(figsize=(15, max(3.2, 0.32 * len(genres) + 1.8)), layout="constrained")
    axes = fig.subplots(1, len(TRACKS), sharey=True)
    for ax, role in zip(axes, TRACKS):
        counts = hists[role].astype(np.float64)  # (G, bins)
        totals = counts.sum(1, keepdims=True)
        shares = np.divide(counts, totals, out=np.zeros_like(counts), where=totals > 0)
        lo, hi = 0, counts.shape[1]
        used = np.flatnonzero(counts.sum(0))
        if feature == "pitch" and used.size:  # the role's register, with a little context
            lo, hi = max(0, used.min() - 2), min(hi, used.max() + 3)
        ax.imshow(shares[:, lo:hi], cmap="magma", aspect="auto", vmin=0,
                  extent=(lo - 0.5, hi - 0.5, len(genres) - 0.5, -0.5))
        step = max(1, (hi - lo) // 10)
        ticks = list(range(lo, hi, step))
        ax.set_xticks(ticks, [feat.bin_labels[t] for t in ticks], rotation=45, ha="right", fontsize=7)
        ax.set_title(f"{role} ({int(counts.sum()):,} {feat.unit})", color=ROLE_COLORS[role], fontsize=10)
        ax.set_xlabel(feat.label, fontsize=8)
    axes[0].set_yticks(range(len(genres)), genres, fontsize=8)
    fig.suptitle(f"{feature}: share per genre (each row sums to 1)")
    return _save(fig, path)


def distinctness_figure(dist: Distinctness, path: Path | None = None) -> Figure:
    """Left: each genre's mean pitch-class histogram. Right: Jensen-Shannon distances between them."""
    n = len(dist.genres)
    fig = Figure(figsize=(13, max(3.5, 0.4 * n + 2)), layout="constrained")
    left, right = fig.subplots(1, 2, width_ratios=[1, 1.1])
    im = left.imshow(dist.centroids, cmap="viridis", aspect="auto", vmin=0)
    left.set_xticks(range(12), PITCH_CLASSES, fontsize=8)
    left.set_yticks(range(n), dist.genres, fontsize=8)
    left.set_title("mean pitch-class histogram (pitched tracks)", fontsize=10)
    fig.colorbar(im, ax=left, fraction=0.04, label="share of notes")
    im = right.imshow(dist.distances, cmap="viridis", vmin=0, aspect="auto")
    _annotate(right, dist.distances, ".2f", fontsize=6 if n > 8 else 8)
    right.set_xticks(range(n), dist.genres, rotation=60, ha="right", fontsize=8)
    right.set_yticks(range(n), dist.genres, fontsize=8)
    right.set_title("Jensen-Shannon distance between genre means", fontsize=10)
    fig.colorbar(im, ax=right, fraction=0.04, label="JS distance (base 2)")
    fig.suptitle(
        f"Genre distinctness: silhouette {dist.silhouette:.3f}, "
        f"between/within distance ratio {dist.between_within:.2f}"
    )
    return _save(fig, path)


def failure_reasons_bar(reasons: Counter, path: Path | None = None, top: int = 25) -> Figure:
    """Horizontal bars of the most common failure reasons, largest on top."""
    items = reasons.most_common(top)
    fig = Figure(figsize=(9, max(2.5, 0.35 * len(items) + 1.2)), layout="constrained")
    ax = fig.add_subplot()
    if items:
        labels, counts = zip(*items)
        y = np.arange(len(items))
        ax.barh(y, counts, color="#b2182b")
        ax.set_yticks(y, [lab if len(lab) <= 60 else lab[:57] + "..." for lab in labels], fontsize=8)
        ax.invert_yaxis()
        for yi, c in zip(y, counts):
            ax.text(c, yi, f" {c}", va="center", fontsize=8)
    else:
        ax.text(0.5, 0.5, "no failures", ha="center", va="center", transform=ax.transAxes)
        ax.set_yticks([])
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax.set_xlabel("songs")
    ax.set_title(f"Failure reasons ({sum(reasons.values())} failed songs)")
    return _save(fig, path)


def pianoroll_figure(
    roll: np.ndarray, song: Song, title: str, ticks_per_step: float, path: Path | None = None
) -> Figure:
    """A song's piano roll, one panel per track role, each cropped to the pitches it uses.

    `roll`: (4, 128, steps) in llmusic.song.TRACKS order, as `song_pianoroll` makes it: what the
    classifier sees. Each note of `song` is outlined on top, so repeated notes stay apart and any
    disagreement between the roll and the notes shows.
    """
    steps = roll.shape[-1]
    spans = []
    for ch in roll:
        used = np.flatnonzero(ch.any(1))
        spans.append((max(0, used.min() - 1), min(128, used.max() + 2)) if used.size else (59, 62))
    fig = Figure(figsize=(10, 7), layout="constrained")
    axes = fig.subplots(len(TRACKS), 1, sharex=True, height_ratios=[max(4, hi - lo) for lo, hi in spans])
    bar_steps = ticks_per_bar(song) / ticks_per_step
    for ax, role, ch, (lo, hi) in zip(axes, TRACKS, roll, spans):
        cmap = LinearSegmentedColormap.from_list(role, ["white", ROLE_COLORS[role]])
        ax.imshow(ch[lo:hi], cmap=cmap, aspect="auto", origin="lower", vmin=0, vmax=1,
                  extent=(0, steps, lo - 0.5, hi - 0.5), interpolation="nearest")
        for pitch, duration, _, start in song.tracks.get(role, np.zeros((0, 4), dtype=np.int32)):
            ax.add_patch(Rectangle((start / ticks_per_step, pitch - 0.5), duration / ticks_per_step, 1,
                                   fill=False, edgecolor="black", lw=0.6))
        for b in np.arange(bar_steps, steps, bar_steps):
            ax.axvline(b, color="black", lw=0.5, alpha=0.4)
        ax.set_ylim(lo - 0.5, hi - 0.5)
        ax.yaxis.set_major_locator(MaxNLocator(nbins=5, integer=True))
        ax.set_ylabel(role, color=ROLE_COLORS[role])
        ax.tick_params(labelsize=7)
    bar_starts = np.arange(0, steps, bar_steps)
    axes[-1].set_xticks(bar_starts, [str(i + 1) for i in range(len(bar_starts))])
    axes[-1].set_xlim(0, steps)
    axes[-1].set_xlabel("bar")
    fig.suptitle(title)
    return _save(fig, path)
