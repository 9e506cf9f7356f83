"""NILM metrics, as the literature reports them (Zhang et al. 2018; Makonin & Popowich 2015).

Per appliance over the test period: MAE (mean absolute error of power), SAE (relative error
of the total energy, |Σŷ − Σy| / Σy), NDE (normalised disaggregation error,
Σ(ŷ − y)² / Σy²) and on/off F1 with a per-appliance power threshold. The breakdown a
customer sees is scored by energy-breakdown accuracy: ``1 − ½ Σ_a |ŝ_a − s_a|`` over the
shares of the month's kWh (appliances plus "other", so shares sum to one).
"""

from __future__ import annotations

import numpy as np
import pandas as pd


def appliance_metrics(
    y_true: np.ndarray, y_pred: np.ndarray, on_threshold: float
) -> dict[str, float]:
    """MAE, SAE, NDE, F1 (and precision, recall) of one appliance; NaN truth is ignored."""
    t = np.asarray(y_true, np.float64).ravel()
    p = np.asarray(y_pred, np.float64).ravel()
    ok = np.isfinite(t) & np.isfinite(p)
    t, p = t[ok], p[ok]
    if t.size == 0:
        return {k: float("nan") for k in ("mae", "sae", "nde", "f1", "precision", "recall")}
    err = p - t
    tot = t.sum()
    on_t, on_p = t > on_threshold, p > on_threshold
    tp = float(np.sum(on_t & on_p))
    prec = tp / max(float(on_p.sum()), 1.0)
    rec = tp / max(float(on_t.sum()), 1.0)
    return {
        "mae": float(np.abs(err).mean()),
        "sae": float(abs(p.sum() - tot) / tot) if tot > 0 else float("nan"),
        "nde": float((err**2).sum() / (t**2).sum()) if (t**2).sum() > 0 else float("nan"),
        "f1": 2 * prec * rec / (prec + rec) if prec + rec > 0 else 0.0,
        "precision": prec,
        "recall": rec,
    }


def all_metrics(
    y_true: np.ndarray, y_pred: np.ndarray, appliances: list[str], thresholds: dict[str, float]
) -> pd.DataFrame:
    """One row per appliance: mae, sae, nde, f1, precision, recall (arrays ``(..., A)``)."""
    rows = {
        a: appliance_metrics(y_true[..., j], y_pred[..., j], thresholds.get(a, 10.0))
        for j, a in enumerate(appliances)
    }
    return pd.DataFrame(rows).T


def breakdown_accuracy(
    true_kwh: np.ndarray, pred_kwh: np.ndarray, total_kwh: np.ndarray
) -> np.ndarray:
    """Per home-month accuracy of the shares: ``(n, A)`` appliance kWh and ``(n,)`` totals.

    "Other" is the rest of the total (clipped at 0); predicted appliance kWh above the total
    are scaled down so predicted shares also sum to one.
    """
    tot = np.maximum(np.asarray(total_kwh, np.float64), 1e-9)[:, None]
    st = np.clip(true_kwh / tot, 0, None)
    sp = np.clip(pred_kwh / tot, 0, None)
    st = st / np.maximum(st.sum(1, keepdims=True), 1.0)
    sp = sp / np.maximum(sp.sum(1, keepdims=True), 1.0)
    ot, op = 1 - st.sum(1), 1 - sp.sum(1)
    return np.asarray(1 - 0.5 * (np.abs(sp - st).sum(1) + np.abs(op - ot)), np.float64)


def skill(model_mae: dict[str, float], baseline_mae: dict[str, float]) -> float:
    """1 − mean over appliances of MAE / mean-baseline MAE (tuning maximises it)."""
    r = [model_mae[a] / baseline_mae[a] for a in model_mae if baseline_mae.get(a, 0) > 0]
    return float(1 - np.mean(r)) if r else float("nan")
