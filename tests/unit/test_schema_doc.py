from __future__ import annotations

from pathlib import Path

from features.schema import TABLES, render_markdown

DOC = Path(__file__).resolve().parents[2] / "docs" / "schema.md"


def test_schema_doc_is_current() -> None:
    """docs/schema.md is rendered from features/schema.py; regenerate it when the schema moves."""
    assert render_markdown().strip() in DOC.read_text(encoding="utf-8")


def test_every_table_has_a_key_or_is_an_event_log() -> None:
    logs = {"contacts", "outages", "surveys", "bad_reads", "scenarios"}
    for name, t in TABLES.items():
        assert t.key or name in logs, name
        assert set(t.key) <= set(t.column_names), name
