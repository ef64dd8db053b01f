"""Configs are configs: fallbacks are real experiment files, the override strings that remain in
YAML compose, no group shares its name with a plain key, and no YAML holds an escaped interpolation."""

from __future__ import annotations

import pytest
from omegaconf import OmegaConf

import llmusic.pipeline as pl
from llmusic.config import CONF_DIR, REPO_ROOT

GROUPS = {p.name for p in CONF_DIR.iterdir() if p.is_dir()}
PRIMARY = sorted(p.stem for p in CONF_DIR.glob("*.yaml"))  # pipeline, train, generate, analyze, describe
STUDENTS = sorted(p.stem for p in (CONF_DIR / "students").glob("*.yaml"))
HPO = sorted(p.stem for p in (CONF_DIR / "hpo").glob("*.yaml"))


def test_no_yaml_holds_an_escaped_interpolation():
    """An override string like `data.test.out_dir=\\${llm_run}` in YAML data is a config in disguise."""
    escaped = [f"{p.relative_to(REPO_ROOT)}:{n}" for p in sorted(CONF_DIR.rglob("*.yaml"))
               for n, line in enumerate(p.read_text().splitlines(), 1) if "\\${" in line]
    assert not escaped


@pytest.mark.parametrize("name", PRIMARY)
def test_no_group_shares_its_name_with_a_plain_key(name, compose):
    cfg = compose(name, hydra=True)
    choices = set(cfg.hydra.runtime.choices)
    clashes = [key for key in cfg if key != "hydra" and key in GROUPS and key not in choices]
    assert not clashes, f"conf/{name}.yaml: plain keys named like a config group: {clashes}"


@pytest.mark.parametrize("overrides", [[f"students={s}"] for s in STUDENTS] + [[f"hpo={h}"] for h in HPO])
def test_every_student_and_its_fallback_compose_with_its_overrides(overrides, compose, tmp_path):
    """What the pipeline composes for each student, real data or not, at compose time."""
    cfg = compose("pipeline", *overrides)
    for name, spec in cfg.students.items():
        if spec is None:
            continue
        for experiment in (spec.experiment, spec.holdout):
            run = pl.train_config(cfg, name, [f"experiment={experiment}", *spec.overrides], tmp_path, tmp_path)
            trained_on = run.data.train.get("out_dir", run.data.train.get("source", {}).get("out_dir"))
            # the cell's songs, but for a supervised reference beside the students (students=melody_reference):
            # trained on real data, it has no generated stand-in, so its holdout is itself
            assert trained_on == str(tmp_path) or spec.holdout == spec.experiment, (name, experiment)
        real = pl.train_config(cfg, name, [f"experiment={spec.experiment}", *spec.overrides], tmp_path, tmp_path)
        assert all(OmegaConf.select(real, key) for key in spec.real_data), spec.real_data


@pytest.mark.parametrize("constraints, bars", [("paper", 2), ("paper_consistent", 4)])
def test_supervised_reference_ranks_the_phrases_the_llm_trained_student_ranks(constraints, bars, compose, tmp_path):
    """students=melody_reference: both melody students test on phrases of the N bars of the cell's
    constraint set, so the table's two rows rank the same candidate lists."""
    cfg = compose("pipeline", "students=melody_reference", f"constraints={constraints}", "prompt=paper_structured")
    tested = {name: pl.train_config(cfg, name, [f"experiment={spec.experiment}", *spec.overrides], tmp_path,
                                    tmp_path).data.test.pairs.source.phrase_bars
              for name, spec in cfg.students.items() if spec is not None}
    assert tested == {"melody": bars, "melody_supervised": bars}


@pytest.mark.parametrize("scale, max_epochs", [("small", 3), ("paper", 20)])
def test_pipeline_scale_is_the_students_scale(scale, max_epochs, compose, tmp_path):
    """`python -m llmusic.pipeline scale=small`: the students' training budget, handed to every student."""
    cfg = compose("pipeline", f"scale={scale}")
    assert cfg.scale.name == scale
    run = pl.train_config(cfg, "genre", ["experiment=genre_llm_to_topmagd"], tmp_path, tmp_path)
    assert run.scale.name == scale and run.trainer.max_epochs == max_epochs
