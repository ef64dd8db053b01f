"""Taxonomies, label files and the generation -> evaluation label maps, against the real files."""

from __future__ import annotations

import csv

import pytest
from hydra.utils import instantiate
from omegaconf import OmegaConf

from llmusic.config import CONF_DIR
from llmusic.data.label_map import LabelMap
from llmusic.data.labels import CLASS_ORDERS, MASD_STYLES, TOPMAGD_GENRES, load_label_map


def label_map(name: str) -> LabelMap:
    return instantiate(OmegaConf.load(CONF_DIR / "label_map" / f"{name}.yaml"))


def test_class_orders_match_the_evaluation_taxonomy_config():
    taxonomy = OmegaConf.load(CONF_DIR / "taxonomy" / "topmagd_masd.yaml")
    assert list(taxonomy.genres) == list(TOPMAGD_GENRES)
    assert list(taxonomy.styles) == list(MASD_STYLES)
    assert len(TOPMAGD_GENRES) == 13 and len(MASD_STYLES) == 25


def test_class_orders_hold_exactly_the_labels_of_the_label_map(shared_data):
    table = load_label_map(shared_data / "labels" / "midi_genre_map.json")
    for taxonomy in ("topmagd", "masd"):
        found = {label for labels in table[taxonomy].values() for label in labels}
        assert found == set(CLASS_ORDERS[taxonomy])


def test_genre_corpus_order_is_its_sorted_folders(shared_data):
    folders = sorted(p.name for p in (shared_data / "genre_corpus").iterdir() if p.is_dir())
    assert folders == list(CLASS_ORDERS["genre_corpus"])


def test_csv_and_json_label_files_agree_on_the_subset(shared_data):
    from_csv = load_label_map(shared_data / "lmd_subset" / "labels.csv")
    from_json = load_label_map(shared_data / "labels" / "midi_genre_map.json")
    with open(shared_data / "lmd_subset" / "labels.csv") as f:
        md5s = [row["md5"] for row in csv.DictReader(f)]
    assert len(md5s) == 550
    for taxonomy in ("topmagd", "masd", "magd"):
        for md5 in md5s:
            assert set(from_csv[taxonomy].get(md5, [])) == set(from_json[taxonomy].get(md5, [])), (taxonomy, md5)
    assert len(from_csv["topmagd"]) == 363 and len(from_csv["masd"]) == 326  # as the data README says


@pytest.mark.parametrize("name, key, target", [("paper_to_topmagd", "genres", "topmagd"),
                                               ("paper_to_masd", "styles", "masd"),
                                               ("paper_to_genre_corpus", "genres", "genre_corpus")])
def test_paper_maps_cover_the_prompt_taxonomy(name, key, target):
    paper = OmegaConf.load(CONF_DIR / "taxonomy" / "paper.yaml")
    lm = label_map(name)
    assert lm.target == target and not lm.is_identity
    assert set(lm.mapping) == set(paper[key]), "every prompt label must be mapped or listed as null"
    scored, unscored = lm.scored_classes, lm.unscored_classes
    assert sorted(scored + unscored) == sorted(CLASS_ORDERS[target])
    assert scored == [c for c in CLASS_ORDERS[target] if c in scored]  # taxonomy order
    assert set(scored) == {v for v in lm.mapping.values() if v is not None}
    assert set(lm.unmapped_labels) == {k for k, v in lm.mapping.items() if v is None}


def test_paper_to_topmagd_entries():
    lm = label_map("paper_to_topmagd")
    assert lm("Pop") == lm("Rock") == "Pop_Rock"
    assert lm("Hip-Hop") == "Rap"
    assert lm("Classical") is None and lm("not a genre") is None
    assert lm.unscored_classes == ["RnB", "Latin", "International", "Vocal", "New Age"]
    assert "unscored" in repr(lm)


def test_identity_keeps_everything():
    lm = label_map("identity")
    assert lm.is_identity and lm.scored_classes is None and lm.unscored_classes == [] and lm.unmapped_labels == []
    assert all(lm(g) == g for g in TOPMAGD_GENRES)


def test_a_map_to_an_unknown_class_is_an_error():
    with pytest.raises(ValueError, match="not in topmagd"):
        LabelMap("bad", "genre", "topmagd", {"Pop": "Pop/Rock"})
    with pytest.raises(ValueError, match="unknown target"):
        LabelMap("bad", "genre", "allmusic", {"Pop": "Pop_Rock"})
