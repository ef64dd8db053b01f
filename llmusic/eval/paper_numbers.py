"""Published numbers our experiments stand beside, each with its source. The one place they live.

`metric` names the key of our metrics.json the number compares with; F1 values are percentages.
`chance` is the chance value of the source's own protocol where the source states it (None: not
stated, so compare through our protocol's chance printed beside our own numbers). `protocol` is the
conf/protocol/ option whose runs measure what the source measured: MusicBERT's numbers (multi-label
over all classes, 5-fold) stand beside `protocol=musicbert` runs only, never beside single-label ones.
"""

from __future__ import annotations

from dataclasses import dataclass

SHIN_KANEKO = "Shin & Kaneko 2025, Large Language Models' Internal Perception of Symbolic Music, arXiv 2507.12808"
MUSICBERT = "Zeng et al. 2021, MusicBERT, Findings of ACL (Table: genre / style classification, F1-micro)"


@dataclass(frozen=True)
class PaperNumber:
    experiment: str  # our experiment config (conf/experiment/<name>.yaml) it compares with
    metric: str  # f1_micro (percent) | map
    value: float
    row: str  # the model and training data the source reports it for
    source: str
    chance: float | None = None
    note: str = ""
    protocol: str = "paper"  # conf/protocol/<name>: the runs this number may stand beside


PAPER_NUMBERS: tuple[PaperNumber, ...] = (
    PaperNumber("style_llm_to_masd", "f1_micro", 27.9, "CNN trained on LLM-MIDI (the paper)", SHIN_KANEKO,
                note="style F1 as the paper reports it; its averaging is not stated"),
    PaperNumber("style_llm_to_masd", "f1_micro", 24.8, "melody2vec / tonnetz row of the paper's style table",
                SHIN_KANEKO, note="a cited baseline trained on real data"),
    PaperNumber("genre_supervised_topmagd", "f1_micro", 78.4, "MusicBERT-base, supervised on TOP-MAGD", MUSICBERT,
                note="pre-trained transformer, multi-label, 5-fold CV on the full TOP-MAGD", protocol="musicbert"),
    PaperNumber("style_supervised_masd", "f1_micro", 64.5, "MusicBERT-base, supervised on MASD", MUSICBERT,
                note="pre-trained transformer, multi-label, 5-fold CV on the full MASD", protocol="musicbert"),
    PaperNumber("melody_completion_llm", "map", 0.0285, "melody transformer trained on LLM-MIDI (the paper)",
                SHIN_KANEKO, note="candidate count not stated, so its chance MAP is unknown"),
    PaperNumber("melody_completion_supervised", "map", 0.1341, "the paper's melody completion reference",
                SHIN_KANEKO, note="candidate count not stated, so its chance MAP is unknown"),
)


def numbers_for(experiment: str, protocol: str = "paper") -> list[PaperNumber]:
    """The published numbers a run of `experiment` under `protocol` may stand beside."""
    return [p for p in PAPER_NUMBERS if p.experiment == experiment and p.protocol == protocol]
