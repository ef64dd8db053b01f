"""Melody phrases as tokens: the vocabulary the melody data sets and the melody transformer share.

A phrase is `n_tokens` int64 tokens on a grid of `steps_per_quarter` steps (default 128 tokens of
32nd notes = 4 bars of 4/4, PiRhDy's grid): 0-127 a note onset of that pitch, HOLD the previous
note sounding on, REST silence, PAD past the phrase's end. Longer phrases are cut, shorter ones
padded. `encode_phrase` turns notes on the grid into tokens, `decode_phrase` turns them back.
"""

from __future__ import annotations

import numpy as np

HOLD, REST, PAD = 128, 129, 130  # after the 128 MIDI pitches
VOCAB_SIZE = 131


def encode_phrase(onset: np.ndarray, duration: np.ndarray, pitch: np.ndarray, length: int,
                  n_tokens: int = 128) -> np.ndarray:
    """Notes (in grid steps from the phrase start) -> (n_tokens,) int64 tokens.

    The melody is made monophonic: of notes starting together the highest is kept, and a note
    ends where the next one starts. Notes starting before the phrase are not part of it (their
    tail reads as REST), steps from `length` on are PAD.
    """
    tokens = np.full(n_tokens, PAD, dtype=np.int64)
    end = min(length, n_tokens)
    tokens[:end] = REST
    inside = (onset >= 0) & (onset < end)
    onset, duration, pitch = onset[inside], np.maximum(duration[inside], 1), pitch[inside]
    order = np.lexsort((-pitch, onset))  # by onset, highest pitch first
    onset, duration, pitch = onset[order], duration[order], pitch[order]
    first = np.ones(len(onset), dtype=bool)
    first[1:] = onset[1:] != onset[:-1]
    onset, duration, pitch = onset[first], duration[first], pitch[first]
    stop = np.minimum(onset + duration, np.r_[onset[1:], end])
    for t0, t1, p in zip(onset.tolist(), stop.tolist(), pitch.tolist()):
        tokens[t0] = p
        tokens[t0 + 1:t1] = HOLD
    return tokens


def decode_phrase(tokens: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Tokens -> (onset, duration, pitch) in grid steps: the inverse of `encode_phrase` for the
    monophonic, in-phrase melodies it produces."""
    tokens = np.asarray(tokens)
    onset = np.flatnonzero(tokens < HOLD)
    sounding = np.r_[tokens == HOLD, False]
    duration = np.array([np.argmin(sounding[t + 1:]) + 1 for t in onset.tolist()], dtype=np.int64)
    return onset.astype(np.int64), duration, tokens[onset].astype(np.int64)


def grid_notes(ticks_onset: np.ndarray, ticks_duration: np.ndarray,
               ticks_per_step: float) -> tuple[np.ndarray, np.ndarray]:
    """Times (ticks or any unit) -> (onset, duration) in whole grid steps (nearest step; at least
    one step long)."""
    onset = np.round(ticks_onset / ticks_per_step).astype(np.int64)
    stop = np.round((ticks_onset + ticks_duration) / ticks_per_step).astype(np.int64)
    return onset, np.maximum(stop - onset, 1)
