"""A rule-based composer: the NON-LLM control.

It is not a stand-in for an LLM and says so (`is_llm = False`). It answers the same requests with
the same kind of reply text (the paper's JSON), which goes through the same parse, validate and
render path, so the rest of the pipeline can be run, tested and compared against a known answer:
a classifier trained on it must learn what these rules put into each class, and no more.

What is conditioned on what:
  genre -> chord progression, chord voicing, bass line, key, register, GM programs
  style -> melody density and syncopation, chord rhythm, drum pattern, dynamics, leaps
  mood  -> mode (major, minor, mixolydian, lydian, phrygian), loudness and register shift
A small share of songs borrows another class's progression or drum pattern, so classes overlap
as real ones do. The tables are in llmusic.llm.baseline_profiles; names outside them get a fixed
profile drawn from their hash.
"""

from __future__ import annotations

import json
import random
from collections.abc import AsyncIterator, Sequence

from llmusic.constraints import ConstraintSet
from llmusic.llm.base import Backend, Completion, SongRequest
from llmusic.llm.baseline_profiles import (DRUM_PATTERNS, GENRES, MODES, MOOD_DYNAMICS, VOICINGS, GenreProfile,
                                           genre_profile, hashed_rng, style_profile)


class SongComposer:
    """Writes one song's reply as the paper's JSON, within a constraint set's limits."""

    def __init__(self, constraints: ConstraintSet, borrow: float = 0.1) -> None:
        self.cs = constraints
        self.borrow = borrow  # chance of taking another class's progression or drum pattern
        tpq = constraints.ticks_per_quarter
        lo, hi = constraints.duration_range
        named = [d for d in (tpq // 2, tpq, 2 * tpq) if lo <= d <= hi]
        self.durations = named or [lo]
        self.step = tpq // 2  # the 8th-note grid
        names = {v: k for k, v in constraints.drum_pitches.items()}
        pitches = sorted(constraints.drum_pitches)
        # kick, snare, hi-hat by name; a set naming them otherwise gets its first three pitches
        self.drums = [names.get(n, pitches[min(i, len(pitches) - 1)])
                      for i, n in enumerate(("kick", "snare", "hi-hat"))]

    def _dur(self, ticks: int) -> int:
        """The longest allowed named duration not over `ticks` (else the shortest)."""
        fits = [d for d in self.durations if d <= ticks]
        return max(fits) if fits else min(self.durations)

    def _vel(self, r: random.Random, base: int, spread: int) -> int:
        lo, hi = self.cs.velocity_range
        return max(lo, min(hi, int(round(r.gauss(base, spread / 2)))))

    def _pitch(self, p: int) -> int:
        lo, hi = self.cs.pitch_range
        return max(lo, min(hi, p))

    def compose(self, genre: str, style: str, mood: str, r: random.Random) -> dict:
        cs = self.cs
        g, s = genre_profile(genre), style_profile(style)
        if r.random() < self.borrow:
            g = GenreProfile(r.choice(list(GENRES.values())).progression, g.voicing, g.bass, g.keys,
                             g.melody_centre, g.programs)
        drums = DRUM_PATTERNS[s.drums if r.random() >= self.borrow else r.choice(list(DRUM_PATTERNS))]
        mode = MODES.get(mood, MODES["happy"])
        loud, shift = MOOD_DYNAMICS.get(mood, (0, 0))
        tonic = r.choice(g.keys)
        meter = "3/4" if s.comp == "waltz" and "3/4" in cs.time_signatures else cs.time_signatures[0]
        num, den = (int(x) for x in meter.split("/"))
        bar = cs.ticks_per_quarter * 4 * num // den
        steps = bar // self.step
        n_bars = max(1, cs.time_span_ticks // bar)
        velocity = s.velocity + loud

        def degree_pitch(degree: int, octave_base: int) -> int:
            return octave_base + tonic + 12 * (degree // 7) + mode[degree % 7]

        tracks: dict[str, list[list[int]]] = {"melody": [], "chords": [], "bass": [], "rhythm": []}
        melody_octave = 12 * ((g.melody_centre + shift) // 12)
        degree = 0
        for b in range(n_bars):
            t0 = b * bar
            root = g.progression[b % len(g.progression)]
            chord = self._chord(root, g.voicing, tonic, mode)
            # Chords: the comping rhythm of the style.
            comp = {"block": [0], "pulse": [2, 6], "stab": [1, 3, 5, 7], "offbeat": [1, 3, 5, 7],
                    "arp": list(range(8)), "waltz": [0, 2, 4]}[s.comp]
            for k, pos in enumerate(p for p in comp if p < steps):
                start = t0 + pos * self.step
                held = bar - pos * self.step if s.comp == "block" else self.step * (2 if s.comp == "pulse" else 1)
                length = self._dur(held)
                notes = [chord[k % len(chord)]] if s.comp == "arp" else chord
                for p in notes:
                    tracks["chords"].append([self._pitch(p + shift), length,
                                             self._vel(r, velocity - 10, s.spread), start])
            # Bass: the genre's line under the chord root.
            bass_root = self._pitch(36 + (tonic + mode[root % 7]) % 12)
            line = self._bassline(g.bass, bass_root, mode, steps)
            for i, (pos, p) in enumerate(line):
                gap = (line[i + 1][0] if i + 1 < len(line) else steps) - pos
                tracks["bass"].append([self._pitch(p), self._dur(gap * self.step),
                                       self._vel(r, velocity, s.spread), t0 + pos * self.step])
            # Melody: notes on the grid, chord tones on strong beats, steps or leaps between.
            onsets = self._onsets(r, s.notes_per_bar, s.syncopation, steps)
            for i, pos in enumerate(onsets):
                if pos % 4 == 0 and r.random() < 0.7:
                    degree = root + r.choice((0, 2, 4))
                elif r.random() < s.leap:
                    degree += r.choice((-4, -3, 3, 4))
                else:
                    degree += r.choice((-1, 1))
                degree = max(-5, min(9, degree))
                gap = (onsets[i + 1] if i + 1 < len(onsets) else steps) - pos
                pitch = degree_pitch(degree, melody_octave)
                tracks["melody"].append([self._pitch(pitch), self._dur(gap * self.step),
                                         self._vel(r, velocity + 5, s.spread), t0 + pos * self.step])
            # Drums: the style's pattern.
            for drum, line in zip(self.drums, drums):
                for pos in range(steps):
                    if line[pos % len(line)] == "x":
                        accent = 10 if pos % 4 == 0 else 0
                        tracks["rhythm"].append([drum, min(self.durations), self._vel(r, velocity + accent, s.spread),
                                                 t0 + pos * self.step])
        reply: dict = dict(tracks)
        if cs.allows_choice_of_meter:
            reply["time_signature"] = meter
        if cs.free_programs:
            reply["programs"] = dict(zip(("melody", "chords", "bass"), g.programs))
        return reply

    def _chord(self, root: int, voicing: str, tonic: int, mode: tuple[int, ...]) -> list[int]:
        base = 48 + tonic + mode[root % 7]
        if voicing == "power":
            return [base, base + 7, base + 12]
        if voicing == "dominant7":
            return [base, base + 4, base + 7, base + 10]
        return [48 + tonic + 12 * ((root + d) // 7) + mode[(root + d) % 7] for d in VOICINGS[voicing]]

    def _bassline(self, kind: str, root: int, mode: tuple[int, ...], steps: int) -> list[tuple[int, int]]:
        if kind == "walk":
            line = [root, root + mode[2], root + 7, root + mode[5] - 12]  # up the triad, then the sixth below
            return [(2 * i, p) for i, p in enumerate(line) if 2 * i < steps]
        if kind == "octave":
            return [(i, root + 12 * (i % 2)) for i in range(steps)]
        if kind == "riff":
            return [(i, root) for i in range(steps)]
        if kind == "offbeat":
            return [(i, root + 7 * (i == 5)) for i in (0, 3, 5) if i < steps]
        return [(0, root), (steps // 2, root + 7)]

    def _onsets(self, r: random.Random, per_bar: int, syncopation: float, steps: int) -> list[int]:
        n = max(1, min(steps, per_bar + r.choice((-1, 0, 0, 1))))
        even = sorted({int(i * steps / n) for i in range(n)})
        moved = {min(steps - 1, p + 1) if r.random() < syncopation else p for p in even}
        return sorted(moved)


class BaselineComposer(Backend):
    """The non-LLM control backend: seeded rules, no network, replies in the paper's JSON."""

    is_llm = False
    paid = False

    def __init__(self, constraints: ConstraintSet, seed: int = 0, borrow: float = 0.1, name: str = "baseline") -> None:
        self.name = name
        self.seed = seed
        self.composer = SongComposer(constraints, borrow)

    def identity(self) -> dict:
        return {"name": self.name, "model": "rules-v1", "seed": self.seed}

    def reply(self, request: SongRequest) -> str:
        r = hashed_rng(self.seed, request.genre, request.style, request.mood, request.index, request.attempt)
        song = self.composer.compose(request.genre, request.style, request.mood, r)
        return json.dumps(song, separators=(",", ":"))

    async def complete_many(
        self, requests: Sequence[SongRequest]
    ) -> AsyncIterator[tuple[SongRequest, Completion | BaseException]]:
        for request in requests:
            text = self.reply(request)
            yield request, Completion(text=text, completion_tokens=len(text) // 4, model="rules-v1")
