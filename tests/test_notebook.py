"""The researcher notebook runs top to bottom on a tiny real run, so it never goes stale."""

from __future__ import annotations

import nbformat
from nbclient import NotebookClient

from llmusic.config import REPO_ROOT
from tests.helpers import run_generate

NOTEBOOK = REPO_ROOT / "notebooks" / "explore_generated_dataset.ipynb"


def outputs_of(cell) -> str:
    return "".join(o.get("text", "") + str(o.get("data", {}).get("text/plain", "")) for o in cell.outputs)


def test_notebook_runs_on_a_tiny_run(tmp_path, monkeypatch):
    run = tmp_path / "run"
    run_generate(run, "llm=baseline", "n_per_combo=2", "taxonomy.genres=[Pop,Jazz]", "taxonomy.styles=[Ballad,Swing]")
    monkeypatch.setenv("LLMUSIC_RUN_DIR", str(run))  # the kernel inherits the environment
    monkeypatch.setenv("PYTHONPATH", str(REPO_ROOT))  # and imports this checkout's llmusic, as pytest does

    nb = nbformat.read(NOTEBOOK, as_version=4)
    NotebookClient(nb, kernel_name="python3", timeout=120,
                   resources={"metadata": {"path": str(NOTEBOOK.parent)}}).execute()

    code = [c for c in nb.cells if c.cell_type == "code"]
    assert all(not any(o.output_type == "error" for o in c.outputs) for c in code)
    text = "\n".join(outputs_of(c) for c in code)
    assert f"analysing {run}" in text  # it used the run it was pointed at, not a fresh one
    assert "8 songs in the manifest, 100.0% valid, 8 analysed" in text
    images = sum("image/png" in o.get("data", {}) for c in code for o in c.outputs)
    assert images >= 1 + 1 + 5 + 1 + 2 + 1  # valid rate, failures, 5 histograms, distinctness, 2 rolls, boxplot
    audio = [o for c in code for o in c.outputs if "<audio" in str(o.get("data", {}).get("text/html", ""))]
    assert len(audio) == 2  # one player per genre's preview song
    assert (run / "analysis" / "summary.md").is_file()
