"""CI runs exactly the README's Quick start: its setup lines, then its test command."""

from __future__ import annotations

import re
import tomllib

from llmusic.config import REPO_ROOT


def readme_block(marker: str) -> list[str]:
    """The lines of the first ```bash block after the `<!-- ci:<marker>` line of README.md."""
    text = (REPO_ROOT / "README.md").read_text()
    after = text.split(f"<!-- ci:{marker}", 1)[1]
    return re.search(r"```bash\n(.*?)```", after, re.S).group(1).splitlines()


def ci_block(marker: str) -> list[str]:
    """The lines of .ci/run after its `# --- <marker>:` comment, up to the next such comment."""
    script = (REPO_ROOT / ".ci" / "run").read_text()
    after = script.split(f"# --- {marker}:", 1)[1].split("\n", 1)[1]
    return after.split("# --- ", 1)[0].rstrip("\n").splitlines()


def test_ci_runs_the_readme_blocks_and_nothing_else():
    assert ci_block("setup") == readme_block("setup")
    assert ci_block("test") == readme_block("test")
    script = (REPO_ROOT / ".ci" / "run").read_text()
    # Nothing else installs or tests: every pip and pytest line is one of the README's.
    commands = [line for line in script.splitlines() if re.match(r"\s*(python -m )?(pip|pytest)\b", line)]
    assert commands == [line for line in readme_block("setup") + readme_block("test")
                        if re.match(r"\s*(python -m )?(pip|pytest)\b", line)]


def test_readme_setup_is_a_fresh_venv_and_the_dev_install():
    setup = readme_block("setup")
    assert setup[0].startswith("python3 -m venv .venv")
    assert any(line.startswith('pip install -e ".[dev]"') for line in setup)
    assert readme_block("test") == ["python -m pytest -q"]


def test_dev_extra_pulls_every_extra_the_tests_use():
    project = tomllib.loads((REPO_ROOT / "pyproject.toml").read_text())["project"]
    dev = " ".join(project["optional-dependencies"]["dev"])
    for extra in ("local", "gguf", "joblib", "slurm", "optuna", "tensorboard"):
        assert extra in project["optional-dependencies"]
        assert re.search(rf"llmusic\[[^\]]*\b{extra}\b", dev), extra
