"""Every notebook runs end to end at tiny sizes (TINYCNN_QUICK=1), uses only the public API, and is committed
with the outputs of a full run, pictures included."""
import glob
import os
import re

import nbformat
import pytest
from nbclient import NotebookClient

NOTEBOOKS = sorted(glob.glob(os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))),
                                          "notebooks", "*.ipynb")))
PRIVATE = re.compile(r"(\bimport\s+_\w|\bfrom\s+\S*\b_\w+\s+import|\bimport\s+\S*\._|\w\._[a-z]\w*)")


def names(paths):
    return [os.path.basename(p) for p in paths]


def test_the_learning_path_is_all_there():
    assert len(NOTEBOOKS) == 8, names(NOTEBOOKS)


@pytest.mark.parametrize("path", NOTEBOOKS, ids=names(NOTEBOOKS))
def test_notebook_runs_in_quick_mode(path, monkeypatch):
    monkeypatch.setenv("TINYCNN_QUICK", "1")
    monkeypatch.setenv("MPLBACKEND", "Agg")
    notebook = nbformat.read(path, as_version=4)
    NotebookClient(notebook, timeout=600, kernel_name="python3",
                   resources={"metadata": {"path": os.path.dirname(path)}}).execute()   # raises on any error


@pytest.mark.parametrize("path", NOTEBOOKS, ids=names(NOTEBOOKS))
def test_notebook_is_committed_with_full_run_outputs_and_no_private_helpers(path):
    notebook = nbformat.read(path, as_version=4)
    code = [cell for cell in notebook.cells if cell.cell_type == "code"]
    assert all(cell.execution_count for cell in code), "run the notebook before committing it"
    outputs = [out for cell in code for out in cell.outputs]
    assert not [out for out in outputs if out.output_type == "error"]
    assert any("image/png" in out.get("data", {}) for out in outputs), "expected at least one picture"
    text = "".join(out.get("text", "") for out in outputs)
    assert "QUICK mode" not in text, "committed outputs must come from a full run, not TINYCNN_QUICK=1"
    for cell in code:
        assert not PRIVATE.search(cell.source), f"private name used: {PRIVATE.search(cell.source).group(0)}"
