"""summary.md: the analysis as one page of markdown, figures linked, written from stats.json alone."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from llmusic.parse.reasons import INFO_KEYS
from llmusic.song import TRACKS

FEATURE_UNITS = {
    "pitch": "mean MIDI pitch",
    "duration": "mean duration (quarter notes)",
    "velocity": "mean velocity",
    "polyphony": "mean notes sounding per onset",
    "density": "mean notes starting per bar",
}


def _table(header: list[str], rows: list[list]) -> list[str]:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(str(c) for c in row) + " |" for row in rows]
    return lines + [""]


def _rate_rows(rates: dict) -> list[list]:
    return [[k, v["songs"], v["valid"], f"{v['valid_rate']:.1%}"] for k, v in rates.items()]


def _mean(cell: dict) -> str:
    return f"{cell['mean']:.2f}" if cell.get("n") else "-"


def write_summary(result: dict, path: Path) -> str:
    """Render `result` (the stats.json dict of `llmusic.analyze.analyze`) to markdown at `path`."""
    figs = result["figures"]
    n = result["songs_in_manifest"]
    statuses = ", ".join(f"{k} {v}" for k, v in result["statuses"].items())
    lines = [
        f"# Analysis of `{result['out_dir']}`",
        "",
        f"{n} songs in the manifest ({statuses}); valid = status in {result['valid_statuses']}: "
        f"**{result['valid_rate']:.1%}**. Constraint set `{result['constraints']}`. "
        f"Note statistics over the {result['songs_analysed']} valid songs whose MIDI file reads.",
        "",
        f"Generated with: {result['setting_line']}.",
        "",
        "Numbers behind every figure: `stats.json`.",
        "",
        "## Valid rate",
        "",
        f"![valid rate per genre x style]({figs['valid_rate']})",
        "",
        *_table(["genre", "songs", "valid", "rate"], _rate_rows(result["by_genre"])),
        *_table(["mood", "songs", "valid", "rate"], _rate_rows(result["by_mood"])),
        "## Failure reasons",
        "",
        f"![failure reasons]({figs['failure_reasons']})",
        "",
    ]
    failed = sum(result["failure_reasons"].values())
    examples = result["failure_examples"]
    lines += _table(
        ["reason", "songs", "share of failures", "first example"],
        [[f"`{k}`", v, f"{v / failed:.1%}", f"`{examples[k][:80]}`".replace("|", "\\|")]
         for k, v in result["failure_reasons"].items()],
    ) if failed else ["No song failed.", ""]
    if result["repairs"]:
        lines += ["What the parser did to each song's final reply (songs per key; see llmusic.parse):", ""]
        lines += _table(["key", "songs", "changes the song"],
                        [[f"`{k}`", v, "no" if k in INFO_KEYS else "yes"] for k, v in result["repairs"].items()])
    lines += ["Attempts per song (a failed parse, a cut reply or a failed request costs one):", ""]
    lines += _table(["attempts", "songs"], [[k, v] for k, v in result["attempts"].items()])
    if result["skipped_midi"]:
        lines += ["Valid songs whose MIDI file could not be analysed:", ""]
        lines += _table(["reason", "songs"], [[f"`{k}`", v] for k, v in result["skipped_midi"].items()])

    notes = result["notes"]
    lines += ["## Note statistics per genre and track role", ""]
    if not notes:
        lines += ["No valid song could be read: nothing to describe.", ""]
    for feature, unit in FEATURE_UNITS.items():
        name = f"hist_{feature}"
        if name in figs:
            lines += [f"### {feature}", "", f"![{feature} histograms]({figs[name]})", "", f"{unit}:", ""]
            lines += _table(["genre", "songs", *TRACKS],
                            [[g, notes[g]["songs"], *(_mean(notes[g][r][feature]) for r in TRACKS)]
                             for g in notes])

    dist = result["distinctness"]
    lines += ["## How distinct are the genres?", ""]
    if "genre_distinctness" in figs:
        d = np.asarray(dist["distances"])
        g = dist["genres"]
        off = ~np.eye(len(g), dtype=bool)
        near = np.unravel_index(np.where(off, d, np.inf).argmin(), d.shape)
        far = np.unravel_index(np.where(off, d, -np.inf).argmax(), d.shape)
        lines += [
            f"![genre distinctness]({figs['genre_distinctness']})",
            "",
            "Each song's pitch-class histogram (pitched tracks, note counts) is compared with each "
            "genre's mean histogram by Jensen-Shannon distance (base 2, 0 = identical, 1 = disjoint).",
            "",
            f"- silhouette (centroid form): **{dist['silhouette']:.3f}** "
            "(1: every song on its genre's mean; 0: genres overlap; < 0: songs nearer another genre)",
            f"- mean distance between genre means / mean distance of a song to its genre's mean: "
            f"**{dist['between_within_ratio']:.2f}** (above 1: genres differ more than songs within one)",
            f"- closest genres: {g[near[0]]} / {g[near[1]]} ({d[near]:.3f}); "
            f"farthest: {g[far[0]]} / {g[far[1]]} ({d[far]:.3f})",
            "",
        ]
    else:
        lines += ["Fewer than two genres with analysable songs: nothing to compare.", ""]

    previews = result["previews"]
    lines += ["## Songs", "", f"Audio previews rendered with: **{previews['renderer_description']}**."]
    for name, why in previews["renderers_unavailable"].items():
        lines.append(f"(`{name}` not used: {why}.)")
    lines.append("")
    for s in previews["songs"]:
        lines += [f"### {s['id']}", "", f"![piano roll of {s['id']}]({s['pianoroll']})", ""]
        if "wav" in s:
            lines += [f"Listen: [{s['wav']}]({s['wav']}) ({s['seconds']} s, {s['sample_rate']} Hz)", ""]
    text = "\n".join(lines)
    Path(path).write_text(text)
    return text
