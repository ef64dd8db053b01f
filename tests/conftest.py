"""Shared fixtures. Real-data tests fail (never skip) when ../shared/data is missing."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from hydra import compose, initialize_config_dir
from hydra.utils import instantiate

REPO = Path(__file__).resolve().parents[1]
CONF = REPO / "conf"


def shared_data_dir() -> Path:
    return Path(os.environ.get("LLMUSIC_SHARED_DATA", REPO.parent / "shared" / "data")).resolve()


@pytest.fixture(scope="session")
def shared_data() -> Path:
    root = shared_data_dir()
    if not (root / "README.md").exists():
        pytest.fail(f"real data not found at {root}: get it with `python -m llmusic.data.fetch` "
                    "(or set LLMUSIC_SHARED_DATA to where it is)")
    return root


def build_dataset(name: str, *overrides: str):
    """A data set from conf/dataset/<name>.yaml, composed as an entry point composes it."""
    with initialize_config_dir(config_dir=str(CONF), version_base="1.3"):
        cfg = compose("describe", overrides=[f"dataset={name}", *overrides])
    return instantiate(cfg.dataset)
