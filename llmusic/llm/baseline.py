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
as real ones do. Names outside the tables get a fixed profile drawn from their hash.
"""

from __future__ import annotations

import json
import random
import zlib
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass

from llmusic.constraints import ConstraintSet
from llmusic.llm.base import Backend, Completion, SongRequest


@dataclass(frozen=True)
class GenreProfile:
    progression: tuple[int, ...]  # scale degree (0-based) of each bar's chord
    voicing: str  # triad | seventh | dominant7 | power | sus
    bass: str  # root | walk | octave | riff | offbeat
    keys: tuple[int, ...]  # preferred tonic pitch classes
    melody_centre: int  # MIDI pitch the melody wanders around
    programs: tuple[int, int, int]  # GM programs for melody, chords, bass


@dataclass(frozen=True)
class StyleProfile:
    notes_per_bar: int  # melody density
    syncopation: float  # chance a melody note moves off the beat
    velocity: int
    spread: int  # velocity variation
    drums: str  # key of DRUM_PATTERNS
    comp: str  # chord rhythm: block | pulse | stab | offbeat | arp | waltz
    leap: float  # chance of a melodic leap rather than a step


GENRES = {
    "Pop": GenreProfile((0, 4, 5, 3), "triad", "root", (0, 7, 2, 9), 72, (0, 0, 33)),
    "Rock": GenreProfile((0, 3, 4, 3), "power", "riff", (4, 9, 2, 7), 67, (29, 30, 34)),
    "Jazz": GenreProfile((1, 4, 0, 5), "seventh", "walk", (5, 10, 3, 0), 70, (66, 0, 32)),
    "Classical": GenreProfile((0, 3, 4, 0), "triad", "root", (0, 2, 7, 5), 74, (40, 48, 42)),
    "Electronic": GenreProfile((5, 3, 0, 4), "triad", "octave", (9, 0, 5, 7), 76, (81, 89, 38)),
    "Hip-Hop": GenreProfile((0, 3, 0, 3), "seventh", "offbeat", (1, 6, 8, 3), 70, (0, 4, 38)),
    "Country": GenreProfile((0, 3, 0, 4), "triad", "root", (7, 2, 9, 4), 69, (25, 25, 33)),
    "Blues": GenreProfile((0, 3, 0, 4), "dominant7", "walk", (4, 9, 7, 0), 65, (65, 0, 32)),
    "Folk": GenreProfile((0, 4, 3, 0), "triad", "root", (2, 7, 9, 0), 71, (73, 24, 32)),
    "Reggae": GenreProfile((0, 3, 4, 3), "triad", "offbeat", (7, 9, 2, 5), 69, (0, 16, 33)),
    "Metal": GenreProfile((0, 5, 6, 0), "power", "riff", (4, 2, 9, 11), 64, (30, 30, 34)),
    "Punk": GenreProfile((0, 3, 4, 4), "power", "riff", (9, 4, 7, 2), 66, (29, 29, 34)),
    "Ambient": GenreProfile((0, 3, 0, 5), "sus", "root", (2, 4, 11, 6), 79, (88, 89, 38)),
}

STYLES = {
    "Baroque": StyleProfile(8, 0.0, 80, 6, "sparse", "arp", 0.2),
    "Romantic": StyleProfile(4, 0.1, 70, 20, "sparse", "block", 0.4),
    "Modernist": StyleProfile(6, 0.4, 75, 25, "syncopated", "stab", 0.7),
    "Minimalist": StyleProfile(4, 0.0, 65, 4, "sparse", "arp", 0.1),
    "Funky": StyleProfile(8, 0.5, 95, 12, "funk", "stab", 0.3),
    "Groovy": StyleProfile(6, 0.35, 90, 10, "backbeat", "stab", 0.3),
    "Swing": StyleProfile(6, 0.3, 80, 12, "swing", "pulse", 0.3),
    "Bossa Nova": StyleProfile(5, 0.4, 65, 8, "bossa", "offbeat", 0.25),
    "Waltz": StyleProfile(3, 0.0, 70, 10, "waltz", "waltz", 0.3),
    "March": StyleProfile(4, 0.0, 100, 6, "march", "pulse", 0.2),
    "Ballad": StyleProfile(2, 0.1, 60, 10, "halftime", "block", 0.3),
    "Upbeat": StyleProfile(8, 0.2, 100, 10, "four", "pulse", 0.3),
    "Chill": StyleProfile(3, 0.2, 55, 8, "halftime", "block", 0.2),
    "Dark": StyleProfile(3, 0.1, 75, 15, "halftime", "block", 0.3),
    "Bright": StyleProfile(6, 0.1, 90, 10, "backbeat", "pulse", 0.3),
    "Melodic": StyleProfile(6, 0.1, 80, 10, "backbeat", "block", 0.15),
    "Rhythmic": StyleProfile(8, 0.3, 95, 8, "breakbeat", "stab", 0.3),
    "Syncopated": StyleProfile(6, 0.7, 85, 10, "syncopated", "offbeat", 0.3),
    "Bluesy": StyleProfile(4, 0.3, 80, 15, "shuffle", "pulse", 0.3),
    "Folky": StyleProfile(4, 0.0, 70, 10, "folk", "waltz", 0.2),
    "Reggaeton": StyleProfile(6, 0.4, 95, 8, "dembow", "offbeat", 0.3),
    "Grunge": StyleProfile(4, 0.2, 105, 10, "grunge", "block", 0.3),
    "Industrial": StyleProfile(8, 0.3, 110, 5, "industrial", "stab", 0.5),
    "Trance": StyleProfile(8, 0.0, 95, 5, "four", "arp", 0.2),
    "Drone": StyleProfile(1, 0.0, 50, 4, "none", "block", 0.0),
}

MODES = {
    "happy": (0, 2, 4, 5, 7, 9, 11),  # ionian
    "sad": (0, 2, 3, 5, 7, 8, 10),  # aeolian
    "energetic": (0, 2, 4, 5, 7, 9, 10),  # mixolydian
    "calm": (0, 2, 4, 6, 7, 9, 11),  # lydian
    "mysterious": (0, 1, 3, 5, 7, 8, 10),  # phrygian
}
MOOD_DYNAMICS = {"happy": (5, 2), "sad": (-15, -3), "energetic": (15, 3), "calm": (-20, 0), "mysterious": (-8, -5)}

# One bar on the 8th-note grid: (kick, snare, hi-hat); 'x' = a hit. Meters other than 4/4 wrap.
DRUM_PATTERNS = {
    "backbeat": ("x...x...", "..x...x.", "x.x.x.x."),
    "four": ("x.x.x.x.", "..x...x.", ".x.x.x.x"),
    "halftime": ("x.......", "....x...", "x.x.x.x."),
    "swing": ("x...x...", "..x...x.", "x.xx.xx."),
    "shuffle": ("x..x.x..", "..x...x.", "xx.xx.xx"),
    "bossa": ("x..xx..x", "..x..x..", "xxxxxxxx"),
    "waltz": ("x.....x.", "..x.x...", "x.x.x.x."),
    "march": ("x...x...", "xxx.x.xx", "........"),
    "funk": ("x..x..x.", "..x..x.x", "xxxxxxxx"),
    "breakbeat": ("x..x..x.", "..x...xx", "xxxxxxxx"),
    "syncopated": (".x..x..x", "...x..x.", "x.x.x.x."),
    "dembow": ("x..xx..x", "...x..x.", "x.x.x.x."),
    "grunge": ("x..x.x..", "..x...x.", "x.x.x.x."),
    "industrial": ("x.xx.x.x", "..x...x.", "xxxxxxxx"),
    "folk": ("x...x...", "......x.", "........"),
    "sparse": ("x.......", "........", "....x..."),
    "none": ("x.......", "........", "........"),
}
VOICINGS = {
    "triad": (0, 2, 4),  # scale-degree offsets
    "seventh": (0, 2, 4, 6),
    "sus": (0, 3, 4),
    "power": None,  # root, fifth, octave in semitones
    "dominant7": None,  # major triad and flat seventh in semitones
}


def _hashed_rng(*parts: object) -> random.Random:
    return random.Random(zlib.crc32("|".join(map(str, parts)).encode()))


def genre_profile(name: str) -> GenreProfile:
    """The table's profile, or a fixed one drawn from the name (any taxonomy gets distinct classes)."""
    if name in GENRES:
        return GENRES[name]
    r = _hashed_rng("genre", name)
    return GenreProfile(
        tuple(r.randrange(7) for _ in range(4)), r.choice(list(VOICINGS)),
        r.choice(["root", "walk", "octave", "riff", "offbeat"]), tuple(r.sample(range(12), 4)),
        r.randrange(62, 80), (r.randrange(128), r.randrange(128), r.randrange(32, 40)),
    )


def style_profile(name: str) -> StyleProfile:
    if name in STYLES:
        return STYLES[name]
    r = _hashed_rng("style", name)
    return StyleProfile(
        r.randrange(1, 9), round(r.random() * 0.7, 2), r.randrange(55, 111), r.randrange(4, 25),
        r.choice(list(DRUM_PATTERNS)), r.choice(["block", "pulse", "stab", "offbeat", "arp", "waltz"]),
        round(r.random() * 0.7, 2),
    )


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
        r = _hashed_rng(self.seed, request.genre, request.style, request.mood, request.index, request.attempt)
        song = self.composer.compose(request.genre, request.style, request.mood, r)
        return json.dumps(song, separators=(",", ":"))

    async def complete_many(
        self, requests: Sequence[SongRequest]
    ) -> AsyncIterator[tuple[SongRequest, Completion | BaseException]]:
        for request in requests:
            text = self.reply(request)
            yield request, Completion(text=text, completion_tokens=len(text) // 4, model="rules-v1")
