"""Scoring DR models against the synthetic truth (true effects of called customers)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from features.dr.oracle import true_event_effects
from training.metrics import true_qini


def with_true_effects(dataset_dir: Path, rows: pd.DataFrame) -> pd.DataFrame:
    """``rows`` (event_id, customer_id, ...) with the true reduction (kW) of each row."""
    t = true_event_effects(dataset_dir)[["event_id", "customer_id", "true_reduction_kw"]]
    return rows.merge(t, on=["event_id", "customer_id"], how="left")


def qini_against_truth(score: np.ndarray, effect: np.ndarray, seed: int = 0) -> dict[str, float]:
    """Qini area (gain over random) of ranking by ``score``, of the oracle ranking, of a random
    ranking, and the model's share of the oracle area."""
    ok = np.isfinite(score) & np.isfinite(effect)
    s, e = score[ok], effect[ok]
    model = true_qini(s, e)
    oracle = true_qini(e, e)
    rnd = true_qini(np.random.default_rng(seed).random(len(e)), e)
    return {
        "qini_model": model,
        "qini_oracle": oracle,
        "qini_random": rnd,
        "share_of_oracle": model / oracle if oracle > 0 else float("nan"),
        "rows": float(ok.sum()),
    }
