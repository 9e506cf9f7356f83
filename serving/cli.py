"""``wattwise serve``, ``score``, ``dr`` and ``drift``: wiring only."""

from __future__ import annotations

from wattwise.typer_app import group

serve_app = group("Serve registered models over HTTP (BentoML).")
score_app = group("Batch scoring from the offline store or a file.")
dr_app = group("Demand response: plan events, settle them, compare baselines.")
drift_app = group("Drift and performance monitoring (Evidently).")
