"""Docs as tests: every shell block of README.md and docs/*.md runs as written (harness.py).

The fast tests check the harness and the docs' structure; ``test_docs_run_as_written`` runs
every block, in order, in a fresh workspace (``make demo`` first, as the README opens), and
fails on the first command whose exit code or output contradicts its doc.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from tests.docs.harness import (
    REPO,
    all_blocks,
    doc_files,
    exit_code_table,
    handover_block,
    parse_blocks,
    run_all,
)

MAX_MARKS = 5  # blocks or lines that cannot run here: a handful, each with its reason

SAMPLE = """# doc

<!-- docs-test: skip line 2: needs a secret -->
```sh
.venv/bin/wattwise score churn --out s.parquet   # scores [exit 0|4: nothing]
.venv/bin/wattwise serve start \\
    --port 3000            # the service [serves :3000]
# a comment line
export A=1
```

```python
print("not shell")
```

<!-- docs-test: skip: not here -->
```bash
make test
```
"""


def test_the_parser_reads_commands_tags_and_marks(tmp_path: Path) -> None:
    md = tmp_path / "x.md"
    md.write_text(SAMPLE)
    blocks = parse_blocks(md)
    assert len(blocks) == 2  # the python block is not shell
    first, second = blocks
    assert [c.text.split()[0] for c in first.commands] == [".venv/bin/wattwise"] * 2 + ["export"]
    score, serve, export = first.commands
    assert score.expect_exit == (0, 4) and score.serves is None and score.line == 5
    assert serve.serves == 3000 and "--port 3000" in serve.text and serve.skip == "needs a secret"
    assert export.expect_exit == (0,) and export.skip is None
    assert second.skip == "not here" and second.commands[0].text == "make test"


def test_a_mark_naming_a_missing_line_is_refused(tmp_path: Path) -> None:
    md = tmp_path / "x.md"
    md.write_text("<!-- docs-test: skip line 3: no -->\n```sh\necho 1\n```\n")
    with pytest.raises(ValueError, match="skip line 3"):
        parse_blocks(md)


def test_the_demo_handover_becomes_a_block(tmp_path: Path) -> None:
    md = tmp_path / "x.md"
    md.write_text("```sh\nmake demo\n```\n")
    block = parse_blocks(md)[0]
    out = (
        "done\n\nnext, from this folder:\n  make serve   # the service [serves :3000]\n"
        "  .venv/bin/wattwise drift report churn --version 1   # drift [exit 3: drift]\n"
    )
    nxt = handover_block(block, block.commands[0], out)
    assert nxt is not None
    assert [c.serves for c in nxt.commands] == [3000, None]
    assert [c.expect_exit for c in nxt.commands] == [(0,), (3,)]
    assert handover_block(block, block.commands[0], "no handover") is None


def test_every_fenced_block_says_its_language() -> None:
    """An untagged block could hide a shell block from the harness."""
    untagged = []
    for path in doc_files():
        inside = False
        for n, line in enumerate(path.read_text().splitlines(), 1):
            m = re.match(r"^\s*(`{3,}|~{3,})(\S*)", line)
            if not m:
                continue
            if not inside and not m.group(2):
                untagged.append(f"{path.relative_to(REPO)}:{n}")
            inside = not inside
    assert not untagged, f"fenced blocks without a language: {untagged}"


def test_the_marks_are_few_and_say_why() -> None:
    blocks = all_blocks()
    marks = [b.skip for b in blocks if b.skip] + [
        c.skip for b in blocks for c in b.commands if c.skip
    ]
    assert len(marks) <= MAX_MARKS, marks
    assert all(len(m) >= 20 for m in marks), marks
    commands = sum(len(b.commands) for b in blocks)
    assert commands >= 60  # README and docs: every journey


def test_the_readme_exit_codes_are_the_cli_s() -> None:
    assert exit_code_table() in (REPO / "README.md").read_text()


@pytest.mark.slow
@pytest.mark.integration
@pytest.mark.timeout(3000)  # make demo, then every journey: ~20 min on 2 cores
def test_docs_run_as_written(tmp_path: Path) -> None:
    if not (REPO.parent / "shared" / "data").is_dir():
        pytest.skip("../shared/data is absent: the docs import the real data from there")
    outcomes = run_all(tmp_path)
    bad = [o for o in outcomes if o.problem]
    ran = {(o.where, o.command.text) for o in outcomes}
    report = "\n".join(
        f"{o.where} rc={o.rc} {o.seconds:.0f}s {o.command.text[:80]}" for o in outcomes
    )
    assert not bad, (
        "\n".join(f"{o.where}: {o.problem}\n$ {o.command.text}\n{o.output[-3000:]}" for o in bad)
        + "\n\n"
        + report
    )
    runnable = [c for b in all_blocks() if not b.skip for c in b.commands if not c.skip]
    assert len(ran) >= len(runnable), report
