"""Per-song note statistics, pooled per genre and track role, and how distinct the genres are.

Every statistic is read off a `Song`, so generated songs and real MIDI files read with
`llmusic.midi.render.read_midi` are described alike. Values are pooled over songs before they are
histogrammed, because 16,250 small per-song histograms cost more than one large one.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field

import numpy as np

from llmusic.song import DRUM_TRACK, DURATION, PITCH, START, TRACKS, VELOCITY, Song


@dataclass(frozen=True)
class Feature:
    """One per-note (or per-onset, per-bar) quantity, with the histogram bins it is drawn with."""

    name: str
    label: str  # axis label
    unit: str  # what one value counts: "notes", "onsets" or "bars"
    edges: np.ndarray  # histogram bin edges; values outside land in the end bins
    bin_labels: tuple[str, ...]  # one per bin, for tick labels

    def histogram(self, values: np.ndarray) -> np.ndarray:
        """Counts per bin, with values beyond either end counted in the end bins."""
        lo, hi = self.edges[0], np.nextafter(self.edges[-1], -np.inf)
        counts, _ = np.histogram(np.clip(values, lo, hi), self.edges)
        return counts.astype(np.int64)


def _integer_feature(name: str, label: str, unit: str, lo: int, hi: int) -> Feature:
    """Integer values lo..hi, one bin each; the last bin also holds everything above hi."""
    values = range(lo, hi + 1)
    labels = tuple(str(v) for v in values[:-1]) + (f"{hi}+",)
    return Feature(name, label, unit, np.arange(lo - 0.5, hi + 1.5), labels)


# Durations in quarter notes, one bin per power of two from a 32nd note to 16 bars of 4/4.
_DURATION_POWERS = np.arange(-3, 7)
FEATURES: dict[str, Feature] = {
    "pitch": Feature(
        "pitch", "MIDI pitch", "notes", np.arange(-0.5, 128.5), tuple(str(p) for p in range(128))
    ),
    "duration": Feature(
        "duration",
        "duration (quarter notes, log2 bins)",
        "notes",
        2.0 ** np.append(_DURATION_POWERS - 0.5, _DURATION_POWERS[-1] + 0.5),
        tuple(f"1/{2 ** -k}" if k < 0 else str(2**k) for k in _DURATION_POWERS),
    ),
    "velocity": Feature(
        "velocity", "velocity", "notes", np.arange(0, 129, 8), tuple(f"{v}-{v + 7}" for v in range(0, 128, 8))
    ),
    "polyphony": _integer_feature("polyphony", "notes sounding at each onset", "onsets", 1, 12),
    "density": _integer_feature("density", "notes starting per bar", "bars", 0, 32),
}


def ticks_per_bar(song: Song) -> int:
    num, den = song.time_signature
    return song.ticks_per_quarter * 4 * num // den


def onset_polyphony(events: np.ndarray) -> np.ndarray:
    """(K,) how many notes sound at each of the track's K distinct onset ticks.

    A note sounds on [start, start + duration): a note ending exactly where another starts does not
    overlap it, the usual legato convention.
    """
    if len(events) == 0:
        return np.zeros(0, dtype=np.int64)
    starts = np.sort(events[:, START])
    ends = np.sort(events[:, START] + events[:, DURATION])
    onsets = np.unique(starts)
    started = np.searchsorted(starts, onsets, side="right")
    ended = np.searchsorted(ends, onsets, side="right")
    return (started - ended).astype(np.int64)


def notes_per_bar(events: np.ndarray, bar_ticks: int, n_bars: int) -> np.ndarray:
    """(n_bars,) how many notes start in each bar; a note past n_bars adds bars."""
    bars = events[:, START] // bar_ticks
    return np.bincount(bars, minlength=n_bars).astype(np.int64)


def pitch_class_histogram(song: Song) -> np.ndarray:
    """(12,) share of the pitched notes (drums excluded) on each pitch class; zeros if none."""
    pitched = [ev[:, PITCH] for name, ev in song.tracks.items() if name != DRUM_TRACK]
    pitches = np.concatenate(pitched) if pitched else np.zeros(0, dtype=np.int32)
    counts = np.bincount(pitches % 12, minlength=12).astype(np.float64)
    return counts / counts.sum() if counts.sum() else counts


def song_features(song: Song, time_span_ticks: int) -> dict[str, dict[str, np.ndarray]]:
    """role -> feature name -> values (per note, per onset or per bar) for one song.

    Bars are counted over the span the song was asked to fill (`time_span_ticks`), so a song that stops
    early shows empty bars rather than a higher density.
    """
    bar_ticks = ticks_per_bar(song)
    n_bars = -(-time_span_ticks // bar_ticks)
    out = {}
    for role in TRACKS:
        ev = song.tracks.get(role, np.zeros((0, 4), dtype=np.int32))
        out[role] = {
            "pitch": ev[:, PITCH],
            "duration": ev[:, DURATION] / song.ticks_per_quarter,
            "velocity": ev[:, VELOCITY],
            "polyphony": onset_polyphony(ev),
            "density": notes_per_bar(ev, bar_ticks, n_bars),
        }
    return out


def js_distance(p: np.ndarray, q: np.ndarray) -> np.ndarray:
    """Jensen-Shannon distance (base 2, in [0, 1]) between distributions along the last axis.

    Broadcasts: (A, 1, K) against (1, B, K) gives the (A, B) matrix.
    """
    m = (p + q) / 2

    def kl(a: np.ndarray, b: np.ndarray) -> np.ndarray:
        with np.errstate(divide="ignore", invalid="ignore"):
            terms = np.where(a > 0, a * np.log2(a / b), 0.0)
        return terms.sum(-1)

    return np.sqrt(np.clip((kl(p, m) + kl(q, m)) / 2, 0.0, 1.0))


@dataclass
class Distinctness:
    """How far apart the genres' mean pitch-class histograms are, against the spread within."""

    genres: list[str]
    centroids: np.ndarray  # (G, 12) mean pitch-class histogram per genre
    distances: np.ndarray  # (G, G) JS distance between centroids
    silhouette: float  # mean over songs of (b - a) / max(a, b); nan with fewer than 2 genres
    between_within: float  # mean centroid-centroid distance / mean song-to-own-centroid distance

    def to_dict(self) -> dict:
        return {
            "feature": "pitch-class histogram of pitched tracks",
            "distance": "Jensen-Shannon (base 2)",
            "genres": self.genres,
            "centroids": self.centroids.round(5).tolist(),
            "distances": self.distances.round(5).tolist(),
            "silhouette": self.silhouette,
            "between_within_ratio": self.between_within,
        }


def genre_distinctness(histograms: dict[str, np.ndarray]) -> Distinctness:
    """Classifier-free separation of genres from per-song pitch-class histograms.

    `histograms`: genre -> (N_g, 12) per-song histograms. The silhouette is the centroid form
    (a = distance of a song to its own genre's mean, b = to the nearest other genre's mean): 1 means
    every song sits on its genre's mean, 0 means genres overlap, below 0 means songs are nearer
    another genre. A genre's own mean includes the song, which flatters genres with few songs.
    """
    genres = [g for g, h in histograms.items() if len(h)]
    centroids = np.stack([histograms[g].mean(0) for g in genres]) if genres else np.zeros((0, 12))
    distances = js_distance(centroids[:, None], centroids[None])  # (G, G)
    if len(genres) < 2:
        return Distinctness(genres, centroids, distances, float("nan"), float("nan"))
    own, nearest_other = [], []
    for gi, g in enumerate(genres):
        to_centroids = js_distance(histograms[g][:, None], centroids[None])  # (N_g, G)
        own.append(to_centroids[:, gi])
        nearest_other.append(np.delete(to_centroids, gi, axis=1).min(1))
    a, b = np.concatenate(own), np.concatenate(nearest_other)
    denom = np.maximum(a, b)
    silhouette = np.where(denom > 0, (b - a) / np.where(denom > 0, denom, 1), 0.0).mean()
    between = distances[~np.eye(len(genres), dtype=bool)].mean()
    within = a.mean()
    ratio = between / within if within > 0 else float("inf")
    return Distinctness(genres, centroids, distances, float(silhouette), float(ratio))


@dataclass
class DatasetStats:
    """Note statistics of many songs, pooled per genre and track role."""

    time_span_ticks: int  # the tick span songs were asked to fill (ConstraintSet.time_span_ticks)
    values: dict[tuple[str, str, str], list[np.ndarray]] = field(
        default_factory=lambda: defaultdict(list)
    )  # (feature, genre, role) -> per-song value arrays
    pitch_classes: dict[str, list[np.ndarray]] = field(default_factory=lambda: defaultdict(list))
    n_songs: dict[str, int] = field(default_factory=lambda: defaultdict(int))

    def add(self, genre: str, song: Song) -> None:
        for role, feats in song_features(song, self.time_span_ticks).items():
            for name, vals in feats.items():
                self.values[name, genre, role].append(vals)
        pcs = pitch_class_histogram(song)
        if pcs.any():
            self.pitch_classes[genre].append(pcs)
        self.n_songs[genre] += 1

    @property
    def genres(self) -> list[str]:
        return list(self.n_songs)

    def pooled(self, feature: str, genre: str, role: str) -> np.ndarray:
        arrays = self.values.get((feature, genre, role), [])
        return np.concatenate(arrays) if arrays else np.zeros(0)

    def histograms(self, feature: str, genres: list[str]) -> dict[str, np.ndarray]:
        """role -> (G, bins) counts of `feature`, one row per genre."""
        feat = FEATURES[feature]
        shape = (len(genres), len(feat.edges) - 1)
        return {
            role: np.array([feat.histogram(self.pooled(feature, g, role)) for g in genres],
                           dtype=np.int64).reshape(shape)
            for role in TRACKS
        }

    def summary(self, genres: list[str]) -> dict:
        """genre -> role -> feature -> {n, mean, std, min, max}, for stats.json."""
        out: dict = {}
        for g in genres:
            out[g] = {"songs": self.n_songs[g]}
            for role in TRACKS:
                out[g][role] = {}
                for name in FEATURES:
                    v = self.pooled(name, g, role)
                    out[g][role][name] = (
                        {"n": int(v.size), "mean": float(v.mean()), "std": float(v.std()),
                         "min": float(v.min()), "max": float(v.max())}
                        if v.size else {"n": 0}
                    )
        return out

    def distinctness(self, genres: list[str]) -> Distinctness:
        return genre_distinctness(
            {g: np.stack(self.pitch_classes[g]) if self.pitch_classes[g] else np.zeros((0, 12))
             for g in genres}
        )
