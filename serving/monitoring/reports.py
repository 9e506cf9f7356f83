"""Where drift reports live and the index page that lists them.

``<reports_dir>/drift/<model>/<UTC time>-v<version>/{report.html, summary.json}``; the index
``<reports_dir>/index.html`` is rebuilt from every ``summary.json`` on disk, so it never
disagrees with the reports (a deleted report disappears from it on the next write).
"""

from __future__ import annotations

import html
import json
import logging
from datetime import UTC, datetime
from pathlib import Path

from serving.monitoring.drift import DriftSummary

log = logging.getLogger(__name__)

SUMMARY = "summary.json"
REPORT = "report.html"


def report_dir(reports_dir: Path, summary: DriftSummary, now: datetime | None = None) -> Path:
    """A new folder for one report (time-stamped, never overwritten)."""
    t = (now or datetime.now(UTC)).strftime("%Y%m%dT%H%M%S%fZ")
    safe = "".join(ch if ch.isalnum() or ch in "-_." else "_" for ch in summary.model_name)
    return reports_dir / "drift" / (safe or "model") / f"{t}-v{summary.model_version}"


def write_summary(folder: Path, summary: DriftSummary) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    p = folder / SUMMARY
    p.write_text(json.dumps(summary.to_dict(), indent=1))
    return p


def read_summaries(reports_dir: Path) -> list[tuple[Path, DriftSummary]]:
    """Every report's folder and summary, newest first (unreadable ones are logged, skipped)."""
    out = []
    for p in sorted((reports_dir / "drift").glob(f"*/*/{SUMMARY}")):
        try:
            out.append((p.parent, DriftSummary.from_dict(json.loads(p.read_text()))))
        except (ValueError, TypeError, KeyError) as exc:
            log.warning("skipping unreadable drift summary %s: %s", p, exc)
    # created_at has whole seconds; two reports of the same second are ordered by their
    # folders, named by the microsecond they were written
    out.sort(key=lambda t: (t[1].created_at, t[0].name), reverse=True)
    return out


_STYLE = """body{font-family:system-ui,sans-serif;margin:2em}table{border-collapse:collapse}
td,th{border:1px solid #ccc;padding:4px 8px;text-align:left;vertical-align:top}
.drift{background:#fdd}.ok{background:#dfd}.insufficient{background:#eee}"""


def write_index(reports_dir: Path) -> Path:
    """Rebuild ``index.html``: one row per report with its status and reasons."""
    rows = []
    for folder, s in read_summaries(reports_dir):
        rel = folder.relative_to(reports_dir)
        link = (
            f'<a href="{html.escape(str(rel / REPORT))}">report</a>'
            if (folder / REPORT).is_file()
            else "(no html)"
        )
        rows.append(
            f'<tr class="{s.status}"><td>{html.escape(s.created_at)}</td>'
            f"<td>{html.escape(s.model_name)}</td><td>{html.escape(s.model_version)}</td>"
            f"<td>{html.escape(str(s.window_start))} .. {html.escape(str(s.window_end))}</td>"
            f"<td>{s.rows_current:,}</td><td><b>{s.status}</b></td>"
            f"<td>{len(s.drifted_features)}/{len(s.features)}</td>"
            f"<td>{'<br>'.join(html.escape(r) for r in s.reasons) or '-'}</td>"
            f'<td>{link} · <a href="{html.escape(str(rel / SUMMARY))}">json</a></td></tr>'
        )
    body = (
        f"<!doctype html><html><head><meta charset='utf-8'><title>wattwise drift reports</title>"
        f"<style>{_STYLE}</style></head><body><h1>Drift reports</h1>"
        f"<p>{len(rows)} report(s); newest first.</p><table><tr><th>created (UTC)</th>"
        "<th>model</th><th>version</th><th>window</th><th>predictions</th><th>status</th>"
        "<th>drifted features</th><th>reasons</th><th>files</th></tr>"
        + "".join(rows)
        + "</table></body></html>"
    )
    reports_dir.mkdir(parents=True, exist_ok=True)
    p = reports_dir / "index.html"
    tmp = p.with_suffix(".html.tmp")
    tmp.write_text(body, encoding="utf-8")
    tmp.replace(p)
    return p
