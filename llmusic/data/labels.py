"""Evaluation taxonomies and the label files that carry them.

The class orders are fixed (the order of the TOP-MAGD / MASD label map's documentation, also the
order of conf/taxonomy/topmagd_masd.yaml) so class indices mean the same thing in every run.
"""

from __future__ import annotations

import csv
import json
import os

from llmusic.config import resolve_path

TOPMAGD_GENRES: tuple[str, ...] = (
    "Pop_Rock", "Electronic", "Country", "RnB", "Latin", "Jazz", "International", "Rap", "Vocal",
    "New Age", "Folk", "Reggae", "Blues",
)
MASD_STYLES: tuple[str, ...] = (
    "Pop_Contemporary", "Rock_Contemporary", "Rock_Hard", "Country_Traditional", "Dance",
    "Pop_Indie", "Metal_Alternative", "Rock_College", "Pop_Latin", "Hip_Hop_Rap", "Experimental",
    "Folk_International", "Rock_Alternative", "Electronica", "RnB_Soul", "Rock_Neo_Psychedelia",
    "Jazz_Classic", "Gospel", "Big_Band", "Grunge_Emo", "Metal_Heavy", "Metal_Death", "Reggae",
    "Blues_Contemporary", "Punk",
)
# The public midi_genre_corpus: its folder names, sorted (what midi_folder makes of the tree).
GENRE_CORPUS: tuple[str, ...] = (
    "classical", "country", "folk", "jazz", "pop", "rap", "rhythm_and_blues", "rock",
)
CLASS_ORDERS: dict[str, tuple[str, ...]] = {
    "topmagd": TOPMAGD_GENRES,
    "masd": MASD_STYLES,
    "genre_corpus": GENRE_CORPUS,
}

def load_label_map(path: str | os.PathLike) -> dict[str, dict[str, list[str]]]:
    """A label file -> {taxonomy: {md5: [label, ...]}}.

    Reads the JSON map (`{"topmagd": {md5: [...]}, "masd": ..., "magd": ...}`, lists may repeat a
    label) or the subset's labels.csv (md5, then one `|`-joined column per taxonomy, empty when
    unlabelled). Lists keep their repeats; views decide what a repeat means.
    """
    path = resolve_path(path)
    if path.suffix.lower() == ".csv":
        with open(path, newline="") as f:
            reader = csv.DictReader(f)
            keys = [k for k in reader.fieldnames or [] if k != "md5"]
            table: dict[str, dict[str, list[str]]] = {k: {} for k in keys}
            for row in reader:
                for key in keys:
                    if row[key]:
                        table[key][row["md5"]] = row[key].split("|")
        return table
    with open(path) as f:
        return json.load(f)
