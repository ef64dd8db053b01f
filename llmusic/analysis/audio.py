"""MIDI -> WAV previews, to listen to what a model wrote.

Renderers are tried in the configured order and the first available one renders: FluidSynth with
a General MIDI soundfont sounds like instruments; the sine fallback (pretty_midi's additive
synthesis, plus noise bursts for drums, which pretty_midi leaves silent) needs nothing installed and
is enough to hear pitch and rhythm.
"""

from __future__ import annotations

import shutil
import subprocess
import wave
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pretty_midi


class FluidSynthRenderer:
    """The `fluidsynth` command-line synthesizer with a soundfont (Debian: fluidsynth,
    fluid-soundfont-gm)."""

    name = "fluidsynth"

    def __init__(
        self,
        soundfont: str = "/usr/share/sounds/sf2/FluidR3_GM.sf2",
        sample_rate: int = 22050,
        gain: float = 0.6,
        executable: str = "fluidsynth",
        timeout_s: float = 120,
    ):
        self.soundfont = Path(soundfont)
        self.sample_rate = int(sample_rate)
        self.gain = gain
        self.executable = executable
        self.timeout_s = timeout_s

    def unavailable(self) -> str | None:
        """Why this renderer cannot run here, or None when it can."""
        if shutil.which(self.executable) is None:
            return f"no `{self.executable}` on PATH"
        if not self.soundfont.is_file():
            return f"no soundfont at {self.soundfont}"
        return None

    def describe(self) -> str:
        return f"FluidSynth ({shutil.which(self.executable)}) with soundfont {self.soundfont}"

    def command(self, midi_path: Path, wav_path: Path) -> list[str]:
        # -n/-i: no MIDI input driver, no shell; -F: render the file as fast as possible into wav_path.
        # (No -q: FluidSynth 1.x lacks it, and the banner only goes to the captured stdout.)
        return [
            self.executable, "-n", "-i", "-g", str(self.gain), "-r", str(self.sample_rate),
            "-T", "wav", "-F", str(wav_path), str(self.soundfont), str(midi_path),
        ]

    def render(self, midi_path: Path, wav_path: Path) -> None:
        done = subprocess.run(
            self.command(midi_path, wav_path), capture_output=True, text=True, timeout=self.timeout_s
        )
        if done.returncode != 0 or not Path(wav_path).is_file():
            raise RuntimeError(
                f"fluidsynth failed on {midi_path} (exit {done.returncode}): {done.stderr.strip()[-500:]}"
            )


class SineRenderer:
    """Sine tones for pitched notes, decaying noise bursts for drum hits; always available."""

    name = "sine"

    def __init__(self, sample_rate: int = 22050, drum_decay_s: float = 0.05):
        self.sample_rate = int(sample_rate)
        self.drum_decay_s = drum_decay_s

    def unavailable(self) -> str | None:
        return None

    def describe(self) -> str:
        return "pretty_midi sine-wave synthesis (no soundfont; drums as noise bursts)"

    def _pitched(self, pm: pretty_midi.PrettyMIDI) -> np.ndarray:
        # Summed per instrument (PrettyMIDI.synthesize normalises, and only newer pretty_midi can stop it)
        waves = [inst.synthesize(fs=self.sample_rate) for inst in pm.instruments if not inst.is_drum]
        out = np.zeros(max([len(w) for w in waves] + [int(self.sample_rate * (pm.get_end_time() + 1))]))
        for w in waves:
            out[: len(w)] += w
        return out

    def _drums(self, pm: pretty_midi.PrettyMIDI, n_samples: int) -> np.ndarray:
        out = np.zeros(n_samples)
        burst_len = int(5 * self.drum_decay_s * self.sample_rate)
        envelope = np.exp(-np.arange(burst_len) / (self.drum_decay_s * self.sample_rate))
        rng = np.random.default_rng(0)  # the same song always sounds the same
        for inst in pm.instruments:
            if not inst.is_drum:
                continue
            for note in inst.notes:
                at = int(note.start * self.sample_rate)
                burst = rng.uniform(-1, 1, burst_len) * envelope * note.velocity / 127
                seg = out[at:at + burst_len]
                seg += burst[: len(seg)]
        return out

    def render(self, midi_path: Path, wav_path: Path) -> None:
        pm = pretty_midi.PrettyMIDI(str(midi_path))
        pitched = self._pitched(pm)
        audio = pitched + self._drums(pm, len(pitched))  # a hit peaks like one loud sine note
        peak = np.abs(audio).max()
        if peak > 0:
            audio = audio / peak * 0.9
        write_wav(wav_path, audio, self.sample_rate)


def write_wav(path: Path, audio: np.ndarray, sample_rate: int) -> None:
    """Mono float audio in [-1, 1] -> 16-bit PCM WAV."""
    pcm = (np.clip(audio, -1, 1) * 32767).astype("<i2")
    with wave.open(str(path), "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(sample_rate)
        w.writeframes(pcm.tobytes())


@dataclass
class WavInfo:
    sample_rate: int
    channels: int
    duration_s: float
    rms: float  # of the samples, full scale = 1

    @property
    def silent(self) -> bool:
        return self.rms < 1e-4


def wav_info(path: Path) -> WavInfo:
    """Sample rate, length and loudness of a 16-bit PCM WAV, to check a preview is real audio."""
    with wave.open(str(path), "rb") as w:
        if w.getsampwidth() != 2:
            raise ValueError(f"{path}: expected 16-bit PCM, got {8 * w.getsampwidth()}-bit")
        rate, channels, frames = w.getframerate(), w.getnchannels(), w.getnframes()
        samples = np.frombuffer(w.readframes(frames), dtype="<i2").astype(np.float64) / 32768
    rms = float(np.sqrt(np.mean(samples**2))) if samples.size else 0.0
    return WavInfo(rate, channels, frames / rate, rms)


def pick_renderer(renderers: list) -> tuple[object, dict[str, str]]:
    """The first renderer that can run here, and why each one before it could not."""
    skipped = {}
    for r in renderers:
        reason = r.unavailable()
        if reason is None:
            return r, skipped
        skipped[r.name] = reason
    raise RuntimeError(f"no audio renderer available: {skipped}")
