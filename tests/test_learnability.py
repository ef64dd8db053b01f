"""The students learn from real data: trained on part of it with a fixed seed, they beat chance on
the held-out part by a clear margin. Small budgets (a few windows per song, small models)."""

from __future__ import annotations

from llmusic.train import train
from tests.helpers import compose_train

QUIET = ["~logger", "~callbacks.rich_progress_bar"]


def test_cnn_learns_genres_of_the_genre_corpus(tmp_path, shared_data):
    """Folds 1-4 of the balanced 8-genre corpus train; fold 0 (58 songs) tests."""
    cfg = compose_train(["experiment=genre_supervised_corpus", "fold=0", "scale=small", "trainer.max_epochs=6",
                         "trainer.limit_train_batches=1.0", "data.train.max_windows_per_song=8",
                         "data.test.max_windows_per_song=8", *QUIET], tmp_path)
    test = train(cfg)["test"]
    song, window = test["song"], test["window"]
    assert song["n"] >= 50 and len(song["support"]) == 8
    assert song["model"]["f1_micro"] > 2 * song["chance"]["f1_micro"]
    assert song["model"]["f1_macro"] > 2 * song["chance"]["f1_macro"]
    assert window["model"]["f1_micro"] > window["chance"]["f1_micro"] + 0.1
    assert song["model"]["f1_micro"] > song["majority"]["f1_micro"] + 0.15


def test_melody_transformer_completes_pop909_phrases(tmp_path, shared_data):
    """POP909 training songs' phrase pairs train; the first 96 saved test queries (1 true next
    phrase + 49 from other songs) are ranked by pmi."""
    cfg = compose_train(["experiment=melody_completion_supervised", "scale=small", "model.scoring=[pmi]",
                         "+trainer.limit_test_batches=12", *QUIET], tmp_path)
    report = train(cfg)["test"]["pmi"]
    assert report["n_queries"] == 96 and report["n_candidates"] == 50
    assert report["map"]["value"] > 1.4 * report["map"]["chance"]
    assert report["hits@10"]["value"] > report["hits@10"]["chance"]
