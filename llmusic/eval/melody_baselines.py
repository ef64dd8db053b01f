"""Rankings without learning: what simple melody statistics score on a completion query.

A model's MAP says little until it stands beside what a rule gets on the same candidate lists (a
pitch-class rule beat every trained model of the first protocol, issue 10). Each baseline scores
every candidate of a query from the phrase tokens alone; higher is more likely the continuation:
- `pitch_class_cosine`: cosine of the duration-weighted pitch-class histograms (12 bins) of the
  context and the candidate (same key, same scale: high);
- `interval_continuity`: minus the distance in semitones from the context's last pitch to the
  candidate's first (melodies move by small steps across a phrase boundary);
- `rhythm_cosine`: cosine of the histograms of onset positions within the bar (`steps_per_bar`
  bins: where in the bar notes start);
- `combined_z`: the three, each z-scored over the query's candidates, summed.
Tokens follow llmusic.midi.phrase (0-127 a note onset of that pitch, `hold` the previous note
sounding on, anything else silence); `hold` is passed in, so eval imports nothing of midi.
Everything is vectorised over queries and candidates: (Q, T) contexts, (Q, N, T) candidates.
"""

from __future__ import annotations

import numpy as np

N_PITCHES = 128
BASELINES = ("pitch_class_cosine", "interval_continuity", "rhythm_cosine", "combined_z")
NO_PITCH = -1
SILENT, HELD = 12, 13  # pitch-class codes of a silent step and a held one


def pitch_class_histogram(tokens: np.ndarray, hold: int) -> np.ndarray:
    """(..., T) tokens -> (..., 12) float32: the steps each pitch class sounds (a held note counts
    on every step it is held)."""
    tokens = np.asarray(tokens)
    values = np.arange(max(int(tokens.max(initial=0)), hold) + 1)
    lookup = np.where(values < N_PITCHES, values % 12, SILENT).astype(np.int8)  # a token's pitch class
    lookup[hold] = HELD
    by_step = lookup[np.ascontiguousarray(tokens.reshape(-1, tokens.shape[-1]).T)]  # (T, R): a vector op per step
    sounding = np.empty_like(by_step)
    state = np.full(by_step.shape[1], SILENT, dtype=np.int8)
    for t, step in enumerate(by_step):  # a HOLD continues the state, anything else sets it
        state = np.where(step == HELD, state, step)
        sounding[t] = state
    counts = np.stack([np.count_nonzero(sounding == pc, axis=0) for pc in range(12)], axis=-1)  # (R, 12)
    return counts.astype(np.float32).reshape(*tokens.shape[:-1], 12)


def onset_position_histogram(tokens: np.ndarray, steps_per_bar: int) -> np.ndarray:
    """(..., T) -> (..., steps_per_bar) onsets per position in the bar."""
    onset = np.asarray(tokens) < N_PITCHES
    bars = -(-onset.shape[-1] // steps_per_bar)
    padded = np.zeros((*onset.shape[:-1], bars * steps_per_bar), dtype=np.float32)
    padded[..., :onset.shape[-1]] = onset
    return padded.reshape(*onset.shape[:-1], bars, steps_per_bar).sum(-2)


def _cosine(query: np.ndarray, candidates: np.ndarray) -> np.ndarray:
    """(Q, D), (Q, N, D) -> (Q, N); a zero vector has cosine 0 with everything."""
    dot = np.einsum("qd,qnd->qn", query, candidates)
    norms = np.linalg.norm(query, axis=-1)[:, None] * np.linalg.norm(candidates, axis=-1)
    return np.divide(dot, norms, out=np.zeros_like(dot), where=norms > 0)


def _edge_pitch(tokens: np.ndarray, last: bool) -> np.ndarray:
    """(..., T) -> (...,) the pitch of the last (or first) onset, NO_PITCH without one."""
    onset = tokens < N_PITCHES
    steps = np.arange(tokens.shape[-1])
    where = np.where(onset, steps, -1).max(-1) if last else np.where(onset, steps, tokens.shape[-1]).min(-1)
    found = onset.any(-1)
    pitch = np.take_along_axis(tokens, np.clip(where, 0, tokens.shape[-1] - 1)[..., None], -1)[..., 0]
    return np.where(found, pitch.astype(np.int16), NO_PITCH)


def zscore(scores: np.ndarray) -> np.ndarray:
    """(Q, N) scores standardised over each query's candidates (0 where they are all equal)."""
    centred = scores - scores.mean(-1, keepdims=True)
    sd = scores.std(-1, keepdims=True)
    return np.divide(centred, sd, out=np.zeros_like(centred), where=sd > 0)


def pitch_class_cosine(context: np.ndarray, candidates: np.ndarray, hold: int) -> np.ndarray:
    """(Q, T), (Q, N, T) -> (Q, N): cosine of the pitch-class histograms."""
    return _cosine(pitch_class_histogram(context, hold), pitch_class_histogram(candidates, hold))


def interval_continuity(context: np.ndarray, candidates: np.ndarray) -> np.ndarray:
    """(Q, T), (Q, N, T) -> (Q, N): -|first pitch of the candidate - last pitch of the context|;
    -N_PITCHES (below any real distance) where either has no note."""
    last = _edge_pitch(np.asarray(context), last=True)[:, None]  # (Q, 1)
    first = _edge_pitch(np.asarray(candidates), last=False)  # (Q, N)
    distance = np.abs(first - last).astype(np.float32)
    return np.where((first >= 0) & (last >= 0), -distance, -float(N_PITCHES))


def rhythm_cosine(context: np.ndarray, candidates: np.ndarray, steps_per_bar: int) -> np.ndarray:
    """(Q, T), (Q, N, T) -> (Q, N): cosine of the onset-position histograms."""
    return _cosine(onset_position_histogram(context, steps_per_bar), onset_position_histogram(candidates, steps_per_bar))


def combined_z(*scores: np.ndarray) -> np.ndarray:
    """(Q, N) scores of several baselines -> their per-query z-scores, summed."""
    return sum(zscore(s) for s in scores)


def baseline_scores(context: np.ndarray, candidates: np.ndarray, hold: int, steps_per_bar: int) -> dict[str, np.ndarray]:
    """(Q, T) contexts, (Q, N, T) candidates -> {baseline: (Q, N) float32 scores} for every BASELINES name."""
    context, candidates = np.asarray(context), np.asarray(candidates)
    scores = {"pitch_class_cosine": pitch_class_cosine(context, candidates, hold),
              "interval_continuity": interval_continuity(context, candidates),
              "rhythm_cosine": rhythm_cosine(context, candidates, steps_per_bar)}
    scores["combined_z"] = combined_z(*scores.values())
    return {name: scores[name].astype(np.float32) for name in BASELINES}
