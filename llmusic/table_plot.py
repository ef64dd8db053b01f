"""A table's picture (table.png): one horizontal bar per row of table.md (cell, student, metric: the
mean over seeds, the seeds' spread as an error bar), with its majority baseline as a red tick, its
chance as a black one and the published numbers beside it as green diamonds, so a score below its
baselines shows at a glance."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np

from llmusic.table_numbers import published


def plot_table(title: str, numbers: Sequence[Mapping], paper: Mapping[str, Sequence[str]], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    groups: dict[tuple, list[Mapping]] = {}
    for n in numbers:
        groups.setdefault((n["cell"], n["student"], n["metric"]), []).append(n)
    labels = [" ".join(key) for key in groups]
    y = np.arange(len(groups))[::-1]  # the first row on top, as in table.md
    fig, ax = plt.subplots(figsize=(9, 1.2 + 0.32 * len(groups)), layout="constrained")
    for yi, ((_, student, metric), group) in zip(y, groups.items()):
        values = [n["value"] for n in group]
        mean = np.mean(values)  # of equal values it may differ from them in the last bit: clip the bar
        spread = [[max(mean - min(values), 0.0)], [max(max(values) - mean, 0.0)]]
        ax.barh(yi, mean, xerr=spread if len(values) > 1 else None, color="tab:blue", height=0.6)
        for key, colour in (("majority", "tab:red"), ("chance", "black")):
            if group[0][key] is not None:
                ax.plot(group[0][key], yi, marker="|", markersize=14, color=colour, mew=2)
        for value, _ in published(group[0]["experiment"], metric) if metric in paper.get(student, ()) else []:
            ax.plot(value, yi, marker="D", markersize=6, color="tab:green")
    ax.plot([], [], "|", color="tab:red", mew=2, label="majority")
    ax.plot([], [], "|", color="black", mew=2, label="chance")
    ax.plot([], [], "D", color="tab:green", label="published")
    ax.set_yticks(y, labels, fontsize=7)
    ax.set_xlim(0, 1)
    ax.set_title(title, fontsize=9)
    ax.legend(fontsize=7, loc="lower right")
    fig.savefig(path, dpi=110)
    plt.close(fig)
