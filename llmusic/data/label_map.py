"""Generation labels -> evaluation classes.

A model trained on LLM-MIDI made with the paper's prompt taxonomy (13 genres, 25 styles) is tested
on TOP-MAGD / MASD, whose classes differ. A `LabelMap` says which generation label counts as which
evaluation class (many-to-one), which generation labels have no counterpart (their songs are left
out of training) and which evaluation classes nothing maps to (left out of scoring). Datasets apply
it themselves, so a training set and a test set given the same map share `classes`.
"""

from __future__ import annotations

from collections.abc import Mapping

from llmusic.data.labels import CLASS_ORDERS


class LabelMap:
    """One many-to-one map from a generation label key to an evaluation taxonomy.

    `mapping=None` is the identity (runs generated with the evaluation labels themselves): every
    label is kept as it is and every class of the dataset's own taxonomy is scored.
    """

    def __init__(
        self,
        name: str,
        source: str | None = None,
        target: str | None = None,
        mapping: Mapping[str, str | None] | None = None,
    ) -> None:
        self.name = name
        self.source = source  # the manifest key mapped ("genre", "style", "mood"); None = any
        self.target = target  # a key of CLASS_ORDERS; None for the identity
        self.mapping = None if mapping is None else {str(k): v for k, v in dict(mapping).items()}
        if self.mapping is not None:
            if target not in CLASS_ORDERS:
                raise ValueError(f"label map {name!r}: unknown target taxonomy {target!r}, "
                                 f"known: {sorted(CLASS_ORDERS)}")
            unknown = {v for v in self.mapping.values() if v is not None} - set(CLASS_ORDERS[target])
            if unknown:
                raise ValueError(f"label map {name!r} maps to classes not in {target}: {sorted(unknown)}")

    @property
    def is_identity(self) -> bool:
        return self.mapping is None

    def __call__(self, label: str) -> str | None:
        """The evaluation class of a generation label, or None when it has no counterpart."""
        if self.mapping is None:
            return label
        return self.mapping.get(label)

    @property
    def scored_classes(self) -> list[str] | None:
        """Evaluation classes something maps to, in the taxonomy's order (None: all, identity)."""
        if self.mapping is None:
            return None
        hit = set(self.mapping.values())
        return [c for c in CLASS_ORDERS[self.target] if c in hit]

    @property
    def unscored_classes(self) -> list[str]:
        """Evaluation classes no generation label maps to: excluded from scoring."""
        if self.mapping is None:
            return []
        scored = set(self.scored_classes)
        return [c for c in CLASS_ORDERS[self.target] if c not in scored]

    @property
    def unmapped_labels(self) -> list[str]:
        """Generation labels with no evaluation class: their songs are excluded."""
        if self.mapping is None:
            return []
        return [k for k, v in self.mapping.items() if v is None]

    def __repr__(self) -> str:
        if self.mapping is None:
            return f"LabelMap({self.name!r}, identity)"
        return (f"LabelMap({self.name!r}, {self.source} -> {self.target}: scores "
                f"{len(self.scored_classes)}/{len(CLASS_ORDERS[self.target])} classes, "
                f"unscored {self.unscored_classes}, unmapped {self.unmapped_labels})")
