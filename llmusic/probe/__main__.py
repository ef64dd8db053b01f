"""python -m llmusic.probe llm_run=<generate run> [dataset=lmd_topmagd] [label_map=...] [label=genre]

Reads the run through llmusic.run_dir.GenerateRun and the real files named by the data set config
(its labels file and taxonomy; no piano rolls are built), computes every number of
`llmusic.probe.compare` and writes `probe.json`, `report.md`, `distance_heatmap.png`,
`realism_auc.png` and `feature_gaps.png` into `out_dir` (default `<run>/probe/<taxonomy>-<label map>/`).
"""

from __future__ import annotations

import json
import logging
import os
import time
from pathlib import Path

import hydra
from hydra.utils import instantiate
from omegaconf import DictConfig, OmegaConf
from threadpoolctl import threadpool_limits

from llmusic.config import CONF_DIR, REPO_ROOT, resolve_path
from llmusic.data.labels import CLASS_ORDERS
from llmusic.probe import PROBE_FILE, figures, markdown
from llmusic.probe.compare import compare, plain
from llmusic.probe.samples import llm_features, real_features
from llmusic.run_dir import GenerateRun

log = logging.getLogger(__name__)


def probe(cfg: DictConfig) -> dict:
    """Probe cfg.llm_run against the real data; returns the result written to probe.json."""
    start = time.perf_counter()
    run = GenerateRun(resolve_path(cfg.llm_run))
    data = cfg.dataset
    if "taxonomy" not in data or data.taxonomy not in CLASS_ORDERS:
        raise ValueError(f"the probe reads Lakh-style data sets (md5-named files, a labels file, a taxonomy among "
                         f"{sorted(CLASS_ORDERS)}); dataset has taxonomy {data.get('taxonomy')!r}")
    run.check_time_span(data.time_span_ticks, data.ticks_per_quarter)
    cs = run.constraints
    label_map = instantiate(cfg.label_map)
    if label_map.source not in (None, cfg.label) or label_map.target not in (None, data.taxonomy):
        raise ValueError(f"label map {label_map.name!r} maps {label_map.source} labels to {label_map.target}; "
                         f"this probe has label={cfg.label} and taxonomy {data.taxonomy}")
    with threadpool_limits(cfg.threads):
        llm = llm_features(run, cfg.label, cfg.include_repaired, cfg.max_songs_per_group, cfg.seed)
        llm = llm.at_least(cfg.min_llm_songs)
        real = real_features(list(cfg.real_roots), data.labels, data.taxonomy, CLASS_ORDERS[data.taxonomy],
                             cs.time_span_ticks, cs.ticks_per_quarter, cfg.windows_per_song, cfg.max_songs_per_group,
                             cfg.seed, cfg.workers).at_least(cfg.min_real_songs)
        if not llm.groups or not real.groups:
            raise ValueError(f"nothing to compare: {len(llm.groups)} {cfg.label}s with >= {cfg.min_llm_songs} songs "
                             f"(left out: {llm.skipped}), {len(real.groups)} real classes with >= "
                             f"{cfg.min_real_songs} songs (left out: {real.skipped})")
        result = compare(llm, real, {g: label_map(g) for g in llm.groups}, cfg.n_resamples, cfg.realism.folds,
                         cfg.realism.l2, cfg.top_gaps, cfg.seed, cfg.calibration)
    result.update({
        "llm_run": shown(run.dir), "label": cfg.label, "taxonomy": data.taxonomy, "label_map": label_map.name,
        "real_roots": [shown(resolve_path(r)) for r in cfg.real_roots], "labels": shown(resolve_path(data.labels)),
        "constraints": cs.name, "time_span_ticks": cs.time_span_ticks, "ticks_per_quarter": cs.ticks_per_quarter,
        "settings": {k: OmegaConf.to_container(cfg[k]) if OmegaConf.is_config(cfg[k]) else cfg[k]
                     for k in ("windows_per_song", "max_songs_per_group", "min_llm_songs", "min_real_songs",
                               "n_resamples", "seed", "realism", "top_gaps", "include_repaired")},
        "seconds": round(time.perf_counter() - start, 1),
    })
    out = resolve_path(cfg.out_dir)
    write(result, out)
    log.info("probe of %s: retrieval %s, mean realism AUC %s, in %.0f s; report: %s", run.dir,
             result["retrieval"]["accuracy"], result["realism"]["mean_auc"], result["seconds"], out / "report.md")
    return result


def shown(path: Path) -> str:
    """A path as the report shows it: from the repository root when inside it or beside it (the
    configs' `../shared/data`), so results move with a checkout; else absolute."""
    path = path.resolve()
    return os.path.relpath(path, REPO_ROOT) if path.is_relative_to(REPO_ROOT.parent) else str(path)


def write(result: dict, out: Path) -> None:
    out.mkdir(parents=True, exist_ok=True)
    figures.distance_heatmap(plain(result), out / markdown.FIGURES["distance"])
    figures.realism_bars(plain(result), out / markdown.FIGURES["realism"])
    figures.gap_heatmap(result, out / markdown.FIGURES["gaps"])
    (out / PROBE_FILE).write_text(json.dumps(plain(result), indent=1, allow_nan=False))
    markdown.write(plain(result), out)


@hydra.main(config_path=str(CONF_DIR), config_name="probe", version_base="1.3")
def main(cfg: DictConfig) -> None:
    probe(cfg)


if __name__ == "__main__":
    main()
