"""LightningModule for genre/style classification of piano-roll windows.

Training is per window; the test report has three parts, each beside label-blind baselines
(llmusic.eval.classification): per window and per song (the mean of a song's window logits), over
the songs of the classes the model predicts (the closed score), and, when the test set keeps the
songs of classes no training label maps to (`unscored_classes`), per song over all of them
(`song_open`: every such song counts as an error, since the model cannot be right on it).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path

import lightning as L
import numpy as np
import torch
import torch.nn.functional as F
from hydra.utils import get_class
from torchmetrics.classification import MulticlassF1Score, MultilabelF1Score

from llmusic.eval.classification import classification_report, confusion_matrix, plot_confusion, predict, song_level

DEFAULT_ARCH = "llmusic.models.cnn.CNN"


class LitClassifier(L.LightningModule):
    def __init__(self, net: dict, classes: list[str], multilabel: bool,
                 optimizer: Callable[..., torch.optim.Optimizer], chance_draws: int = 50,
                 unscored_classes: Sequence[str] = ()) -> None:
        """`net`: `arch` (the class path of a roll -> logits network with a `build(n_classes, **fields)`
        constructor; default the paper's CNN) and its config fields but n_classes (from `classes`);
        `optimizer`: params -> optimizer; `unscored_classes`: test classes beyond `classes` (open score).

        The optimizer factory stays out of the checkpoint's hyperparameters (they hold plain types
        only, so checkpoints load with torch.load(weights_only=True)); config.yaml records it.
        """
        super().__init__()
        self.save_hyperparameters(logger=False, ignore=["optimizer"])
        self.optimizer = optimizer
        self.classes = list(classes)
        self.unscored_classes = list(unscored_classes)
        self.multilabel = multilabel
        fields = dict(net)
        self.net = get_class(fields.pop("arch", DEFAULT_ARCH)).build(len(self.classes), **fields)
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

    def _scored(self, y: torch.Tensor) -> torch.Tensor:
        """Which items carry a class the model predicts (the closed score's items)."""
        n = len(self.classes)
        return y[:, :n].bool().any(1) if self.multilabel else y < n

    def _closed(self, logits: torch.Tensor, y: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        keep = self._scored(y)
        return logits[keep], (y[keep][:, :len(self.classes)] if self.multilabel else y[keep])

    def on_test_epoch_end(self) -> None:
        logits, y, song_ids = (torch.cat(t) for t in zip(*self._test_outputs))
        song_logits, song_y, songs = song_level(logits, y, song_ids)
        # Per-song outcomes, kept for paired comparisons between runs (predictions.npz).
        self._items = {"song_id": songs.numpy(), "target": song_y.numpy(), "scored": self._scored(song_y).numpy(),
                       "pred": predict(song_logits, self.multilabel).numpy(), "logits": song_logits.numpy()}
        draws, seed, n = self.hparams.chance_draws, 0, len(self.classes)
        window, song = self._closed(logits, y), self._closed(song_logits, song_y)
        self.test_results = {
            "window": classification_report(*window, self.classes, self.multilabel, draws, seed),
            "song": classification_report(*song, self.classes, self.multilabel, draws, seed, intervals=True),
        }
        if self.unscored_classes:
            # The model cannot predict the unscored classes: their logits are -inf (never argmax, sigmoid 0).
            padded = F.pad(song_logits, (0, len(self.unscored_classes)), value=float("-inf"))
            self.test_results["song_open"] = classification_report(
                padded, song_y, self.classes + self.unscored_classes, self.multilabel, draws, seed, predictable=n,
                intervals=True)
        self._confusion = {
            "window": confusion_matrix(*window, n, self.multilabel),
            "song": confusion_matrix(*song, n, self.multilabel),
        }
        for level, report in self.test_results.items():
            for key in ("accuracy", "f1_micro", "f1_macro", "f1_weighted"):
                self.log(f"test/{level}_{key}", report["model"][key])

    def save_artifacts(self, out_dir: Path) -> list[Path]:
        """Confusion matrices of the last test as PNGs, and its per-song outcomes as predictions.npz
        (song_id, target, pred, logits, scored: the song level of the test set, in song id order;
        `scored` marks the songs of the closed score)."""
        paths = [Path(out_dir) / "predictions.npz"]
        np.savez_compressed(paths[0], **self._items)
        for level, matrix in self._confusion.items():
            path = Path(out_dir) / f"confusion_{level}.png"
            plot_confusion(matrix, self.classes, path, f"{level}-level confusion (rows: true)")
            paths.append(path)
        return paths

    def configure_optimizers(self) -> torch.optim.Optimizer:
        return self.optimizer(params=self.parameters())
