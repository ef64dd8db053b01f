"""Analyse a generate run: valid rates, note statistics, genre distinctness, piano rolls and audio.

    python -m llmusic.analyze out_dir=runs/baseline
    python -m llmusic.analyze out_dir=runs/gpt4o 'songs=["Jazz|Swing|0","Metal|Dark|3"]'

Reads the run through llmusic.run_dir.GenerateRun (its manifest, the MIDI files it names, its saved
config), and writes figures, `stats.json` and `summary.md` into `<out_dir>/analysis/`
(`analysis_dir=...`). See docs/analysis.md.
"""

from __future__ import annotations

import json
import logging
from collections import Counter
from pathlib import Path

import hydra
import numpy as np
from hydra.utils import instantiate
from omegaconf import DictConfig, OmegaConf
from tqdm import tqdm

from llmusic.analysis import plots
from llmusic.analysis.audio import pick_renderer, wav_info
from llmusic.analysis.manifest import (
    attempt_counts,
    axis_order,
    failure_reasons,
    file_stem,
    load_manifest,
    repair_counts,
    song_id,
    valid_rates,
)
from llmusic.analysis.stats import FEATURES, DatasetStats
from llmusic.analysis.summary import write_summary
from llmusic.config import user_errors_exit
from llmusic.constraints import ConstraintSet
from llmusic.midi.io import MidiSkip, load_score
from llmusic.midi.pianoroll import song_pianoroll
from llmusic.midi.render import score_to_song
from llmusic.run_dir import GenerateRun, describe_setting, rates_by, valid_statuses
from llmusic.song import Song

log = logging.getLogger(__name__)


def read_song(path: Path) -> Song:
    """A song file of the run; MidiSkip with a stable reason when it cannot be read as one."""
    if not path.is_file():
        raise MidiSkip("missing", str(path))
    score = load_score(path)
    try:
        return score_to_song(score)
    except ValueError as err:  # tracks not named by role: not written by write_midi
        raise MidiSkip("foreign_tracks", f"{path}: {err}") from err


def read_valid_songs(records: list[dict], run: GenerateRun, valid: set[str], constraints: ConstraintSet,
                     progress: bool) -> tuple[DatasetStats, set[str], Counter]:
    """Note statistics of the valid songs, the ids of those whose file read, and skips by reason."""
    stats = DatasetStats(constraints.time_span_ticks)
    readable: set[str] = set()
    skipped: Counter = Counter()
    for r in tqdm(records, desc="songs", unit="song", disable=not progress):
        if r["status"] not in valid:
            continue
        try:
            if not r.get("midi"):
                raise MidiSkip("no_midi_path")
            stats.add(r["genre"], read_song(run.midi_path(r)))
            readable.add(song_id(r))
        except MidiSkip as err:
            skipped[err.reason] += 1
            log.warning("skipped %s: %s", song_id(r), err)
    return stats, readable, skipped


def choose_songs(records: list[dict], wanted: list[str], per_genre: int, genres: list[str],
                 styles: list[str], readable: set[str]) -> list[dict]:
    """The records named in `wanted` ("Genre|Style|index"), else the first `per_genre` readable songs
    of each genre in taxonomy order. An unknown or unusable id is an error, not a silent omission."""
    by_id = {song_id(r): r for r in records}
    if wanted:
        unknown = [w for w in wanted if w not in by_id]
        if unknown:
            raise ValueError(f"songs not in the manifest: {unknown}; ids look like {next(iter(by_id))!r}")
        unusable = [w for w in wanted if w not in readable]
        if unusable:
            raise ValueError(f"songs without a valid, readable MIDI file: {unusable}")
        return [by_id[w] for w in wanted]
    order = {s: i for i, s in enumerate(styles)}
    chosen = []
    for g in genres:
        usable = [r for r in records if r["genre"] == g and song_id(r) in readable]
        chosen += sorted(usable, key=lambda r: (order[r["style"]], r["index"]))[:per_genre]
    return chosen


def analyze(cfg: DictConfig) -> dict:
    """Analyse the run at `cfg.out_dir`; write figures, stats.json and summary.md; return the stats."""
    run = GenerateRun(cfg.out_dir)
    dest = Path(cfg.analysis_dir)
    dest.mkdir(parents=True, exist_ok=True)
    OmegaConf.save(cfg, dest / "config.yaml", resolve=True)

    records = load_manifest(run.dir)
    if not records:
        raise ValueError(f"the manifest of {run.dir} holds no records")
    # A run that saved no config (made by hand, or by an old version) is read with cfg's constraint set.
    constraints: ConstraintSet = run.constraints if "constraints" in run.config else instantiate(cfg.constraints)
    genres = axis_order(records, "genre", list(run.taxonomy.get("genres", [])))
    styles = axis_order(records, "style", list(run.taxonomy.get("styles", [])))
    moods = axis_order(records, "mood", list(run.taxonomy.get("moods", [])))
    valid = set(valid_statuses(cfg.include_repaired))

    stats, readable, skipped = read_valid_songs(records, run, valid, constraints, cfg.progress)

    figures: dict[str, str] = {}

    def figure(name: str, draw, *args) -> None:
        draw(*args, path=dest / f"{name}.png")
        figures[name] = f"{name}.png"

    rates, totals = valid_rates(records, genres, styles, valid)
    figure("valid_rate", plots.valid_rate_heatmap, rates, genres, styles)
    reasons, reason_examples = failure_reasons(records, valid)
    figure("failure_reasons", plots.failure_reasons_bar, reasons)
    analysed = [g for g in genres if stats.n_songs.get(g)]  # genres with a readable valid song
    histograms = {name: stats.histograms(name, analysed) for name in FEATURES}
    if analysed:
        for name, hists in histograms.items():
            figure(f"hist_{name}", plots.feature_histograms, name, hists, analysed)
    distinct = stats.distinctness(analysed)
    if len(distinct.genres) >= 2:
        figure("genre_distinctness", plots.distinctness_figure, distinct)

    chosen = choose_songs(records, list(cfg.songs), cfg.songs_per_genre, genres, styles, readable)
    previews = song_previews(chosen, run, dest, constraints, cfg)

    setting = run.setting
    result = {
        "out_dir": str(run.dir),
        "setting": setting,
        "setting_line": describe_setting(setting) if setting else "not recorded (a run made before runs recorded "
                                                                  "their prompt, parse policy and renderer)",
        "constraints": constraints.name,
        "valid_statuses": sorted(valid),
        "songs_in_manifest": len(records),
        "statuses": dict(Counter(r["status"] for r in records).most_common()),
        "valid_rate": float(np.mean([r["status"] in valid for r in records])),
        "valid_rate_matrix": {
            "genres": genres,
            "styles": styles,
            "rates": [[None if np.isnan(v) else round(float(v), 6) for v in row] for row in rates],
            "totals": totals.tolist(),
        },
        "by_genre": rates_by(records, "genre", genres, valid),
        "by_style": rates_by(records, "style", styles, valid),
        "by_mood": rates_by(records, "mood", moods, valid),
        "failure_reasons": dict(reasons.most_common()),
        "failure_examples": reason_examples,
        "repairs": dict(repair_counts(records).most_common()),
        "attempts": attempt_counts(records),
        "songs_analysed": int(sum(stats.n_songs.values())),
        "skipped_midi": dict(skipped.most_common()),
        "notes": stats.summary(analysed),
        "histograms": {
            name: {
                "edges": FEATURES[name].edges.tolist(),
                "bin_labels": list(FEATURES[name].bin_labels),
                "counts": {role: dict(zip(analysed, h.tolist())) for role, h in hists.items()},
            }
            for name, hists in histograms.items()
        },
        "distinctness": distinct.to_dict(),
        "previews": previews,
        "figures": figures,
    }
    (dest / "stats.json").write_text(json.dumps(result, indent=1))
    write_summary(result, dest / "summary.md")
    log.info("analysis of %d songs written to %s", result["songs_analysed"], dest)
    return result


def song_previews(chosen: list[dict], run: GenerateRun, dest: Path, constraints: ConstraintSet,
                  cfg: DictConfig) -> dict:
    """Piano-roll pictures and WAV previews of the chosen songs; says which renderer made the audio."""
    renderers = [instantiate(r) for r in cfg.audio.renderers.values()] if cfg.audio.enabled else []
    renderer, unavailable = pick_renderer(renderers) if renderers else (None, {})
    if renderer is not None:
        log.info("audio previews: %s", renderer.describe())
        for name, why in unavailable.items():
            log.info("audio renderer %s not used: %s", name, why)
    songs = []
    for r in tqdm(chosen, desc="previews", unit="song", disable=not cfg.progress):
        midi = run.midi_path(r)
        song = read_song(midi)
        stem = file_stem(r)
        # a 32nd-note grid over the span, so every constraint set draws at the same resolution
        steps = -(-constraints.time_span_ticks * 8 // song.ticks_per_quarter)
        roll = song_pianoroll(song, constraints.time_span_ticks, steps=steps)
        picture = Path("pianoroll") / f"{stem}.png"
        plots.pianoroll_figure(roll, song, f"{song_id(r)} ({r['mood']}, {r['status']})",
                               constraints.time_span_ticks / steps, path=dest / picture)
        entry = {"id": song_id(r), "midi": str(midi), "pianoroll": str(picture), "n_notes": song.n_notes}
        if renderer is not None:
            wav = Path("audio") / f"{stem}.wav"
            (dest / wav).parent.mkdir(parents=True, exist_ok=True)
            renderer.render(midi, dest / wav)
            info = wav_info(dest / wav)
            entry.update(wav=str(wav), seconds=round(info.duration_s, 2), sample_rate=info.sample_rate)
        songs.append(entry)
    return {
        "renderer": renderer.name if renderer else None,
        "renderer_description": renderer.describe() if renderer else "audio disabled",
        "renderers_unavailable": unavailable,
        "songs": songs,
    }


@hydra.main(version_base="1.3", config_path="../conf", config_name="analyze")
def main(cfg: DictConfig) -> None:
    with user_errors_exit():
        analyze(cfg)


if __name__ == "__main__":
    main()
