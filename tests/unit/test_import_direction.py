"""Imports flow one way: core → features → training → serving → app shell.

The shared core is every module of the ``wattwise`` package except the app shell
(``wattwise/app/``): it imports no stage. No stage imports the app shell. (``lint-imports``
checks the same contracts, indirect imports included; this test needs no tool.)
"""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
STAGES = ("features", "training", "serving")
FORBIDDEN = {
    "features": {"training", "serving", "wattwise.app"},
    "training": {"serving", "wattwise.app"},
    "serving": {"wattwise.app"},
}
CORE_FORBIDDEN = {*STAGES, "wattwise.app"}
APP = Path("wattwise") / "app"


def imported_modules(path: Path) -> set[str]:
    """Modules a file imports, anywhere in it (lazy imports in functions too), with every
    parent: ``from wattwise.app.cli import x`` gives ``wattwise``, ``wattwise.app`` and
    ``wattwise.app.cli``."""
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names |= {a.name for a in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module)
            names |= {f"{node.module}.{a.name}" for a in node.names}
    out: set[str] = set()
    for n in names:
        parts = n.split(".")
        out |= {".".join(parts[: i + 1]) for i in range(len(parts))}
    return out


def core_files(root: Path) -> list[Path]:
    """Every module of the shared core: the whole ``wattwise`` package but the app shell."""
    return sorted(
        f for f in (root / "wattwise").rglob("*.py") if APP not in f.relative_to(root).parents
    )


def violations(root: Path) -> list[str]:
    bad: list[str] = []
    for pkg, forbidden in FORBIDDEN.items():
        for f in sorted((root / pkg).rglob("*.py")):
            for hit in sorted(imported_modules(f) & forbidden):
                bad.append(f"{f.relative_to(root)} imports {hit}")
    for f in core_files(root):
        for hit in sorted(imported_modules(f) & CORE_FORBIDDEN):
            bad.append(f"{f.relative_to(root)} imports {hit}")
    return bad


def test_repository_respects_import_direction() -> None:
    assert core_files(ROOT), "no core modules found: the layout changed"
    assert violations(ROOT) == []


def test_checker_catches_a_wrong_import(tmp_path: Path) -> None:
    for pkg in ("features", "training", "serving", "wattwise/app", "wattwise/sub"):
        (tmp_path / pkg).mkdir(parents=True)
    (tmp_path / "features" / "ok.py").write_text("import numpy\nfrom features import schema\n")
    (tmp_path / "features" / "bad.py").write_text("def f():\n    from serving.cli import x\n")
    (tmp_path / "training" / "bad.py").write_text("import serving.service\n")
    (tmp_path / "serving" / "bad.py").write_text("from wattwise.app import demo\n")
    (tmp_path / "serving" / "ok.py").write_text("from wattwise.settings import Settings\n")
    # core files under any name and folder are checked; the app shell may import anything
    (tmp_path / "wattwise" / "renamed_settings.py").write_text("import features.store\n")
    (tmp_path / "wattwise" / "sub" / "deep.py").write_text("from training import x\n")
    (tmp_path / "wattwise" / "upward.py").write_text("from wattwise.app.cli import main\n")
    (tmp_path / "wattwise" / "app" / "cli.py").write_text("import serving\nimport training\n")
    found = violations(tmp_path)
    assert found == [
        "features/bad.py imports serving",
        "training/bad.py imports serving",
        "serving/bad.py imports wattwise.app",
        "wattwise/renamed_settings.py imports features",
        "wattwise/sub/deep.py imports training",
        "wattwise/upward.py imports wattwise.app",
    ]
