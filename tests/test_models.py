"""Models and metrics on small synthetic tensors that follow the data contract."""

from __future__ import annotations

import math
import warnings
from functools import partial

import lightning as L
import numpy as np
import pytest
import torch
from torch.utils.data import Dataset
from torchmetrics.retrieval import RetrievalHitRate, RetrievalMAP

from torchmetrics.functional import classification as tmf

from llmusic.config import UserError
from llmusic.eval.classification import (classification_report, confusion_matrix, plot_confusion, score_intervals,
                                         scores, song_level)
from llmusic.eval.melody_baselines import BASELINES
from llmusic.eval.ranking import chance_map, ranking_report, true_ranks
from llmusic.midi.phrase import HOLD, PAD, REST, VOCAB_SIZE, encode_phrase
from llmusic.models.cnn import CNN, CNNConfig
from llmusic.models.datamodule import TrainTestData, class_balanced_weights, split_by_song
from llmusic.models.lit_classifier import LitClassifier
from llmusic.models.lit_completion import LitCompletion
from llmusic.models.melody_transformer import MelodyTransformer, MelodyTransformerConfig

pytestmark = pytest.mark.usefixtures("one_torch_thread")
TINY_TRANSFORMER = dict(d_model=32, n_heads=4, n_layers=2, d_ff=64, dropout=0.0)


# --- CNN ----------------------------------------------------------------------------------------

@pytest.mark.parametrize("n_classes", [2, 13, 25])
@pytest.mark.parametrize("pool,hidden", [(4, (256,)), (2, (64, 32)), (8, ())])
def test_cnn_maps_rolls_to_class_logits(n_classes, pool, hidden):
    net = CNN(CNNConfig(n_classes=n_classes, channels=(4, 8), pool=pool, hidden=hidden))
    x = torch.rand(3, 4, 128, 128)
    logits = net(x)
    assert logits.shape == (3, n_classes)
    logits.sum().backward()
    assert all(p.grad is not None and torch.isfinite(p.grad).all() for p in net.parameters())


def test_cnn_rejects_pooling_past_the_roll():
    with pytest.raises(ValueError, match="pool"):
        CNN(CNNConfig(n_classes=3, pool=16))


# --- melody transformer ---------------------------------------------------------------------------

def _phrases(n: int, seed: int = 0) -> torch.Tensor:
    gen = torch.Generator().manual_seed(seed)
    return torch.randint(0, VOCAB_SIZE - 1, (n, 128), generator=gen)  # no PAD


def test_transformer_ignores_exactly_the_pad_tail_the_phrase_encoder_writes():
    """A phrase of notes, holds and rests that ends early: its PAD tail must not change what the
    model makes of it (the model masks the data's PAD, and embeds every other token it meets)."""
    torch.manual_seed(0)
    net = MelodyTransformer(MelodyTransformerConfig(**TINY_TRANSFORMER)).eval()
    notes = encode_phrase(np.arange(0, 64, 4), np.full(16, 3), np.arange(60, 76), length=64, n_tokens=128)
    assert {HOLD, REST} <= set(notes[:64].tolist()) and (notes[64:] == PAD).all()
    phrase = torch.from_numpy(notes)[None]  # (1, 128)
    with torch.no_grad():
        assert torch.allclose(net.represent(phrase), net.represent(phrase[:, :64]), atol=1e-6)


def test_transformer_decoder_is_causal():
    torch.manual_seed(0)
    net = MelodyTransformer(MelodyTransformerConfig(**TINY_TRANSFORMER)).eval()
    context, target = _phrases(2), _phrases(2, seed=1)
    changed = target.clone()
    changed[:, 50] = (changed[:, 50] + 1) % 128
    a, b = net(context, target), net(context, changed)
    # Target token 50 is decoder input at step 51: steps 0-50 cannot see it, later steps do.
    assert torch.allclose(a[:, :51], b[:, :51], atol=1e-5)
    assert not torch.allclose(a[:, 51:], b[:, 51:], atol=1e-5)


def test_transformer_ignores_context_padding():
    torch.manual_seed(0)
    net = MelodyTransformer(MelodyTransformerConfig(**TINY_TRANSFORMER)).eval()
    context, target = _phrases(1), _phrases(1, seed=1)
    padded = context.clone()
    padded[:, 64:] = PAD
    other = padded.clone()
    other[:, 64:] = PAD  # same phrase; only what sits under PAD could differ
    assert torch.allclose(net(padded, target), net(other, target))
    all_pad = torch.full_like(context, PAD)
    assert torch.isfinite(net(all_pad, target)).all() and torch.isfinite(net.represent(all_pad)).all()


def test_target_log_likelihood_is_minus_the_teacher_forced_loss():
    torch.manual_seed(0)
    net = MelodyTransformer(MelodyTransformerConfig(**TINY_TRANSFORMER)).eval()
    context, target = _phrases(3), _phrases(3, seed=1)
    target[0, 100:] = PAD
    target[1, 120:] = PAD  # no row reaches step 127: the scored steps are cut at the last non-PAD one
    target[2, 126:] = PAD
    logits = net(context, target)
    states = net.decoder_states(net.shift_right(target))
    ll = net.target_log_likelihood(states, *net.memory_keys_values(*net.encode(context)), target)
    for i in range(3):
        keep = target[i] != PAD
        expected = -torch.nn.functional.cross_entropy(logits[i][keep], target[i][keep])
        assert torch.allclose(ll[i], expected, atol=1e-5)


def test_generate_is_greedy_and_deterministic():
    torch.manual_seed(0)
    net = MelodyTransformer(MelodyTransformerConfig(**TINY_TRANSFORMER)).eval()
    context = _phrases(2)
    out = net.generate(context, 6)
    assert out.shape == (2, 6) and torch.equal(out, net.generate(context, 6))
    assert (out < VOCAB_SIZE).all()  # BOS is never produced
    step_logits = net.decode(*net.encode(context), net.shift_right(out))
    assert torch.equal(step_logits.argmax(-1), out)  # each token was the argmax given the ones before


# --- classification metrics -------------------------------------------------------------------------

CLASSES = ["a", "b", "c"]


def test_report_of_perfect_predictions_and_of_baselines():
    target = torch.tensor([0] * 6 + [1] * 3 + [2] * 1)
    logits = torch.nn.functional.one_hot(target, 3).float() * 5
    report = classification_report(logits, target, CLASSES, multilabel=False, chance_draws=400)
    assert report["model"]["f1_micro"] == report["model"]["f1_macro"] == report["model"]["accuracy"] == 1.0
    assert report["support"] == {"a": 6, "b": 3, "c": 1}
    assert report["majority"]["accuracy"] == pytest.approx(0.6)
    assert report["majority"]["f1_macro"] == pytest.approx((2 * 0.6 / 1.6) / 3)
    # A label permutation keeps the priors: expected accuracy = sum p^2 (exact in expectation).
    assert report["chance"]["accuracy"] == pytest.approx(0.36 + 0.09 + 0.01, abs=0.02)
    assert report["per_class"]["c"]["support"] == 1


def test_multilabel_report():
    target = torch.tensor([[1, 0, 1], [0, 1, 0], [1, 1, 0], [1, 0, 0]])
    logits = torch.where(target.bool(), 3.0, -3.0)
    logits[3, 1] = 3.0  # one false positive
    report = classification_report(logits, target.float(), CLASSES, multilabel=True)
    assert report["support"] == {"a": 3, "b": 2, "c": 1}
    assert report["model"]["accuracy"] == pytest.approx(0.75)  # exact-match accuracy
    tp, fp, fn = 6, 1, 0
    assert report["model"]["f1_micro"] == pytest.approx(2 * tp / (2 * tp + fp + fn))
    assert report["per_class"]["b"]["precision"] == pytest.approx(2 / 3)
    assert confusion_matrix(logits, target, 3, multilabel=True).shape == (3, 2, 2)


@pytest.mark.parametrize("seed", range(4))
@pytest.mark.parametrize("n_classes, n_items", [(2, 7), (5, 40), (13, 200)])
@pytest.mark.parametrize("multilabel", [False, True])
def test_scores_are_torchmetrics_scores(seed, n_classes, n_items, multilabel):
    """The counting implementation (fast enough to bootstrap) gives torchmetrics' numbers, classes
    nobody has or predicts included."""
    rng = np.random.default_rng(seed)
    shape = (n_items, n_classes) if multilabel else (n_items,)
    high = 2 if multilabel else n_classes - 1  # single-label: the last class never occurs
    target, pred = rng.integers(0, high, shape), rng.integers(0, high, shape)
    if seed == 0:
        pred[:] = 0  # a constant predictor
    got = scores(pred, target, n_classes, multilabel)
    p, t = torch.as_tensor(pred), torch.as_tensor(target)
    if multilabel:
        kw, f1, precision = {"num_labels": n_classes}, tmf.multilabel_f1_score, tmf.multilabel_precision
        assert got["accuracy"] == pytest.approx(tmf.multilabel_exact_match(p, t, **kw).item())
    else:
        kw, f1, precision = {"num_classes": n_classes}, tmf.multiclass_f1_score, tmf.multiclass_precision
        assert got["accuracy"] == pytest.approx(tmf.multiclass_accuracy(p, t, average="micro", **kw).item())
    for avg in ("micro", "macro", "weighted"):
        assert got[f"f1_{avg}"] == pytest.approx(f1(p, t, average=avg, **kw).item(), abs=1e-6), avg
    np.testing.assert_allclose(got["per_class"]["f1"], f1(p, t, average="none", **kw).numpy(), atol=1e-6)
    np.testing.assert_allclose(got["per_class"]["precision"], precision(p, t, average="none", **kw).numpy(), atol=1e-6)


def test_intervals_hold_the_score_and_narrow_with_more_songs():
    rng = np.random.default_rng(0)
    widths = []
    for n in (60, 1500):
        target = rng.integers(0, 4, n)
        pred = np.where(rng.random(n) < 0.6, target, rng.integers(0, 4, n))
        interval = score_intervals(pred, target, 4, multilabel=False)
        point = scores(pred, target, 4, multilabel=False)
        for key, (lo, hi) in interval.items():
            assert lo <= point[key] <= hi, key
        widths.append(interval["f1_macro"][1] - interval["f1_macro"][0])
    assert widths[1] < widths[0] / 3


def test_a_skewed_test_set_has_macro_f1_as_headline_and_flags_a_model_below_majority():
    target = torch.tensor([0] * 17 + [1] * 2 + [2] * 1)  # 85% class a: skewed
    logits = torch.nn.functional.one_hot(torch.tensor([1] * 10 + [0] * 10), 3).float()
    report = classification_report(logits, target, CLASSES, multilabel=False, intervals=True)
    assert report["skewed"] and report["headline"] == "f1_macro"
    assert report["majority_class"] == "a" and report["majority_share"] == pytest.approx(0.85)
    assert "f1_micro" in report["below_majority"] and "accuracy" in report["below_majority"]
    assert set(report["interval"]) == {"accuracy", "f1_micro", "f1_macro", "f1_weighted"}
    balanced = torch.tensor([0, 1, 2] * 5)
    fair = classification_report(torch.nn.functional.one_hot(balanced, 3).float(), balanced, CLASSES, False)
    assert not fair["skewed"] and fair["headline"] == "f1_micro" and fair["below_majority"] == []


def _tested(module: LitClassifier, logits: torch.Tensor, target: torch.Tensor) -> dict:
    """The module's test report for given song logits and targets (one window per song), outside a
    Trainer (whose absence `self.log` warns about)."""
    module._test_outputs = [(logits, target, torch.arange(len(target)))]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        module.on_test_epoch_end()
    return module.test_results


@pytest.mark.parametrize("seed", range(3))
def test_open_score_is_lower_by_the_share_of_unscored_songs(seed):
    """Songs of a class no training label maps to count as errors: accuracy and micro-F1 drop from
    the closed score by exactly their share, whatever the model predicts for them."""
    rng = np.random.default_rng(seed)
    module = LitClassifier(dict(channels=(4, 8), hidden=(8,)), CLASSES, False, partial(torch.optim.Adam),
                           unscored_classes=["d", "e"])
    target = torch.as_tensor(rng.integers(0, 5, 40))  # d and e (3, 4): unscored
    scored = target < 3
    perfect = torch.nn.functional.one_hot(target.clamp(max=2), 3).float()
    results = _tested(module, perfect, target)
    share = (~scored).float().mean().item()
    assert results["song"]["n"] == scored.sum() and results["song"]["model"]["accuracy"] == 1.0
    assert results["song_open"]["n"] == 40 and results["song_open"]["classes"] == CLASSES + ["d", "e"]
    for key in ("accuracy", "f1_micro"):
        assert results["song_open"]["model"][key] == pytest.approx(1.0 - share)
    noisy = torch.as_tensor(rng.normal(size=(40, 3)), dtype=torch.float32)
    results = _tested(module, noisy, target)
    closed = results["song"]["model"]["accuracy"]
    assert results["song_open"]["model"]["accuracy"] == pytest.approx(closed * (1 - share))
    # The label-blind baselines guess among the classes the model can output.
    assert results["song_open"]["majority_class"] in CLASSES or results["song_open"]["majority"]["accuracy"] < 1
    assert results["song_open"]["majority"]["accuracy"] == pytest.approx(
        max((target == k).float().mean().item() for k in range(3)))
    assert results["song"]["interval"] and results["song_open"]["interval"]


def test_open_multilabel_counts_unscored_labels_as_misses():
    module = LitClassifier(dict(channels=(4, 8), hidden=(8,)), CLASSES, True, partial(torch.optim.Adam),
                           unscored_classes=["d"])
    target = torch.tensor([[1, 0, 0, 0], [0, 1, 0, 1], [0, 0, 0, 1]], dtype=torch.float32)
    logits = torch.where(target[:, :3].bool(), 4.0, -4.0)
    results = _tested(module, logits, target)
    assert results["song"]["n"] == 2 and results["song"]["model"]["f1_micro"] == 1.0  # the d-only song is left out
    tp, fn = 2, 2  # the two d labels are missed
    assert results["song_open"]["model"]["f1_micro"] == pytest.approx(2 * tp / (2 * tp + fn))


def test_class_balanced_weights_give_every_class_the_same_share():
    song_labels = np.array([0, 0, 0, 1, 2])
    song_ids = np.repeat(np.arange(5), [10, 10, 10, 3, 1])  # class 0: 30 windows, 1: 3, 2: 1
    weights = class_balanced_weights(song_labels, song_ids)
    per_class = [weights[song_labels[song_ids] == k].sum() for k in range(3)]
    np.testing.assert_allclose(per_class, [1.0, 1.0, 1.0])
    multi = class_balanced_weights(np.eye(3)[[0, 0, 1]], np.array([0, 0, 1, 2]))
    np.testing.assert_allclose(multi, [1 / 3, 1 / 3, 1 / 3, 1.0])  # label set {a}: 3 windows, {b}: 1


def test_song_level_averages_window_logits():
    logits = torch.tensor([[2.0, 0.0], [0.0, 1.0], [0.0, 4.0], [1.0, 0.0]])
    target = torch.tensor([0, 0, 1, 0])
    song_ids = torch.tensor([7, 7, 3, 9])
    song_logits, song_target, songs = song_level(logits, target, song_ids)
    assert songs.tolist() == [3, 7, 9]
    assert torch.allclose(song_logits, torch.tensor([[0.0, 4.0], [1.0, 0.5], [1.0, 0.0]]))
    assert song_target.tolist() == [1, 0, 0]
    with pytest.raises(ValueError, match="different labels"):
        song_level(logits, torch.tensor([0, 1, 1, 0]), song_ids)


def test_confusion_png(tmp_path):
    target = torch.tensor([0, 1, 2, 2])
    logits = torch.nn.functional.one_hot(torch.tensor([0, 2, 2, 1]), 3).float()
    matrix = confusion_matrix(logits, target, 3, multilabel=False)
    assert matrix.tolist() == [[1, 0, 0], [0, 0, 1], [0, 1, 1]]
    path = tmp_path / "cm.png"
    plot_confusion(matrix, CLASSES, path, "test")
    assert path.read_bytes()[:4] == b"\x89PNG"


# --- ranking metrics ----------------------------------------------------------------------------------

@pytest.mark.parametrize("n_queries,n_candidates", [(50, 10), (200, 50), (7, 3)])
def test_ranking_matches_torchmetrics(n_queries, n_candidates):
    gen = torch.Generator().manual_seed(n_queries)
    # Positive scores: torchmetrics 1.9 counts a candidate scored <= 0 as not retrieved at all.
    scores = torch.rand(n_queries, n_candidates, generator=gen) + 1e-3
    true_index = torch.randint(0, n_candidates, (n_queries,), generator=gen)
    report = ranking_report(scores, true_index)
    relevant = torch.nn.functional.one_hot(true_index, n_candidates).bool()
    queries = torch.arange(n_queries).unsqueeze(1).expand(-1, n_candidates)
    assert report["map"]["value"] == pytest.approx(RetrievalMAP()(scores, relevant, indexes=queries).item(), abs=1e-6)
    for k in (1, 5, 10, 25):
        hits = RetrievalHitRate(top_k=k)(scores, relevant, indexes=queries).item()
        assert report[f"hits@{k}"]["value"] == pytest.approx(hits, abs=1e-6)
        assert report[f"hits@{k}"]["chance"] == pytest.approx(min(k, n_candidates) / n_candidates)
    assert report["map"]["chance"] == pytest.approx(sum(1 / r for r in range(1, n_candidates + 1)) / n_candidates)


def test_random_scores_land_at_chance_and_ties_count_against_the_model():
    gen = torch.Generator().manual_seed(0)
    scores = torch.rand(20000, 50, generator=gen)
    true_index = torch.randint(0, 50, (20000,), generator=gen)
    assert ranking_report(scores, true_index)["map"]["value"] == pytest.approx(chance_map(50), rel=0.03)
    flat = torch.zeros(4, 50)
    assert true_ranks(flat, torch.tensor([0, 1, 2, 49])).tolist() == [50] * 4


# --- LightningModules on contract-shaped synthetic data ------------------------------------------------

class ToyRolls(Dataset):
    """Class k lights pitch rows 10k..10k+9 of channel k: trivially separable."""

    def __init__(self, n_songs: int, windows: int, classes: list[str], multilabel: bool, seed: int) -> None:
        rng = np.random.default_rng(seed)
        self.classes, self.multilabel, self.skipped = classes, multilabel, {}
        self.song_ids = np.repeat(np.arange(n_songs), windows)
        self.labels = rng.integers(0, len(classes), n_songs)
        self.song_names = [f"song{i}" for i in range(n_songs)]

    def __len__(self) -> int:
        return len(self.song_ids)

    def __getitem__(self, i: int):
        song = int(self.song_ids[i])
        k = int(self.labels[song])
        x = torch.zeros(4, 128, 128)
        x[k % 4, 10 * k: 10 * k + 10, (i * 7) % 100: (i * 7) % 100 + 20] = 1.0
        if self.multilabel:
            y = torch.zeros(len(self.classes))
            y[k] = 1.0
        else:
            y = torch.tensor(k)
        return x, y, torch.tensor(song)


def _fit_and_test(module, data, epochs):
    trainer = L.Trainer(max_epochs=epochs, accelerator="cpu", logger=False, enable_checkpointing=False,
                        enable_progress_bar=False, enable_model_summary=False, deterministic=True)
    trainer.fit(module, datamodule=data)
    trainer.test(module, datamodule=data, verbose=False)
    return module.test_results


@pytest.mark.parametrize("multilabel", [False, True])
def test_lit_classifier_learns_separable_rolls(multilabel, tmp_path):
    L.seed_everything(0)
    classes = ["w", "x", "y", "z"]
    data = TrainTestData(ToyRolls(24, 3, classes, multilabel, 0), ToyRolls(12, 3, classes, multilabel, 1),
                         val_fraction=0.2, batch_size=8)
    module = LitClassifier(dict(channels=(4, 8), hidden=(32,), dropout=0.0), classes, multilabel,
                           partial(torch.optim.Adam, lr=3e-3))
    results = _fit_and_test(module, data, epochs=10)
    assert results["window"]["n"] == 36 and results["song"]["n"] == 12
    assert results["song"]["model"]["f1_micro"] > results["song"]["chance"]["f1_micro"] + 0.3
    files = module.save_artifacts(tmp_path)
    assert [p.name for p in files] == ["predictions.npz", "confusion_window.png", "confusion_song.png"]
    with np.load(files[0]) as items:  # per-song outcomes for paired comparisons between runs
        assert items["song_id"].tolist() == list(range(12))
        labels = data.test.labels
        assert np.array_equal(items["target"], np.eye(len(classes))[labels] if multilabel else labels)
        correct = (items["pred"] == items["target"]).all(-1) if multilabel else items["pred"] == items["target"]
        assert correct.mean() == pytest.approx(results["song"]["model"]["accuracy"])


def test_split_by_song_keeps_songs_whole():
    song_ids = np.repeat(np.arange(20), 3)
    train_idx, val_idx = split_by_song(song_ids, 0.25, seed=0)
    assert len(val_idx) == 15 and len(train_idx) == 45
    assert not set(song_ids[train_idx]) & set(song_ids[val_idx])
    assert np.array_equal(split_by_song(song_ids, 0.25, seed=0)[1], val_idx)
    assert len(split_by_song(np.zeros(5, dtype=np.int64), 0.5, seed=0)[1]) == 0  # one song stays in train


class ToyPairs(Dataset):
    """A phrase repeats one pitch; its continuation repeats that pitch + 2: quick to learn."""

    def __init__(self, n: int, seed: int) -> None:
        gen = torch.Generator().manual_seed(seed)
        self.context = torch.randint(40, 80, (n, 1), generator=gen).repeat(1, 128)
        self.context[:, 1::2] = HOLD
        self.target = torch.where(self.context < HOLD, self.context + 2, self.context)
        self.song_ids = np.arange(n)

    def __len__(self) -> int:
        return len(self.context)

    def __getitem__(self, i: int):
        return self.context[i], self.target[i]


class ToyQueries(Dataset):
    def __init__(self, pairs: ToyPairs, n_candidates: int) -> None:
        self.pairs, self.n = pairs, n_candidates
        self.song_ids = pairs.song_ids

    def __len__(self) -> int:
        return len(self.pairs)

    def __getitem__(self, i: int):
        others = [(i + j) % len(self.pairs) for j in range(self.n)]  # candidate 0 is the true one
        return self.pairs.context[i], self.pairs.target[others], torch.tensor(0)


def test_lit_completion_ranks_with_both_scores(tmp_path):
    L.seed_everything(0)
    pairs = ToyPairs(256, 0)
    data = TrainTestData(pairs, ToyQueries(ToyPairs(16, 1), 8), val_fraction=0.1, batch_size=16, test_batch_size=4)
    assert data.model_kwargs() == {}
    module = LitCompletion(TINY_TRANSFORMER, partial(torch.optim.Adam, lr=3e-3))
    results = _fit_and_test(module, data, epochs=8)
    assert set(results) == {"cosine", "likelihood", "pmi", *BASELINES}  # the baselines on the same queries
    for name, report in results.items():
        assert report["kind"] == ("baseline" if name in BASELINES else "model")
        assert report["n_queries"] == 16 and report["n_candidates"] == 8
        assert report["map"]["chance"] == pytest.approx(chance_map(8))
        assert math.isfinite(report["map"]["value"])
        lo, hi = report["map"]["interval"]
        assert lo <= report["map"]["value"] <= hi
    assert results["likelihood"]["map"]["value"] > 2 * chance_map(8)
    versus = results["likelihood"]["versus"]
    assert versus["best_baseline"] in BASELINES and versus["verdict"].startswith("beats")
    assert versus["best_baseline_map"] == max(results[b]["map"]["value"] for b in BASELINES)
    [path] = module.save_artifacts(tmp_path)
    with np.load(path) as items:  # per-query ranks for paired comparisons between runs
        assert items["query_id"].tolist() == list(range(16))
        for name, report in results.items():
            assert (1 / items[f"rank__{name}"]).mean() == pytest.approx(report["map"]["value"])
    with pytest.raises(ValueError, match="scoring"):
        LitCompletion(TINY_TRANSFORMER, partial(torch.optim.Adam), scoring=("bleu",))


@pytest.mark.parametrize("seed", [0, 3])
def test_melody_transformer_starts_as_torch_transformer_layers_would(seed):
    """The model's own layers draw their initial weights as nn.TransformerEncoder / Decoder of
    norm_first layers do (the model's earlier form): a seed gives the same starting weights, so a
    training run does not change because the layers were rewritten."""
    c = MelodyTransformerConfig(d_model=32, n_heads=4, n_layers=2, d_ff=64)
    torch.manual_seed(seed)
    token, position = torch.nn.Embedding(c.vocab_size + 1, c.d_model), torch.nn.Embedding(c.max_len, c.d_model)
    layer = dict(d_model=c.d_model, nhead=c.n_heads, dim_feedforward=c.d_ff, dropout=c.dropout, batch_first=True,
                 norm_first=True)
    encoder_layer, decoder_layer = torch.nn.TransformerEncoderLayer(**layer), torch.nn.TransformerDecoderLayer(**layer)
    reference = {
        "token_embedding": token, "position_embedding": position,
        "encoder": torch.nn.TransformerEncoder(encoder_layer, c.n_layers, torch.nn.LayerNorm(c.d_model),
                                               enable_nested_tensor=False),
        "decoder": torch.nn.TransformerDecoder(decoder_layer, c.n_layers, torch.nn.LayerNorm(c.d_model)),
        "lm_head": torch.nn.Linear(c.d_model, c.vocab_size)}
    expected = torch.nn.ModuleDict(reference).state_dict()
    torch.manual_seed(seed)
    got = MelodyTransformer(c).state_dict()
    assert set(got) == set(expected)
    for name, value in expected.items():
        assert torch.equal(got[name], value), name


class _NoSongs(Dataset):
    """A source whose every song was skipped (a run of replies with no melody pairs, say)."""
    song_ids: list = []
    skipped = {"no_pairs": 126}

    def __len__(self) -> int:
        return 0

    def __getitem__(self, i: int):
        raise IndexError(i)


def test_an_empty_training_set_stops_with_its_skip_reasons():
    with pytest.raises(UserError, match=r"holds no samples.*'no_pairs': 126.*students\.melody=null"):
        TrainTestData(_NoSongs(), _NoSongs())
