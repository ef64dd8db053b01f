"""The fingerprinted array cache and the stratified fold assignment."""

from __future__ import annotations

import os

import numpy as np
import pytest

from llmusic.data.cache import ArrayCache, fingerprint
from llmusic.data.rolls import stratified_folds


def test_fingerprint_follows_files_and_parameters(tmp_path):
    a, b = tmp_path / "a.mid", tmp_path / "b.mid"
    a.write_bytes(b"x" * 10)
    b.write_bytes(b"y" * 10)
    key = fingerprint([a, b], {"steps": 128})
    assert key == fingerprint([a, b], {"steps": 128})
    assert key != fingerprint([a, b], {"steps": 64})
    assert key != fingerprint([b, a], {"steps": 128})
    assert key != fingerprint([a], {"steps": 128})
    a.write_bytes(b"x" * 11)  # size
    assert key != fingerprint([a, b], {"steps": 128})
    key = fingerprint([a, b], {"steps": 128})
    st = os.stat(b)
    os.utime(b, ns=(st.st_atime_ns, st.st_mtime_ns + 10**9))  # mtime
    assert key != fingerprint([a, b], {"steps": 128})


def test_array_cache_round_trip(tmp_path):
    cache = ArrayCache(tmp_path / "c")
    assert cache.load("rolls", "k") is None
    arrays = {"packed": np.arange(24, dtype=np.uint8).reshape(2, 3, 4), "reason": np.asarray(["", "no_notes"])}
    path = cache.save("rolls", "k", arrays)
    assert path == cache.path("rolls", "k") and path.exists()
    back = cache.load("rolls", "k")
    assert set(back) == set(arrays)
    for name in arrays:
        np.testing.assert_array_equal(back[name], arrays[name])
    assert [p.name for p in (tmp_path / "c").iterdir()] == [path.name]  # no temporary left behind


@pytest.mark.parametrize("n_folds", [2, 5, 10])
@pytest.mark.parametrize("seed", [0, 1])
def test_stratified_folds_balance_every_class(n_folds, seed):
    rng = np.random.default_rng(seed + 100)
    strata = rng.choice(["a", "b", "c", "d"], size=203, p=[0.7, 0.2, 0.07, 0.03]).tolist()
    folds = stratified_folds(strata, n_folds, seed)
    assert folds.min() >= 0 and folds.max() < n_folds
    sizes = np.bincount(folds, minlength=n_folds)
    assert sizes.max() - sizes.min() <= 1
    for stratum in set(strata):
        per_fold = np.bincount(folds[np.asarray(strata) == stratum], minlength=n_folds)
        assert per_fold.max() - per_fold.min() <= 1, stratum
    np.testing.assert_array_equal(folds, stratified_folds(strata, n_folds, seed))  # deterministic
    assert not np.array_equal(folds, stratified_folds(strata, n_folds, seed + 7))
