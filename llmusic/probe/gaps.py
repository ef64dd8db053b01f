"""Per-feature gaps: which statistics differ most between an LLM genre and its real class.

For each feature: the mean over songs on each side (a song's value is the mean of its windows;
undefined values, such as the register of a silent role, left out), the difference in units of the
real data's standard deviation (of windows, all classes: one yardstick for every row), with a
song-bootstrap interval, and a sentence that says it in musical words ("LLM Jazz has 40% less
distinct pitch classes than real Jazz").
"""

from __future__ import annotations

import numpy as np

from llmusic.eval.uncertainty import percentile_interval
from llmusic.midi.features import COLUMN, FEATURE_GROUPS, FEATURE_NAMES
from llmusic.probe.distance import song_counts

ROLES = ("melody", "chords", "bass", "rhythm")
SHARE_GROUPS = ("pitch_class", "melody_interval", "duration", "onset_pitched", "onset_drums", "drums")


def song_means(features: np.ndarray, song: np.ndarray) -> np.ndarray:
    """(S, F) nan-mean of each song's windows, songs in sorted-name order."""
    _, index = np.unique(song.astype(str), return_inverse=True)
    n = index.max() + 1 if len(index) else 0
    defined = ~np.isnan(features)
    total, count = np.zeros((n, features.shape[1])), np.zeros((n, features.shape[1]))
    np.add.at(total, index, np.where(defined, features, 0.0))
    np.add.at(count, index, defined)
    with np.errstate(invalid="ignore", divide="ignore"):
        return total / count


def _resampled_means(means: np.ndarray, counts: np.ndarray) -> np.ndarray:
    """(R, F) mean over songs under bootstrap counts (R, S), undefined values left out."""
    defined = ~np.isnan(means)
    with np.errstate(invalid="ignore", divide="ignore"):
        return (counts @ np.where(defined, means, 0.0)) / (counts @ defined)


def feature_gaps(x: np.ndarray, song_x: np.ndarray, y: np.ndarray, song_y: np.ndarray, sd: np.ndarray,
                 n_resamples: int = 1000, seed: int = 0) -> dict[str, np.ndarray]:
    """mean_llm, mean_real (F,), d (F,) = (mean_llm - mean_real) / sd, d_low, d_high (F,) its interval."""
    rng = np.random.default_rng(seed)
    mx, my = song_means(x, song_x), song_means(y, song_y)
    a = _resampled_means(mx, song_counts(len(mx), n_resamples, rng))
    b = _resampled_means(my, song_counts(len(my), n_resamples, rng))
    with np.errstate(invalid="ignore", divide="ignore"):
        d = (a - b) / np.where(sd > 0, sd, np.nan)  # (1 + R, F)
    low, high = np.full(len(sd), np.nan), np.full(len(sd), np.nan)
    for f in range(len(sd)):
        finite = d[1:, f][np.isfinite(d[1:, f])]
        if len(finite):
            low[f], high[f] = percentile_interval(finite)
    return {"mean_llm": a[0], "mean_real": b[0], "d": d[0], "d_low": low, "d_high": high}


def is_share(feature: str) -> bool:
    """Whether a feature is one bin of a histogram of shares."""
    group = FEATURE_GROUPS[COLUMN[feature]]
    return group in SHARE_GROUPS and feature not in ("distinct_pitch_classes", "key_clarity")


def phrase(feature: str) -> str:
    """A feature's name in words."""
    kind, _, rest = feature.partition("_")
    if feature.startswith("pitch_class_"):
        return f"time on pitch class {feature[12:]} (in C major / A minor)"
    if feature.startswith("melody_interval_"):
        return f"melody steps of {feature[16:]} semitones"
    if feature.startswith(("onset_pitched_", "onset_drums_")):
        side = "pitched onsets" if "pitched" in feature else "drum hits"
        return f"{side} on 16th {int(feature[-2:]) + 1} of the bar"
    if feature.startswith("duration_"):
        return f"{rest.replace('_', ' ')} notes"
    if feature.startswith("drum_"):
        return f"{rest.replace('_', ' ')} hits among drum hits"
    if kind in ROLES:
        return f"{kind} {rest.replace('_', ' ')}"
    return feature.replace("_", " ")


def sentence(feature: str, llm: str, real: str, mean_llm: float, mean_real: float, d: float) -> str:
    """'LLM Jazz has 40% fewer distinct pitch classes than real Jazz (4.2 vs 7, d = -1.30)'."""
    values = f"({mean_llm:.3g} vs {mean_real:.3g}, d = {d:+.2f})"
    if feature.endswith("_pitch_mean"):
        shift = mean_llm - mean_real
        return (f"LLM {llm} plays its {feature.split('_')[0]} {abs(shift):.1f} semitones "
                f"{'higher' if shift > 0 else 'lower'} than real {real} {values}")
    if mean_real == 0:
        return f"LLM {llm} has {phrase(feature)} where real {real} has none {values}"
    change = 100 * (mean_llm - mean_real) / abs(mean_real)
    more = change > 0
    if is_share(feature) and change > 100:
        return f"LLM {llm} has {mean_llm / mean_real:.1f}x the share of {phrase(feature)} of real {real} {values}"
    if is_share(feature):
        return (f"LLM {llm} has a {abs(change):.0f}% {'larger' if more else 'smaller'} share of {phrase(feature)} "
                f"than real {real} {values}")
    if feature == "distinct_pitch_classes" or feature.endswith("_notes_per_bar"):
        return (f"LLM {llm} has {abs(change):.0f}% {'more' if more else 'fewer'} {phrase(feature)} "
                f"than real {real} {values}")
    return (f"LLM {llm}'s {phrase(feature)} is {abs(change):.0f}% {'higher' if more else 'lower'} "
            f"than real {real}'s {values}")


def ranked(gap: dict[str, np.ndarray], llm: str, real: str, top: int | None = None) -> list[dict]:
    """Features by |d|, largest first (undefined ones last), each with its numbers and sentence."""
    order = np.argsort(-np.nan_to_num(np.abs(gap["d"]), nan=-1.0), kind="stable")[:top]
    return [{"feature": FEATURE_NAMES[f], "d": float(gap["d"][f]),
             "interval": [float(gap["d_low"][f]), float(gap["d_high"][f])],
             "mean_llm": float(gap["mean_llm"][f]), "mean_real": float(gap["mean_real"][f]),
             "sentence": sentence(FEATURE_NAMES[f], llm, real, gap["mean_llm"][f], gap["mean_real"][f], gap["d"][f])}
            for f in order]
