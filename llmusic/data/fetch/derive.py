"""Files of the layout that no one publishes: built here from landed files, then verified the same way."""

from __future__ import annotations

import csv
import json
from pathlib import Path

TAXONOMIES = ("topmagd", "masd", "magd")


def labels_csv(label_map: Path, md5s: list[str], out: Path, order: str) -> None:
    """A Lakh folder's labels.csv: md5, then each taxonomy's labels of that file, `|`-joined.

    The map's lists may repeat a label; repeats are dropped, and the rest kept `as_listed` (first
    occurrence) or `sorted`. A file the map does not know gets empty columns. Rows follow `md5s`.
    """
    if order not in ("sorted", "as_listed"):
        raise ValueError(f"labels_csv order {order!r}: sorted or as_listed")
    with open(label_map) as f:
        table = json.load(f)
    with open(out, "w", newline="") as f:
        writer = csv.writer(f)  # the csv module's line ending, \r\n, as in the files this project tests with
        writer.writerow(["md5", *TAXONOMIES])
        for md5 in md5s:
            row = [md5]
            for taxonomy in TAXONOMIES:
                labels = list(dict.fromkeys(table[taxonomy].get(md5, [])))
                row.append("|".join(sorted(labels) if order == "sorted" else labels))
            writer.writerow(row)
