"""Ground truth is for scoring only: feature and training code never read it as input.

Only the generator (features/synth) writes truth, the schema declares it, and modules named
``*oracle*`` or ``*truth_eval*`` (model evaluation against the best achievable answer) may
read it. Any other module that names the truth area or a truth table fails this test.
"""

from __future__ import annotations

import re
from pathlib import Path

from features.schema import TRUTH_TABLES

ROOT = Path(__file__).resolve().parents[2]
ALLOWED_DIRS = {ROOT / "features" / "synth"}
ALLOWED_FILES = {ROOT / "features" / "schema.py"}


def offenders(
    root: Path, packages: tuple[str, ...] = ("features", "training", "serving")
) -> list[str]:
    names = "|".join(re.escape(t.name) for t in TRUTH_TABLES)
    pattern = re.compile(rf"""["'/](truth)["'/]|["']({names})["']""")
    bad = []
    for pkg in packages:
        for f in sorted((root / pkg).rglob("*.py")):
            if any(d in f.parents for d in ALLOWED_DIRS) or f in ALLOWED_FILES:
                continue
            if "oracle" in f.stem or "truth_eval" in f.stem:
                continue
            for i, line in enumerate(f.read_text(encoding="utf-8").splitlines(), 1):
                if pattern.search(line):
                    bad.append(f"{f.relative_to(root)}:{i}: {line.strip()}")
    return bad


def test_no_feature_or_training_code_reads_truth() -> None:
    assert offenders(ROOT) == []


def test_checker_catches_a_truth_read(tmp_path: Path) -> None:
    (tmp_path / "features").mkdir()
    (tmp_path / "training").mkdir()
    (tmp_path / "features" / "leak.py").write_text('p = root / "truth" / "x"\n')
    (tmp_path / "training" / "leak.py").write_text('t = read_table(d, "churn_probability")\n')
    (tmp_path / "training" / "churn_oracle.py").write_text(
        't = read_table(d, "churn_probability")\n'
    )
    found = offenders(tmp_path, ("features", "training"))
    assert len(found) == 2 and all("leak.py" in f for f in found)
