"""CI runs exactly the README's Quick start: its setup lines, then its test command."""

from __future__ import annotations

import re
import subprocess
import tomllib

from llmusic.config import REPO_ROOT


def readme_block(marker: str) -> list[str]:
    """The lines of the first ```bash block after the `<!-- ci:<marker>` line of README.md."""
    text = (REPO_ROOT / "README.md").read_text()
    after = text.split(f"<!-- ci:{marker}", 1)[1]
    return re.search(r"```bash\n(.*?)```", after, re.S).group(1).splitlines()


def test_ci_runs_the_readme_blocks_and_nothing_else():
    printed = subprocess.run(["bash", str(REPO_ROOT / ".ci" / "run"), "--print"], capture_output=True, text=True,
                             check=True).stdout.splitlines()
    assert printed == readme_block("setup") + readme_block("test")
    script = (REPO_ROOT / ".ci" / "run").read_text()
    # No install or test command of its own: CI can only run what the README says.
    assert not re.search(r"^\s*(python -m )?pip install", script, re.M)
    assert "pytest" not in re.sub(r"#.*", "", script)


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
