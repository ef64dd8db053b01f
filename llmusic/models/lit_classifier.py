"""LightningModule for genre/style classification of piano-roll windows.

Training is per window; the test report has two levels: per window, and per song (the mean of a
song's window logits), both beside label-blind baselines (llmusic.eval.classification).
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import lightning as L
import numpy as np
import torch
import torch.nn.functional as F
from torchmetrics.classification import MulticlassF1Score, MultilabelF1Score

from llmusic.eval.classification import classification_report, confusion_matrix, plot_confusion, predict, song_level
from llmusic.models.cnn import CNN, CNNConfig


class LitClassifier(L.LightningModule):
    def __init__(self, net: dict, classes: list[str], multilabel: bool,
                 optimizer: Callable[..., torch.optim.Optimizer], chance_draws: int = 50) -> None:
        """`net`: CNNConfig fields but n_classes (from `classes`); `optimizer`: params -> optimizer.

        The optimizer factory stays out of the checkpoint's hyperparameters (they hold plain types
        only, so checkpoints load with torch.load(weights_only=True)); config.yaml records it.
        """
        super().__init__()
        self.save_hyperparameters(logger=False, ignore=["optimizer"])
        self.optimizer = optimizer
        self.classes = list(classes)
        self.multilabel = multilabel
        self.net = CNN(CNNConfig(n_classes=len(self.classes), **net))
        n = len(self.classes)
        self.val_f1 = MultilabelF1Score(n, average="micro") if multilabel else MulticlassF1Score(n, average="micro")
        self._test_outputs: list[tuple[torch.Tensor, torch.Tensor, torch.Tensor]] = []
        self.test_results: dict = {}
        self._confusion: dict[str, torch.Tensor] = {}
        self._items: dict[str, np.ndarray] = {}

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)  # (B, C)

    def loss(self, logits: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        if self.multilabel:
            return F.binary_cross_entropy_with_logits(logits, y.float())
        return F.cross_entropy(logits, y)

    def training_step(self, batch, batch_idx: int) -> torch.Tensor:
        x, y, _ = batch
        loss = self.loss(self(x), y)
        self.log("train/loss", loss, prog_bar=True, batch_size=len(x))
        return loss

    def validation_step(self, batch, batch_idx: int) -> None:
        x, y, _ = batch
        logits = self(x)
        self.val_f1(logits, y.long())
        self.log("val/loss", self.loss(logits, y), prog_bar=True, batch_size=len(x), sync_dist=True)
        self.log("val/f1_micro", self.val_f1, prog_bar=True, batch_size=len(x))

    def test_step(self, batch, batch_idx: int) -> None:
        x, y, song_id = batch
        self._test_outputs.append((self(x).float().cpu(), y.cpu(), song_id.cpu()))

    def on_test_epoch_start(self) -> None:
        self._test_outputs.clear()

    def on_test_epoch_end(self) -> None:
        logits, y, song_ids = (torch.cat(t) for t in zip(*self._test_outputs))
        song_logits, song_y, songs = song_level(logits, y, song_ids)
        # Per-song outcomes, kept for paired comparisons between runs (predictions.npz).
        self._items = {"song_id": songs.numpy(), "target": song_y.numpy(),
                       "pred": predict(song_logits, self.multilabel).numpy(), "logits": song_logits.numpy()}
        draws, seed = self.hparams.chance_draws, 0
        self.test_results = {
            "window": classification_report(logits, y, self.classes, self.multilabel, draws, seed),
            "song": classification_report(song_logits, song_y, self.classes, self.multilabel, draws, seed),
        }
        self._confusion = {
            "window": confusion_matrix(logits, y, len(self.classes), self.multilabel),
            "song": confusion_matrix(song_logits, song_y, len(self.classes), self.multilabel),
        }
        for level, report in self.test_results.items():
            for key in ("accuracy", "f1_micro", "f1_macro", "f1_weighted"):
                self.log(f"test/{level}_{key}", report["model"][key])

    def save_artifacts(self, out_dir: Path) -> list[Path]:
        """Confusion matrices of the last test as PNGs, and its per-song outcomes as predictions.npz
        (song_id, target, pred, logits: the song level of the test set, in song id order)."""
        paths = [Path(out_dir) / "predictions.npz"]
        np.savez_compressed(paths[0], **self._items)
        for level, matrix in self._confusion.items():
            path = Path(out_dir) / f"confusion_{level}.png"
            plot_confusion(matrix, self.classes, path, f"{level}-level confusion (rows: true)")
            paths.append(path)
        return paths

    def configure_optimizers(self) -> torch.optim.Optimizer:
        return self.optimizer(params=self.parameters())
