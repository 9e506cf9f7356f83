"""Every notebook runs top to bottom on a small synthetic utility, and is stored without outputs.

The notebooks share one workspace (a 300-customer utility with features and Feast, built once
by ``wattwise.app.workspace``), pointed at by the same ``WATTWISE_*`` variables a user would set.
Each cell has the time limit of a whole notebook (120 s); the measured time of each notebook
is printed (``pytest -s``) and reported in the issue.
"""

from __future__ import annotations

import re
import time
from pathlib import Path

import pytest

NOTEBOOKS = Path(__file__).resolve().parents[2] / "notebooks"
LIMIT_S = 120
ALL = sorted(NOTEBOOKS.glob("*.ipynb"))


@pytest.fixture(scope="module")
def notebook_env(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    from wattwise.app.workspace import build_dataset

    root = tmp_path_factory.mktemp("nbws")
    env = {
        "WATTWISE_PATHS__DATA_DIR": str(root / "data"),
        "WATTWISE_PATHS__MLRUNS_DIR": str(root / "mlruns"),
        "WATTWISE_PATHS__REPORTS_DIR": str(root / "reports"),
        "WATTWISE_MLFLOW__TRACKING_URI": f"sqlite:///{root}/mlruns/mlflow.db",
        "WATTWISE_MLFLOW__ARTIFACT_ROOT": str(root / "mlruns" / "artifacts"),
    }
    build_dataset(root / "data" / "synthetic", customers=300, days=396)
    return env


def _readme_notebooks() -> list[str]:
    """The notebook files linked from the README's Notebooks section (``notebooks/x.ipynb``)."""
    text = (NOTEBOOKS.parent / "README.md").read_text()
    section = re.search(r"^## Notebooks\n(.*?)(?=^## |\Z)", text, re.M | re.S)
    assert section, "README.md has no '## Notebooks' section"
    return re.findall(r"\]\(notebooks/([^)]+\.ipynb)\)", section.group(1))


def test_the_readme_lists_every_notebook_and_only_those() -> None:
    listed = _readme_notebooks()
    assert listed, "the README's Notebooks section links no notebook"
    assert len(listed) == len(set(listed)), f"listed twice: {listed}"
    files = {p.name for p in ALL}  # each is checked stored without outputs below
    unlisted, absent = sorted(files - set(listed)), sorted(set(listed) - files)
    assert not unlisted and not absent, (
        f"in notebooks/ but not in the README's Notebooks: {unlisted}; listed but absent: {absent}"
    )
    # the journeys are numbered in order: 01_, 02_, ...
    assert [p.stem[:3] for p in ALL] == [f"{i:02d}_" for i in range(1, len(ALL) + 1)]


@pytest.mark.parametrize("path", ALL, ids=[p.stem for p in ALL])
def test_notebook_is_stored_without_outputs(path: Path) -> None:
    import nbformat

    nb = nbformat.read(path, as_version=4)
    code = [c for c in nb.cells if c.cell_type == "code"]
    assert code, f"{path.name} has no code"
    dirty = [i for i, c in enumerate(code) if c.outputs or c.execution_count is not None]
    assert not dirty, f"{path.name}: code cells {dirty} keep outputs (strip them before commit)"


@pytest.mark.parametrize("path", ALL, ids=[p.stem for p in ALL])
def test_notebook_runs(
    path: Path, notebook_env: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    import nbformat
    from nbclient import NotebookClient

    for k, v in notebook_env.items():
        monkeypatch.setenv(k, v)
    nb = nbformat.read(path, as_version=4)
    client = NotebookClient(
        nb, timeout=LIMIT_S, kernel_name="python3", resources={"metadata": {"path": str(NOTEBOOKS)}}
    )
    t0 = time.perf_counter()
    client.execute()
    took = time.perf_counter() - t0
    print(f"{path.name}: {took:.1f} s")
    images = sum(
        1
        for c in nb.cells
        if c.cell_type == "code"
        for o in c.get("outputs", [])
        if "image/png" in o.get("data", {})
    )
    assert images >= 2, f"{path.name} drew {images} plots"
    errors = [o for c in nb.cells for o in c.get("outputs", []) if o.get("output_type") == "error"]
    assert not errors
