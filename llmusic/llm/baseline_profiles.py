"""The baseline composer's tables: what each genre, style and mood of the paper's taxonomy sounds
like to the rule-based control (llmusic.llm.baseline). Names outside the tables get a fixed profile
drawn from their hash, so any taxonomy gets distinct classes.
"""

from __future__ import annotations

import random
import zlib
from dataclasses import dataclass


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


def hashed_rng(*parts: object) -> random.Random:
    """A generator seeded by the parts' text: the same draws in every process."""
    return random.Random(zlib.crc32("|".join(map(str, parts)).encode()))


def genre_profile(name: str) -> GenreProfile:
    """The table's profile, or a fixed one drawn from the name (any taxonomy gets distinct classes)."""
    if name in GENRES:
        return GENRES[name]
    r = hashed_rng("genre", name)
    return GenreProfile(
        tuple(r.randrange(7) for _ in range(4)), r.choice(list(VOICINGS)),
        r.choice(["root", "walk", "octave", "riff", "offbeat"]), tuple(r.sample(range(12), 4)),
        r.randrange(62, 80), (r.randrange(128), r.randrange(128), r.randrange(32, 40)),
    )


def style_profile(name: str) -> StyleProfile:
    if name in STYLES:
        return STYLES[name]
    r = hashed_rng("style", name)
    return StyleProfile(
        r.randrange(1, 9), round(r.random() * 0.7, 2), r.randrange(55, 111), r.randrange(4, 25),
        r.choice(list(DRUM_PATTERNS)), r.choice(["block", "pulse", "stab", "offbeat", "arp", "waltz"]),
        round(r.random() * 0.7, 2),
    )
