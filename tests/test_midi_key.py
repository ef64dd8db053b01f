"""Key estimation (Krumhansl-Schmuckler and key signatures) and the shift to C major / A minor."""

from __future__ import annotations

import numpy as np
import pytest
import symusic

from llmusic.midi import load_score
from llmusic.midi.key import (Key, estimate_key, fit_shift, key_from_signature, score_key, transpose_to_reference,
                              trusted_signature)

# Scale degrees of a melody that states its key: tonic triad on strong beats, then the scale.
MAJOR_TUNE = [0, 4, 7, 12, 11, 7, 5, 4, 2, 0, 2, 4, 5, 7, 9, 11, 12, 7, 4, 0]
MINOR_TUNE = [0, 3, 7, 12, 11, 7, 5, 3, 2, 0, 2, 3, 5, 7, 8, 11, 12, 7, 3, 0]  # harmonic minor


def tune(tonic: int, degrees: list[int]) -> tuple[np.ndarray, np.ndarray]:
    pitch = np.array(degrees) + tonic
    duration = np.where(np.isin(np.array(degrees) % 12, [0, 7]), 960, 480)  # tonic and fifth held longer
    return pitch, duration


@pytest.mark.parametrize("tonic", range(12))
@pytest.mark.parametrize("mode,degrees", [("major", MAJOR_TUNE), ("minor", MINOR_TUNE)])
def test_profile_finds_the_key_of_a_tune_in_every_key(tonic, mode, degrees):
    pitch, duration = tune(60 + tonic, degrees)
    key = estimate_key(pitch, duration)
    assert (key.tonic, key.mode, key.method) == (tonic, mode, "profile")
    assert 0.7 < key.correlation <= 1.0


def test_e_major_moves_to_c_major_note_for_note():
    e_major_scale = np.array([64, 66, 68, 69, 71, 73, 75, 76])
    pitch, duration = tune(64, MAJOR_TUNE)
    key = estimate_key(pitch, duration)
    assert key.name == "E major" and key.shift_to_reference() == -4
    moved, shift = transpose_to_reference(e_major_scale, key)
    assert shift == -4 and moved.tolist() == [60, 62, 64, 65, 67, 69, 71, 72]


def test_f_sharp_minor_moves_to_a_minor_note_for_note():
    f_sharp_natural_minor = np.array([66, 68, 69, 71, 73, 74, 76, 78])
    pitch, duration = tune(66, MINOR_TUNE)
    key = estimate_key(pitch, duration)
    assert key.name == "F# minor" and key.shift_to_reference() == 3
    moved, shift = transpose_to_reference(f_sharp_natural_minor, key)
    assert shift == 3 and moved.tolist() == [69, 71, 72, 74, 76, 77, 79, 81]


def test_shift_is_the_smallest_move_and_stays_inside_midi():
    assert [Key(t, "major", "profile").shift_to_reference() for t in range(12)] == [0, -1, -2, -3, -4, -5, -6, 5, 4, 3, 2, 1]
    assert Key(9, "minor", "profile").shift_to_reference() == 0
    assert fit_shift(5, np.array([60, 125])) == -7  # up a fourth would leave MIDI: down a fifth instead
    assert fit_shift(-5, np.array([2, 70])) == 7
    assert fit_shift(3, np.array([])) == 3


def test_no_key_without_enough_notes():
    assert estimate_key(np.array([], dtype=np.int64)) is None
    assert estimate_key(np.array([60, 72, 48])) is None  # one pitch class: a flat profile fits nothing
    moved, shift = transpose_to_reference(np.array([61, 63]), None)
    assert shift == 0 and moved.tolist() == [61, 63]


@pytest.mark.parametrize("sharps,tonality,name", [
    (0, 0, "C major"), (1, 0, "G major"), (4, 0, "E major"), (-1, 0, "F major"), (-3, 0, "Eb major"),
    (0, 1, "A minor"), (3, 1, "F# minor"), (-2, 1, "G minor"),
])
def test_key_signature_events(sharps, tonality, name):
    score = symusic.Score(480)
    assert key_from_signature(score) is None
    score.key_signatures.append(symusic.KeySignature(960, 5, 0))
    score.key_signatures.append(symusic.KeySignature(0, sharps, tonality))  # the first in time counts
    key = key_from_signature(score)
    assert key.name == name and key.method == "key_signature"


def test_profile_on_real_lakh_files_agrees_with_their_transposed_selves(shared_data):
    """Transposing a real file by k semitones moves its estimated tonic by k (the estimate is a
    function of the notes, not of absolute pitch)."""
    files = sorted((shared_data / "lmd_subset" / "midi").glob("*.mid"))[:20]
    checked = 0
    for path in files:
        score = load_score(path)
        notes = [t.notes.numpy() for t in score.tracks if not t.is_drum and len(t.notes)]
        if not notes:
            continue
        pitch = np.concatenate([n["pitch"] for n in notes]).astype(np.int64)
        weight = np.concatenate([n["duration"] for n in notes]).astype(np.float64)
        key = estimate_key(pitch, weight)
        for k in (1, 5, -3):
            moved = estimate_key(pitch + k, weight)
            assert (moved.tonic, moved.mode) == ((key.tonic + k) % 12, key.mode)
        checked += 1
    assert checked >= 15


def tune_score(tonic: int, mode: str, signature: tuple[int, int] | None) -> symusic.Score:
    """A tune on a piano track, a drum track on every pitch class (drums have no key), a key signature."""
    score = symusic.Score(480)
    piano, drums = symusic.Track("piano", 0, False), symusic.Track("drums", 0, True)
    pitch, duration = tune(60 + tonic, MAJOR_TUNE if mode == "major" else MINOR_TUNE)
    for i, (p, d) in enumerate(zip(pitch.tolist(), duration.tolist())):
        piano.notes.append(symusic.Note(480 * i, d, p, 90))
    for i in range(36, 48):
        drums.notes.append(symusic.Note(240 * i, 960, i, 90))
    score.tracks.extend([piano, drums])
    if signature is not None:
        score.key_signatures.append(symusic.KeySignature(0, *signature))
    return score


@pytest.mark.parametrize("signature,trusted", [(None, None), ((0, 0), None), ((0, 1), None), ((4, 0), "E major"),
                                                ((-3, 1), "C minor")])
def test_a_signature_without_sharps_or_flats_is_not_trusted(signature, trusted):
    key = trusted_signature(tune_score(4, "major", signature))
    assert (key.name if key else None) == trusted


@pytest.mark.parametrize("signature,method,found,by", [
    ((2, 0), "profile", "E major", "profile"),  # the profile ignores the (wrong) signature
    ((2, 0), "key_signature", "D major", "key_signature"),  # a signature with sharps is believed
    ((0, 0), "key_signature", "E major", "profile"),  # C major by default: the profile decides
    (None, "key_signature", "E major", "profile"),
])
def test_score_key_by_method(signature, method, found, by):
    key = score_key(tune_score(4, "major", signature), method)
    assert (key.name, key.method) == (found, by)
    assert score_key(tune_score(4, "major", signature), "none") is None
    with pytest.raises(ValueError, match="key method"):
        score_key(tune_score(4, "major", signature), "guess")
