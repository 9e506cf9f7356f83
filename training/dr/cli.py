"""``wattwise dr``: wiring only."""

from __future__ import annotations

from wattwise.typer_app import group

dr_app = group("Demand response: plan events, settle them, compare baselines.")
