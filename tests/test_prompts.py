"""prompt=paper is the official code's prompt byte for byte; a verbatim prompt refuses a constraint
set that contradicts its words; the rendered variants follow the constraint set."""

from __future__ import annotations

import hashlib
import itertools
import json
import re

import pytest
from hydra.utils import instantiate

from llmusic.generate import generate
from tests.helpers import compose_entry


def composed(*overrides: str):
    return compose_entry("generate", *overrides)


@pytest.fixture(scope="module")
def official(shared_data):
    return json.loads((shared_data.parent / "reference" / "official_prompt.json").read_text())


@pytest.fixture(scope="module")
def paper():
    cfg = composed("prompt=paper", "constraints=paper", "taxonomy=paper")
    return cfg, instantiate(cfg.prompt), instantiate(cfg.constraints)


def official_user(official: dict, genre: str, style: str, mood: str) -> str:
    # The official code fills `{prompt}` with f"{genre} song in {style} style" and `{mood}`.
    return official["user_template"].replace("{prompt}", f"{genre} song in {style} style").replace("{mood}", mood)


def test_the_shipped_example_is_rendered_byte_for_byte(official, paper):
    _, prompt, constraints = paper
    system, user = prompt.messages(constraints, "Pop", "Baroque", "happy")
    assert system == {"role": "system", "content": official["system"]}
    assert user == {"role": "user", "content": official["example_user_for_Pop_Baroque_happy"]}
    assert len(user["content"]) == 808
    assert "pitch.Melody" in user["content"]  # the official missing space survives
    assert "[(60, 480, 80, 0), ...]" in user["content"]  # so does its Python-tuple example


def test_every_genre_style_mood_of_the_paper_taxonomy_is_the_official_text(official, paper):
    cfg, prompt, constraints = paper
    tax = cfg.taxonomy
    combos = list(itertools.product(tax.genres, tax.styles, tax.moods))
    assert len(combos) == 13 * 25 * 5
    for genre, style, mood in combos:
        system, user = prompt.messages(constraints, genre, style, mood)
        assert system["content"] == official["system"]
        assert user["content"] == official_user(official, genre, style, mood), (genre, style, mood)


def test_the_limits_the_official_words_state_are_the_paper_constraint_set(paper):
    """`states` is checked against the text (each value is written there) and against
    constraints=paper (the validator's and the piano roll's source of truth)."""
    _, prompt, constraints = paper
    text, s = prompt.user, prompt.states
    lo, hi = s["duration_range"]
    stated_in_words = [
        f"an {s['bars']}-bar", f"start_time (0-{s['time_span_ticks']} ticks for {s['bars']} bars at {s['tempo_bpm']} BPM)",
        f"pitch ({s['pitch_range'][0]}-{s['pitch_range'][1]})",
        f"velocity ({s['velocity_range'][0]}-{s['velocity_range'][1]})",
        f"duration ({lo}=8th, 480=quarter, {hi}=half)",
        "Include exactly these tracks: " + ", ".join(f"'{t}'" for t in s["tracks"]) + ".",
        *(f"{track.capitalize()}: ~{n} events" for track, n in s["event_counts"].items()),
        "drum pitches (" + ", ".join(f"{p}={name}" for p, name in s["drum_pitches"].items()) + ")",
    ]
    for words in stated_in_words:
        assert words in text, words
    assert s["time_signatures"] == ["4/4"] and "4/4" not in text  # the words name no meter: MIDI's default
    assert s["free_programs"] is False and "program" not in text
    prompt.check(constraints)  # constraints=paper agrees with every stated value


@pytest.mark.parametrize("constraints,named", [
    ("relaxed", ["bars", "time_span_ticks", "duration_range", "time_signatures", "free_programs", "event_counts"]),
    ("paper_consistent", ["time_span_ticks", "event_counts"]),
])
def test_a_constraint_set_that_contradicts_the_words_is_refused_before_anything_is_written(
        tmp_path, constraints, named):
    out_dir = tmp_path / "run"
    cfg = composed("prompt=paper", f"constraints={constraints}", "n_per_combo=1", "taxonomy.genres=[Pop]",
                   "taxonomy.styles=[Waltz]", f"out_dir={out_dir}", "progress=false")
    with pytest.raises(ValueError, match=rf"prompt=paper states its limits .* constraints={constraints}") as err:
        generate(cfg)
    mentioned = set(re.findall(r"^  (\w+): the prompt says", str(err.value), re.M))
    assert mentioned == set(named)
    assert "constraints=paper" in str(err.value) and "prompt=paper_structured" in str(err.value)
    assert not out_dir.exists()


@pytest.mark.parametrize("prompt", ["paper_structured", "genre_style", "genre_only"])
@pytest.mark.parametrize("constraints", ["paper", "paper_consistent", "relaxed"])
def test_rendered_prompts_follow_any_constraint_set(prompt, constraints):
    cfg = composed(f"prompt={prompt}", f"constraints={constraints}")
    template, limits = instantiate(cfg.prompt), instantiate(cfg.constraints)
    template.check(limits)  # a rendered prompt never contradicts its constraint set
    _, user = template.messages(limits, "Jazz", "Swing", "calm")
    assert user["content"].endswith(limits.rules())
    assert f"0-{limits.time_span_ticks} ticks" in user["content"]
    assert ("calm" in user["content"]) == (prompt == "paper_structured")
    assert ("Swing" in user["content"]) == (prompt != "genre_only")


def test_unknown_stated_limit_is_a_config_error():
    from llmusic.prompts import PromptTemplate

    with pytest.raises(ValueError, match="names no ConstraintSet field"):
        PromptTemplate("x", "s", "u", states={"tempo": 120})


def test_the_official_template_hash_is_the_reference_texts(official, paper):
    """OFFICIAL_TEMPLATE_SHA256 (what a run's summary compares with) is the reference text's hash,
    computed here from official_prompt.json, and prompt=paper renders to it."""
    from llmusic.prompts import OFFICIAL_TEMPLATE_SHA256

    user = official["user_template"].replace("{prompt}", "{genre} song in {style} style")
    messages = [{"role": "system", "content": official["system"]}, {"role": "user", "content": user}]
    digest = hashlib.sha256(json.dumps(messages, ensure_ascii=False, separators=(",", ":")).encode()).hexdigest()
    assert OFFICIAL_TEMPLATE_SHA256 == digest[:16]
    _, prompt, constraints = paper
    assert prompt.template_sha256(constraints) == OFFICIAL_TEMPLATE_SHA256
    assert composed("prompt=paper").prompt_sha256 == OFFICIAL_TEMPLATE_SHA256  # what config.yaml saves


@pytest.mark.parametrize("prompt", ["paper_structured", "genre_style", "genre_only"])
def test_every_other_prompt_has_its_own_hash_under_each_constraint_set(prompt):
    hashes = {composed(f"prompt={prompt}", f"constraints={c}").prompt_sha256 for c in ("paper", "relaxed")}
    assert len(hashes) == 2 and composed("prompt=paper").prompt_sha256 not in hashes
