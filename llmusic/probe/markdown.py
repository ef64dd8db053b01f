"""report.md of a probe, written from its result alone (the numbers are those of probe.json)."""

from __future__ import annotations

from pathlib import Path

FIGURES = {"distance": "distance_heatmap.png", "realism": "realism_auc.png", "gaps": "feature_gaps.png"}


def _num(value, fmt: str = ".3f") -> str:
    return "-" if value is None else format(value, fmt)


def _interval(pair, fmt: str = ".3f") -> str:
    return "-" if pair is None or None in pair else f"[{format(pair[0], fmt)}, {format(pair[1], fmt)}]"


def _counts(counts: dict) -> str:
    return ", ".join(f"{k} {v}" for k, v in counts.items()) or "none"


def _table(header: list[str], rows: list[list]) -> list[str]:
    return ["| " + " | ".join(header) + " |", "|" + "---|" * len(header),
            *("| " + " | ".join(str(c) for c in row) + " |" for row in rows), ""]


def render(result: dict) -> str:
    songs, windows, skipped = result["songs"], result["windows"], result["skipped"]
    retrieval, realism, mapped = result["retrieval"], result["realism"], result["distance_to_mapped"]
    calibration = result.get("calibration", {})

    def cal(part: str, key: str):
        return calibration.get(part, {}).get(key)

    settings = result["settings"]
    out = [
        f"# Probe of `{result['llm_run']}` against real {result['taxonomy']} classes",
        "",
        f"Rows: the run's {result['label']}s ({sum(songs['llm'].values())} songs, one window each; left out: "
        f"{_counts(skipped['llm'])}). Columns: real classes of `{result['real_roots']}` labelled by "
        f"`{result['labels']}` ({sum(songs['real'].values())} songs, {windows['real']} windows of the run's span, at "
        f"most {settings['windows_per_song']} per song; left out: {_counts(skipped['real'])}). Label map "
        f"`{result['label_map']}`; span {result['time_span_ticks']} ticks at {result['ticks_per_quarter']} per quarter "
        f"(constraint set `{result['constraints']}`). Intervals: 95% percentile bootstrap over songs "
        f"({settings['n_resamples']} resamples). What each number can and cannot say: docs/probe.md. "
        "Every number: `probe.json`.",
        "",
        "## Headline",
        "",
        *_table(["number", "value", "95% interval", "label-blind reference", "real vs real (halves)"], [
            [f"{result['label']} retrieval ({retrieval['scored_genres']} mapped {result['label']}s)",
             _num(retrieval["accuracy"], ".0%"),
             _interval(retrieval["interval"], ".0%"),
             f"permutation chance {_num(retrieval['chance'], '.0%')}, p = {_num(retrieval['p_value'], '.4f')}",
             _num(cal("retrieval", "accuracy"), ".0%")],
            ["mean realism AUC (LLM vs real)", _num(realism["mean_auc"]), _interval(realism["interval"]),
             "0.5: indistinguishable", _num(cal("realism", "mean_auc"))],
            ["mean energy distance to the mapped class", _num(mapped["mean"]), _interval(mapped["interval"]),
             "0: same distribution", _num(cal("distance_to_mapped", "mean"))],
        ]),
        "The retrieval interval sits below its estimate: every resample adds noise to every distance, and a "
        "nearest class is not a smooth statistic; the hit rate per row says how stable each hit is. A class "
        "marked (not kept) has fewer real songs than `min_real_songs`.",
        "",
        "## Distance matrix",
        "",
        f"![distance heat map]({FIGURES['distance']})",
        "",
    ]
    dist = result["distance"]
    out += _table(["LLM \\ real", *dist["columns"]],
                  [[row, *(_num(v) for v in values)] for row, values in zip(dist["rows"], dist["value"])])
    out += [f"## {result['label'].capitalize()} retrieval", ""]
    out += _table(["LLM " + result["label"], "mapped class", "nearest class", "hit", "hit rate (resamples)",
                   "rank of mapped", "distance to mapped", "95% interval"],
                  [[r["genre"], r["mapped"] if r["scored"] else f"{r['mapped']} (not kept)" if r["mapped"] else "-",
                    r["nearest"], "yes" if r.get("hit") else "no" if r["scored"] else "-",
                    _num(r.get("hit_rate"), ".0%") if r["scored"] else "-", r.get("mapped_rank", "-"),
                    _num(r.get("distance")), _interval(r.get("distance_interval"))] for r in result["rows"]])
    out += ["## Realism", "", f"![realism]({FIGURES['realism']})", ""]
    out += _table(["LLM " + result["label"], "real class", "AUC", "95% interval", "LLM songs", "real songs", "folds"],
                  [[r["genre"], r["mapped"], _num(r["realism"]["auc"]), _interval(r["realism"]["interval"]),
                    r["realism"]["llm_songs"], r["realism"]["real_songs"], r["realism"]["folds"]]
                   for r in result["rows"] if r["scored"]])
    out += ["## Per-feature gaps", "", f"![feature gaps]({FIGURES['gaps']})", "",
            "d = (LLM mean - real mean) / the real data's standard deviation; features ranked by mean |d| over the "
            "mapped rows:", ""]
    out += _table(["feature", "mean abs d"], [[g["feature"], _num(g["mean_abs_d"], ".2f")]
                                              for g in result["gaps"]["overall"][:settings["top_gaps"]]])
    for genre, gaps in result["gaps"]["by_genre"].items():
        out += [f"### LLM {genre}", ""]
        out += [f"- {g['sentence']}; 95% interval of d {_interval(g['interval'], '+.2f')}" for g in gaps]
        out += [""]
    return "\n".join(out)


def write(result: dict, out_dir: Path) -> Path:
    path = out_dir / "report.md"
    path.write_text(render(result))
    return path
