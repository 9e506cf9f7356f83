"""Run every ``benchmarks/bench_*.py`` and write JSON plus a markdown table.

Each benchmark module exposes ``run(quick: bool = False) -> list[dict]``; a row has at least
``benchmark``, ``value`` and ``unit``, and optionally ``goal``, ``baseline`` (the named
anchor's value) and ``notes``. Results go to ``benchmarks/results/`` (git-ignored).

    python -m benchmarks.run [--quick] [--only NAME]
"""

from __future__ import annotations

import argparse
import importlib
import json
import logging
import os
import platform
import sys
import time
from pathlib import Path
from typing import Any

import psutil

HERE = Path(__file__).resolve().parent
log = logging.getLogger("benchmarks")


def machine() -> dict[str, Any]:
    """What the numbers were measured on."""
    return {
        "python": sys.version.split()[0],
        "platform": platform.platform(),
        "processor": platform.processor() or platform.machine(),
        "cores": os.cpu_count(),
        "memory_gb": round(psutil.virtual_memory().total / 2**30, 1),
    }


def ratio(row: dict[str, Any]) -> str:
    goal = row.get("goal")
    if goal in (None, 0):
        return ""
    better = row.get("better", "higher")
    r = row["value"] / goal if better == "higher" else goal / max(row["value"], 1e-12)
    return f"{r:.2f}× goal {'✓' if r >= 1 else '✗'}"


def to_markdown(rows: list[dict[str, Any]], info: dict[str, Any]) -> str:
    lines = [
        "# wattwise benchmarks",
        "",
        f"Machine: {info['cores']} cores, {info['memory_gb']} GB, {info['processor']}, "
        f"Python {info['python']} ({info['platform']})",
        "",
        "| benchmark | value | unit | goal | vs goal | baseline | notes |",
        "|---|---:|---|---:|---|---:|---|",
    ]
    for r in rows:
        lines.append(
            f"| {r['benchmark']} | {r['value']:,.4g} | {r['unit']} | {r.get('goal', '')} | "
            f"{ratio(r)} | {r.get('baseline', '')} | {r.get('notes', '')} |"
        )
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="small sizes, for a smoke run")
    ap.add_argument("--only", help="run only these benchmarks: NAME[,NAME...] (bench_NAME.py)")
    args = ap.parse_args(argv)
    os.environ.setdefault("OMP_WAIT_POLICY", "passive")  # as the CLI runs (wattwise.app.cli.main)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    sys.path.insert(0, str(HERE.parent))
    names = sorted(p.stem for p in HERE.glob("bench_*.py"))
    if args.only:
        wanted = {w.strip() for w in args.only.split(",")}
        names = [n for n in names if n in wanted or n.removeprefix("bench_") in wanted]
    rows: list[dict[str, Any]] = []
    for name in names:
        log.info("running %s", name)
        t0 = time.perf_counter()
        mod = importlib.import_module(f"benchmarks.{name}")
        got = mod.run(quick=args.quick)
        for r in got:
            r.setdefault("module", name)
        rows.extend(got)
        log.info("%s done in %.1fs", name, time.perf_counter() - t0)
    info = machine()
    out = HERE / "results"
    out.mkdir(exist_ok=True)
    stamp = time.strftime("%Y%m%d-%H%M%S")
    payload = {"machine": info, "quick": args.quick, "results": rows}
    (out / f"results-{stamp}.json").write_text(json.dumps(payload, indent=2, default=str))
    (out / "latest.json").write_text(json.dumps(payload, indent=2, default=str))
    md = to_markdown(rows, info)
    (out / "latest.md").write_text(md)
    print(md)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
