"""`python -m llmusic.data.describe`: summary, saved config and example plot."""

from __future__ import annotations

import json
import shutil

import matplotlib.image
from omegaconf import OmegaConf

from llmusic.data.describe import describe
from tests.helpers import compose_entry


def run_describe(tmp_path, *overrides: str) -> dict:
    return describe(compose_entry("describe", f"out_dir={tmp_path / 'out'}", f"dataset.cache_dir={tmp_path / 'cache'}",
                                  *overrides))


def check_outputs(tmp_path, summary: dict) -> None:
    out = tmp_path / "out"
    assert json.loads((out / "describe.json").read_text()) == summary
    assert OmegaConf.load(out / "config.yaml").dataset._target_.startswith("llmusic.data.")
    image = matplotlib.image.imread(out / "examples.png")
    assert image.shape[0] > 100 and image.shape[1] > 100
    assert image[..., :3].min() < 0.5  # something was drawn


def test_describe_a_genre_tree(shared_data, tmp_path, capsys):
    for genre, files in (("jazz", 2), ("rock", 2), ("rap", 0)):
        (tmp_path / "tree" / genre).mkdir(parents=True)
        for src in sorted((shared_data / "genre_corpus" / genre).iterdir())[:files]:
            shutil.copy(src, tmp_path / "tree" / genre)
    shutil.copy(shared_data / "genre_corpus" / "rock" / "david_lee_roth-skyscraper.midi", tmp_path / "tree" / "rock")
    summary = run_describe(tmp_path, "dataset=midi_folder", f"dataset.root={tmp_path / 'tree'}")
    assert summary["class_counts"] == {"jazz": 2, "rap": 0, "rock": 2}  # an empty class still gets its row
    assert summary["skipped"] == {"unreadable": 1}
    assert '"unreadable": 1' in capsys.readouterr().out
    check_outputs(tmp_path, summary)


def test_describe_melody_pairs(shared_data, tmp_path, compose):
    summary = describe(compose("describe", "dataset=melody_pop909", f"out_dir={tmp_path / 'out'}",
                               f"dataset.pairs.source.root={shared_data / 'pop909'}",
                               f"dataset.pairs.cache_dir={tmp_path / 'cache'}"))
    assert summary["songs"] == 91 - 1 and summary["skipped"] == {"no_pairs": 12}  # song 351: no two melodic phrases in a row
    assert summary["queries"] == summary["pairs"] > 500
    assert round(summary["chance_map"], 3) == 0.090
    assert (summary["phrase_bars"], summary["n_tokens"], summary["key_normalization"]) == (4, 128, "profile")
    keys = (tmp_path / "out" / "keys.csv").read_text().splitlines()
    assert keys[0] == "song,key,method,shift" and len(keys) == 1 + 90 and keys[1].startswith("001,F# major,profile,-6")
    check_outputs(tmp_path, summary)
