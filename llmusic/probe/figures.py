"""The probe's figures, on bare `Figure` objects (no pyplot): the distance heat map, realism and
retrieval bars, the per-feature gap heat map. Each takes the result of `compare` and a PNG path."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from matplotlib.figure import Figure
from matplotlib.patches import Rectangle

GAP_FEATURES = 24  # columns of the gap heat map: the features with the largest mean |d|


def _save(fig: Figure, path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110, bbox_inches="tight")


def distance_heatmap(result: dict, path: Path) -> None:
    """Rows x columns energy distance; a box on each row's mapped class, a dot on its nearest."""
    dist = result["distance"]
    value = np.asarray(dist["value"], dtype=float)
    rows, columns = dist["rows"], dist["columns"]
    fig = Figure(figsize=(max(6, 0.55 * len(columns) + 3), max(3, 0.4 * len(rows) + 1.8)))
    ax = fig.add_subplot()
    im = ax.imshow(np.ma.masked_invalid(value), cmap="viridis_r", aspect="auto")
    finite = value[np.isfinite(value)]
    mid = (finite.min() + finite.max()) / 2 if finite.size else 0.0
    for (i, j), v in np.ndenumerate(value):
        if np.isfinite(v):
            ax.text(j, i, f"{v:.2f}", ha="center", va="center", fontsize=7, color="black" if v < mid else "white")
    for i, row in enumerate(result["rows"]):
        ax.plot(columns.index(row["nearest"]), i, "o", ms=14, mfc="none", mec="red", mew=1.2)
        if row["scored"]:
            j = columns.index(row["mapped"])
            ax.add_patch(Rectangle((j - 0.5, i - 0.5), 1, 1, fill=False, ec="black", lw=1.5))
    ax.set_xticks(range(len(columns)), columns, rotation=45, ha="right", fontsize=8)
    ax.set_yticks(range(len(rows)), [f"LLM {r}" for r in rows], fontsize=8)
    ax.set_xlabel("real class")
    retrieval = result["retrieval"]
    ax.set_title(f"Energy distance (black box: mapped class, red ring: nearest); retrieval "
                 f"{retrieval['accuracy']:.0%} of {retrieval['scored_genres']}, chance {retrieval['chance']:.0%}",
                 fontsize=9)
    fig.colorbar(im, ax=ax, fraction=0.03, pad=0.01, label="energy distance (standardised features)")
    _save(fig, path)


def realism_bars(result: dict, path: Path) -> None:
    """Realism AUC per mapped row with its interval, 0.5 (indistinguishable) and the real-vs-real calibration."""
    scored = [r for r in result["rows"] if r["scored"]]
    auc = np.array([np.nan if r["realism"]["auc"] is None else r["realism"]["auc"] for r in scored], dtype=float)
    low = np.array([r["realism"]["interval"][0] for r in scored], dtype=float)
    high = np.array([r["realism"]["interval"][1] for r in scored], dtype=float)
    fig = Figure(figsize=(max(5, 0.5 * len(scored) + 2), 3.6))
    ax = fig.add_subplot()
    x = np.arange(len(scored))
    ax.bar(x, auc, color="#4c72b0")
    ax.errorbar(x, auc, yerr=[np.nan_to_num(auc - low), np.nan_to_num(high - auc)], fmt="none", ecolor="black",
                capsize=3, lw=1)
    ax.axhline(0.5, color="grey", ls="--", lw=1, label="0.5: indistinguishable")
    calibration = result.get("calibration", {}).get("realism", {}).get("mean_auc")
    if calibration is not None:
        ax.axhline(calibration, color="green", ls=":", lw=1.2, label=f"real vs real halves ({calibration:.2f})")
    ax.set_xticks(x, [f"{r['genre']}\n-> {r['mapped']}" for r in scored], rotation=45, ha="right", fontsize=7)
    ax.set_ylim(0, 1.02)
    ax.set_ylabel("AUC, LLM vs real")
    ax.set_title("Realism: a logistic regression telling LLM songs from real ones (95% interval)", fontsize=9)
    ax.legend(fontsize=7, loc="lower right")
    _save(fig, path)


def gap_heatmap(result: dict, path: Path) -> None:
    """Standardised difference d (LLM - real, in real standard deviations) of the features that differ
    most on average, one row per mapped genre."""
    d, rows = result["_arrays"]["d"], result["_arrays"]["d_rows"]
    names = [g["feature"] for g in result["gaps"]["overall"][:GAP_FEATURES]]
    index = [result["features"]["names"].index(n) for n in names]
    values = d[:, index] if len(rows) else np.zeros((0, len(names)))
    fig = Figure(figsize=(max(6, 0.32 * len(names) + 3), max(2.5, 0.4 * len(rows) + 2)))
    ax = fig.add_subplot()
    limit = float(np.nanmax(np.abs(values))) if np.isfinite(values).any() else 1.0
    im = ax.imshow(np.ma.masked_invalid(values), cmap="RdBu_r", vmin=-limit, vmax=limit, aspect="auto")
    ax.set_xticks(range(len(names)), names, rotation=60, ha="right", fontsize=7)
    ax.set_yticks(range(len(rows)), [f"LLM {r}" for r in rows], fontsize=8)
    ax.set_title("Per-feature gaps: (LLM mean - real mean) / real sd; red: the LLM has more", fontsize=9)
    fig.colorbar(im, ax=ax, fraction=0.03, pad=0.01, label="d")
    _save(fig, path)
