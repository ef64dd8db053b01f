"""Shared fixtures. Real-data tests fail (never skip) when ../shared/data is missing."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from tests.helpers import compose_entry, shared_data_dir


@pytest.fixture(scope="session")
def shared_data() -> Path:
    root = shared_data_dir()
    if not (root / "README.md").exists():
        pytest.fail(f"real data not found at {root}: get it with `python -m llmusic.data.fetch` "
                    "(or set LLMUSIC_SHARED_DATA to where it is)")
    return root


@pytest.fixture(scope="session")
def compose():
    """compose(name, *overrides, hydra=False): conf/<name>.yaml as its `python -m llmusic.<name>`
    entry point composes it (tests.helpers.compose_entry)."""
    return compose_entry


@pytest.fixture(scope="module")
def one_torch_thread():
    """Test machines are shared: one torch thread avoids OpenMP spin-waits (conf/train.yaml `threads`).
    A module asks for it with `pytestmark = pytest.mark.usefixtures("one_torch_thread")`."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)
