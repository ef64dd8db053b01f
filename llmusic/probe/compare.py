"""Every number of the probe, from two feature sets: rows (a run's genres) against columns (real classes).

`compare` standardises on the real side, then computes the distance matrix with song-bootstrap
intervals, genre retrieval with its permutation chance, realism per mapped row, the distance of
each row to its mapped class and the per-feature gaps; with `calibration` it repeats the
distances and realism with one half of the real songs as rows and the other half as columns
(identity mapping), the values a run's numbers are read against. Returns plain JSON-able values
(NaN as None) plus the arrays the figures need under "_arrays".
"""

from __future__ import annotations

import math
from collections.abc import Mapping

import numpy as np

from llmusic.eval.uncertainty import percentile_interval
from llmusic.midi.features import FEATURE_NAMES
from llmusic.probe.distance import (energy_distances, permutation_chance, retrieval, standardise,
                                    standardiser)
from llmusic.probe.gaps import feature_gaps, ranked
from llmusic.probe.realism import realism
from llmusic.probe.samples import FeatureSet, halves


def _interval(samples: np.ndarray) -> list[float]:
    finite = samples[np.isfinite(samples)]
    return list(percentile_interval(finite)) if len(finite) else [math.nan, math.nan]


def plain(value):
    """numpy values and NaN -> JSON-able Python (NaN -> None)."""
    if isinstance(value, dict):
        return {str(k): plain(v) for k, v in value.items() if not str(k).startswith("_")}
    if isinstance(value, (list, tuple, np.ndarray)):
        return [plain(v) for v in value]
    if isinstance(value, (np.integer, np.bool_)):
        return value.item()
    if isinstance(value, (float, np.floating)):
        return None if math.isnan(value) else float(value)
    return value


def compare(llm: FeatureSet, real: FeatureSet, mapping: Mapping[str, str | None], n_resamples: int = 1000,
            folds: int = 5, l2: float = 1.0, top_gaps: int = 10, seed: int = 0, calibration: bool = True) -> dict:
    mean, scale, kept = standardiser(real.features)
    zl, zr = standardise(llm.features, mean, scale, kept), standardise(real.features, mean, scale, kept)
    dist = energy_distances(zl, llm.song, llm.group, len(llm.groups), zr, real.song, real.group, len(real.groups),
                            n_resamples, seed)  # (1 + R, rows, columns)
    column = {c: j for j, c in enumerate(real.groups)}
    targets = np.array([column.get(mapping.get(g), -1) for g in llm.groups])
    accuracy = retrieval(dist, targets)
    nearest = np.argmin(np.where(np.isnan(dist), np.inf, dist), axis=2)  # (1 + R, rows)
    chance, p_value = permutation_chance(nearest[0], targets, seed=seed)
    sd = np.nanstd(real.features, axis=0)
    rows, realism_samples, distance_samples, gaps = [], [], [], {}
    for i, genre in enumerate(llm.groups):
        j = int(targets[i])
        row = {"genre": genre, "mapped": mapping.get(genre), "nearest": real.groups[nearest[0, i]],
               "scored": j >= 0}
        if j >= 0:
            mine, theirs = llm.group == i, real.group == j
            found = realism(zl[mine], llm.song[mine], zr[theirs], real.song[theirs], folds, l2, n_resamples, seed)
            realism_samples.append(found.pop("resamples", np.full(n_resamples, np.nan)))
            distance_samples.append(dist[1:, i, j])
            gap = feature_gaps(llm.features[mine], llm.song[mine], real.features[theirs], real.song[theirs], sd,
                               n_resamples, seed)
            gaps[genre] = ranked(gap, genre, real.groups[j], top_gaps)
            row.update({"hit": bool(nearest[0, i] == j), "hit_rate": float(np.mean(nearest[1:, i] == j)),
                        "mapped_rank": int(np.sum(dist[0, i] < dist[0, i, j])) + 1,
                        "distance": dist[0, i, j], "distance_interval": _interval(dist[1:, i, j]),
                        "realism": found, "_d": gap["d"]})
        elif genre in mapping and mapping[genre] is not None:
            row["note"] = f"{mapping[genre]} is not among the real classes kept"
        rows.append(row)
    scored = [r for r in rows if r["scored"]]
    mean_auc = np.array([r["realism"]["auc"] for r in scored])
    d_rows = np.array([r["_d"] for r in scored]) if scored else np.zeros((0, len(FEATURE_NAMES)))
    overall = np.nanmean(np.abs(d_rows), axis=0) if scored else np.full(len(FEATURE_NAMES), np.nan)
    result = {
        "songs": {"llm": llm.songs_per_group(), "real": real.songs_per_group()},
        "windows": {"llm": len(llm.song), "real": len(real.song)},
        "skipped": {"llm": llm.skipped, "real": real.skipped},
        "features": {"names": list(FEATURE_NAMES),
                     "constant_in_real_data": [f for f, k in zip(FEATURE_NAMES, kept) if not k]},
        "distance": {"rows": llm.groups, "columns": real.groups, "value": dist[0],
                     "low": np.nanpercentile(dist[1:], 2.5, axis=0) if n_resamples else dist[0],
                     "high": np.nanpercentile(dist[1:], 97.5, axis=0) if n_resamples else dist[0]},
        "retrieval": {"accuracy": float(accuracy[0]) if len(scored) else math.nan, "interval": _interval(accuracy[1:]),
                      "chance": chance, "p_value": p_value, "scored_genres": len(scored)},
        "realism": {"mean_auc": float(np.nanmean(mean_auc)) if len(scored) else math.nan,
                    "interval": _interval(np.nanmean(np.array(realism_samples), axis=0)) if scored else [math.nan] * 2},
        "distance_to_mapped": {"mean": float(np.mean([r["distance"] for r in scored])) if scored else math.nan,
                               "interval": _interval(np.mean(distance_samples, axis=0)) if scored else [math.nan] * 2},
        "rows": rows,
        "gaps": {"by_genre": gaps, "overall": [{"feature": FEATURE_NAMES[f], "mean_abs_d": overall[f]}
                                                for f in np.argsort(-np.nan_to_num(overall, nan=-1.0))]},
        "_arrays": {"d": d_rows, "d_rows": [r["genre"] for r in scored]},
    }
    if calibration:
        half_a, half_b = halves(real, seed)
        check = compare(half_a, half_b, {c: c for c in real.groups}, n_resamples, folds, l2, top_gaps, seed, False)
        result["calibration"] = {"what": "one half of the real songs of each class as rows, the other half as columns",
                                 "songs": check["songs"], "retrieval": check["retrieval"], "realism": check["realism"],
                                 "distance_to_mapped": check["distance_to_mapped"]}
    return result
