"""Imports flow one way: features → training → serving (wattwise core imports none of them)."""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
FORBIDDEN = {
    "features": {"training", "serving"},
    "training": {"serving"},
}
CORE = ["settings.py", "paths.py", "log.py", "config.py", "errors.py", "progress.py"]


def imported_packages(path: Path) -> set[str]:
    """Top-level packages a file imports, anywhere in it (lazy imports in functions too)."""
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    out: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            out |= {a.name.split(".")[0] for a in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            out.add(node.module.split(".")[0])
    return out


def violations(root: Path) -> list[str]:
    bad: list[str] = []
    for pkg, forbidden in FORBIDDEN.items():
        for f in sorted((root / pkg).rglob("*.py")):
            for hit in imported_packages(f) & forbidden:
                bad.append(f"{f.relative_to(root)} imports {hit}")
    for name in CORE:
        f = root / "wattwise" / name
        if f.exists():
            for hit in imported_packages(f) & {"features", "training", "serving"}:
                bad.append(f"{f.relative_to(root)} imports {hit}")
    return bad


def test_repository_respects_import_direction() -> None:
    assert violations(ROOT) == []


def test_checker_catches_a_wrong_import(tmp_path: Path) -> None:
    for pkg in ("features", "training", "serving", "wattwise"):
        (tmp_path / pkg).mkdir()
    (tmp_path / "features" / "ok.py").write_text("import numpy\nfrom features import schema\n")
    (tmp_path / "features" / "bad.py").write_text("def f():\n    from serving.cli import x\n")
    (tmp_path / "training" / "bad.py").write_text("import serving.service\n")
    found = violations(tmp_path)
    assert found == ["features/bad.py imports serving", "training/bad.py imports serving"]
