"""The constraint set: one object that says what a valid song is.

It renders the rules paragraph of the prompt, the JSON schema of a reply (for structured outputs)
and the limits the validator enforces, so the three can never disagree. Its `time_span_ticks`,
not the bar count the prompt names, drives validation and piano rolls: the paper's prompt says
"8-bar" but allows start times 0-7680, which at 480 ticks per quarter is 4 bars of 4/4.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from llmusic.song import TRACKS

DRUM_NAMES = {35: "kick", 38: "snare", 42: "hi-hat"}
MAX_PHRASE_BARS = 4  # PiRhDy's melody phrase: 4 bars of 4/4 (128 steps of 32nd notes)


def melody_phrase_bars(time_span_ticks: int, ticks_per_quarter: int) -> int:
    """The melody-completion phrase length (bars of 4/4) for songs of this span: half of it, so a
    piece holds a context and its continuation, at most MAX_PHRASE_BARS. paper's 4 bars -> 2;
    paper_consistent (8 bars) and relaxed (16) -> 4. The configs read it as
    `${llmusic.melody_phrase_bars:${constraints.time_span_ticks},${constraints.ticks_per_quarter}}`."""
    return min(MAX_PHRASE_BARS, int(time_span_ticks // (4 * ticks_per_quarter)) // 2)


@dataclass(frozen=True)
class ConstraintSet:
    name: str
    bars: int  # the bar count the prompt names (words only; see time_span_ticks)
    time_span_ticks: int  # start times must lie in [0, time_span_ticks]; drives rolls and validation
    ticks_per_quarter: int = 480
    tempo_bpm: float = 120.0
    time_signatures: tuple[str, ...] = ("4/4",)  # the first is the default
    tracks: tuple[str, ...] = TRACKS
    pitch_range: tuple[int, int] = (0, 127)
    velocity_range: tuple[int, int] = (0, 127)
    duration_range: tuple[int, int] = (240, 960)  # ticks; the prompt names 240, 480 and 960
    event_counts: dict[str, int] = field(
        default_factory=lambda: {"melody": 16, "chords": 8, "bass": 8, "rhythm": 16}
    )
    drum_pitches: dict[int, str] = field(default_factory=lambda: dict(DRUM_NAMES))
    programs: dict[str, int] = field(default_factory=lambda: {"melody": 0, "chords": 0, "bass": 33})
    free_programs: bool = False  # the reply may choose a GM program per track

    def __post_init__(self) -> None:
        # Hydra hands lists and DictConfigs; freeze them so the set is hashable and comparable.
        object.__setattr__(self, "time_signatures", tuple(str(t) for t in self.time_signatures))
        object.__setattr__(self, "tracks", tuple(self.tracks))
        object.__setattr__(self, "pitch_range", tuple(int(v) for v in self.pitch_range))
        object.__setattr__(self, "velocity_range", tuple(int(v) for v in self.velocity_range))
        object.__setattr__(self, "duration_range", tuple(int(v) for v in self.duration_range))
        object.__setattr__(self, "event_counts", {str(k): int(v) for k, v in dict(self.event_counts).items()})
        object.__setattr__(self, "drum_pitches", {int(k): str(v) for k, v in dict(self.drum_pitches).items()})
        object.__setattr__(self, "programs", {str(k): int(v) for k, v in dict(self.programs).items()})
        if self.time_span_ticks <= 0:
            raise ValueError(f"time_span_ticks must be positive, got {self.time_span_ticks}")
        lo, hi = self.duration_range
        if not 0 < lo <= hi:
            raise ValueError(f"duration_range must satisfy 0 < min <= max, got {self.duration_range}")

    @property
    def ticks_per_bar(self) -> int:
        num, den = (int(x) for x in self.time_signatures[0].split("/"))
        return self.ticks_per_quarter * 4 * num // den

    @property
    def span_bars(self) -> float:
        """How many bars of the default time signature the tick span really covers."""
        return self.time_span_ticks / self.ticks_per_bar

    @property
    def allows_choice_of_meter(self) -> bool:
        return len(self.time_signatures) > 1

    def rules(self) -> str:
        """The rules paragraph of the prompt, rendered from the limits above."""
        tpq = self.ticks_per_quarter
        p_lo, p_hi = self.pitch_range
        v_lo, v_hi = self.velocity_range
        d_lo, d_hi = self.duration_range
        tracks = ", ".join(self.tracks)
        counts = ", ".join(f"about {n} {name} events" for name, n in self.event_counts.items())
        drums = ", ".join(f"{p} = {n}" for p, n in sorted(self.drum_pitches.items()))
        named = {tpq // 2: "8th note", tpq: "quarter note", tpq * 2: "half note"}
        dur_words = ", ".join(f"{t} = {w}" for t, w in named.items() if d_lo <= t <= d_hi)
        lines = [
            f"- Use exactly these tracks: {tracks}.",
            "- Each track is a list of (pitch, duration, velocity, start_time) tuples.",
            f"- pitch: MIDI note number {p_lo}-{p_hi}.",
            f"- duration in ticks, {d_lo}-{d_hi} ({dur_words}).",
            f"- velocity: {v_lo}-{v_hi}.",
            f"- start_time: {0}-{self.time_span_ticks} ticks ({self.bars} bars at "
            f"{self.tempo_bpm:g} BPM, {tpq} ticks per quarter note).",
            f"- Include {counts}.",
            f"- For the rhythm track use drum pitches {drums}.",
        ]
        example = "{'melody': [(60, 480, 80, 0), ...], 'chords': [...], 'bass': [...], 'rhythm': [...]"
        if self.allows_choice_of_meter:
            lines.append(f"- Choose a time signature among {', '.join(self.time_signatures)} "
                         "and give it as \"time_signature\".")
            example += ", 'time_signature': '4/4'"
        if self.free_programs:
            lines.append("- Choose a General MIDI program (0-127) for melody, chords and bass and give "
                         "them as \"programs\": {\"melody\": 0, ...}.")
            example += ", 'programs': {'melody': 0, 'chords': 0, 'bass': 33}"
        example += "}"
        lines.append(f"- Output ONLY a valid JSON string like {example}, with no other text.")
        return "\n".join(lines)

    def json_schema(self) -> dict:
        """JSON schema of a reply, for `response_format` structured outputs.

        Events are fixed-length integer arrays; strict structured outputs cannot express numeric
        bounds, so the validator still enforces the ranges. A track holds 1 to N events, N the count
        the prompt names: without a bound, schema-constrained decoding lets a small model repeat
        events until max_tokens inside the first track (SmolLM2-135M does; docs/gguf.md), and the
        named counts fit the paper's 1200 tokens (48 events of about 16 tokens).
        """
        event = {
            "type": "array",
            "items": {"type": "integer"},
            "minItems": 4,
            "maxItems": 4,
            "description": "[pitch, duration, velocity, start_time]",
        }
        props: dict = {name: {"type": "array", "items": event, "minItems": 1} for name in self.tracks}
        for name, count in self.event_counts.items():
            if name in props:
                props[name]["maxItems"] = count
        required = list(self.tracks)
        if self.allows_choice_of_meter:
            props["time_signature"] = {"type": "string", "enum": list(self.time_signatures)}
            required.append("time_signature")
        if self.free_programs:
            pitched = [t for t in self.tracks if t != "rhythm"]
            props["programs"] = {
                "type": "object",
                "properties": {t: {"type": "integer"} for t in pitched},
                "required": pitched,
                "additionalProperties": False,
            }
            required.append("programs")
        return {
            "name": f"llmusic_song_{self.name}",
            "strict": True,
            "schema": {
                "type": "object",
                "properties": props,
                "required": required,
                "additionalProperties": False,
            },
        }
