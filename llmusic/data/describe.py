"""`python -m llmusic.data.describe dataset=<name>`: what a data set holds, and what it looks like.

Prints the size, the class balance, the skipped files by reason and, for piano-roll data sets, the
meters of the songs and windows and which songs a label map scores (coverage); saves describe.json,
the composed config and examples.png (piano rolls per class, or phrase pairs for melody data sets)
in the run directory; for melody data sets also keys.csv (every song's key, how it was found and
the semitones it was moved by).
"""

from __future__ import annotations

import csv
import json
from pathlib import Path

import hydra
import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
from omegaconf import DictConfig, OmegaConf  # noqa: E402

from llmusic.config import user_errors_exit  # noqa: E402
from llmusic.files import write_json_atomic  # noqa: E402
from llmusic.data.melody import MelodyPairs  # noqa: E402
from llmusic.data.rolls import RollDataset  # noqa: E402
from llmusic.midi.phrase import PAD, REST, decode_phrase  # noqa: E402

# melody, chords, bass, rhythm as RGB: a cell's colour says which tracks sound there.
TRACK_COLOURS = np.array([[0.90, 0.15, 0.15], [0.15, 0.65, 0.20], [0.15, 0.30, 0.90], [0.45, 0.45, 0.45]])


def roll_image(roll: np.ndarray) -> np.ndarray:
    """(4, 128, T) binary roll -> (128, T, 3) image, white background, tracks blended by colour."""
    weight = roll.sum(0)[..., None]  # (128, T, 1)
    colour = np.einsum("cpt,ck->ptk", roll, TRACK_COLOURS) / np.maximum(weight, 1)
    return np.where(weight > 0, colour, 1.0)


def plot_rolls(dataset: RollDataset, path: Path, n_examples: int, seed: int) -> None:
    """A grid: a row per class, `n_examples` songs each (one window from the middle of the song)."""
    rng = np.random.default_rng(seed)
    labels = np.asarray(dataset.song_labels)
    fig, axes = plt.subplots(len(dataset.classes), n_examples, squeeze=False,
                             figsize=(2.2 * n_examples, 1.9 * len(dataset.classes)))
    for k, name in enumerate(dataset.classes):
        members = np.flatnonzero(labels[:, k] > 0 if dataset.multilabel else labels == k)
        chosen = rng.choice(members, min(n_examples, len(members)), replace=False) if len(members) else []
        for j, ax in enumerate(axes[k]):
            ax.set_xticks([]), ax.set_yticks([])
            if j == 0:
                ax.set_ylabel(f"{name}\n({len(members)})", fontsize=8)
            if j >= len(chosen):
                ax.set_frame_on(False)  # keeps the class label of an empty first cell
                continue
            windows = np.flatnonzero(dataset.song_ids == chosen[j])
            x, _, _ = dataset[int(windows[len(windows) // 2])]
            ax.imshow(roll_image(x.numpy()), origin="lower", aspect="auto", interpolation="nearest")
            ax.set_title(Path(dataset.song_names[chosen[j]]).name[:22], fontsize=6)
    fig.suptitle(f"{type(dataset).__name__}: red melody, green chords, blue bass, grey rhythm", fontsize=9)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def phrase_image(tokens: np.ndarray) -> np.ndarray:
    """(T,) phrase tokens -> (128, T) binary pitch-time roll."""
    roll = np.zeros((128, len(tokens)))
    for t, d, p in zip(*decode_phrase(tokens)):
        roll[p, t:t + d] = 1.0
    return roll


def plot_phrases(dataset: MelodyPairs, path: Path, n_examples: int, seed: int) -> None:
    """`n_examples` pairs: context and target side by side, PAD shaded."""
    rng = np.random.default_rng(seed)
    chosen = rng.choice(len(dataset), min(n_examples, len(dataset)), replace=False)
    fig, axes = plt.subplots(len(chosen), 1, squeeze=False, figsize=(8, 1.8 * len(chosen)))
    for ax, i in zip(axes[:, 0], chosen):
        context, target = (t.numpy() for t in dataset[int(i)])
        image = np.concatenate([phrase_image(context), phrase_image(target)], axis=1)
        ax.imshow(image, origin="lower", aspect="auto", cmap="Greys", interpolation="nearest")
        pad = np.flatnonzero(np.r_[context, target] == PAD)
        if len(pad):
            ax.axvspan(pad.min() - 0.5, len(image[0]) - 0.5, color="orange", alpha=0.08)
        ax.axvline(len(context) - 0.5, color="red")
        ax.set_ylim(*_pitch_span(image))
        rests = int(np.sum(np.r_[context, target] == REST))
        ax.set_title(f"{dataset.song_names[dataset.song_ids[i]]}: context | target ({rests} rest steps)", fontsize=7)
        ax.set_yticks([])
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def _pitch_span(image: np.ndarray) -> tuple[float, float]:
    rows = np.flatnonzero(image.any(1))
    return (rows.min() - 3, rows.max() + 3) if len(rows) else (0, 127)


def describe(cfg: DictConfig) -> dict:
    """Build the data set, print and save its summary and example plot; returns the summary."""
    dataset = hydra.utils.instantiate(cfg.dataset)
    out_dir = Path(cfg.out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    summary = dataset.summary()
    png = out_dir / "examples.png"
    if isinstance(dataset, RollDataset) and dataset.inputs == "features":
        png = None  # feature vectors: nothing to draw
    elif isinstance(dataset, RollDataset):
        plot_rolls(dataset, png, cfg.n_examples, cfg.seed)
    else:  # MelodyPairs, or CompletionQueries: the pairs their queries come from
        pairs = getattr(dataset, "pairs", None) or dataset
        plot_phrases(pairs, png, cfg.n_examples, cfg.seed)
        with open(out_dir / "keys.csv", "w", newline="") as f:  # every song's key and the shift it was moved by
            writer = csv.DictWriter(f, fieldnames=["song", "key", "method", "shift"])
            writer.writeheader()
            writer.writerows(pairs.song_keys())
        summary["keys_csv"] = str(out_dir / "keys.csv")
    summary["examples_png"] = str(png) if png else None
    write_json_atomic(out_dir / "describe.json", summary)
    OmegaConf.save(cfg, out_dir / "config.yaml", resolve=True)
    print(json.dumps(summary, indent=2))
    return summary


@hydra.main(version_base="1.3", config_path="../../conf", config_name="describe")
def main(cfg: DictConfig) -> None:
    with user_errors_exit():
        describe(cfg)


if __name__ == "__main__":
    main()
