"""Evaluation metrics: discrimination, calibration, lift, value, and uplift (Qini)."""

from __future__ import annotations

import numpy as np
from sklearn.metrics import average_precision_score, brier_score_loss, roc_auc_score


def _safe(fn, y: np.ndarray, p: np.ndarray) -> float:  # type: ignore[no-untyped-def]
    return float(fn(y, p)) if len(np.unique(y)) == 2 else float("nan")


def lift_at(y: np.ndarray, p: np.ndarray, share: float = 0.1) -> float:
    """Positive rate in the top ``share`` of scores over the overall positive rate."""
    n = max(1, int(round(len(y) * share)))
    top = np.argsort(-p, kind="stable")[:n]
    base = y.mean()
    return float(y[top].mean() / base) if base > 0 else float("nan")


def calibration_table(y: np.ndarray, p: np.ndarray, bins: int = 10) -> dict[str, list[float]]:
    """Mean predicted vs observed rate in quantile bins of the score."""
    edges = np.unique(np.quantile(p, np.linspace(0, 1, bins + 1)))
    # constant scores give one edge: one bin
    idx = np.clip(np.searchsorted(edges, p, side="right") - 1, 0, max(len(edges) - 2, 0))
    pred = np.bincount(idx, weights=p) / np.maximum(np.bincount(idx), 1)
    obs = np.bincount(idx, weights=y) / np.maximum(np.bincount(idx), 1)
    return {"predicted": pred.tolist(), "observed": obs.tolist()}


def expected_calibration_error(y: np.ndarray, p: np.ndarray, bins: int = 10) -> float:
    t = calibration_table(y, p, bins)
    return float(np.mean(np.abs(np.array(t["predicted"]) - np.array(t["observed"]))))


def best_threshold(
    y: np.ndarray, p: np.ndarray, contact_cost: float, customer_value: float, save_rate: float
) -> tuple[float, float]:
    """Threshold maximising the realised value of contacting everyone above it.

    Value of contacting a customer = save_rate × customer_value if they would have left,
    minus the contact cost either way. Returns (threshold, value per 1,000 customers).
    """
    order = np.argsort(-p, kind="stable")
    gain = np.cumsum(y[order] * save_rate * customer_value - contact_cost)
    k = int(np.argmax(gain))
    if gain[k] <= 0:
        return 1.0, 0.0
    return float(p[order][k]), float(gain[k] / len(y) * 1000)


def binary_metrics(y: np.ndarray, p: np.ndarray) -> dict[str, float]:
    """The standard report for a probability model."""
    y = np.asarray(y, dtype=float)
    p = np.asarray(p, dtype=float)
    return {
        "roc_auc": _safe(roc_auc_score, y, p),
        "pr_auc": _safe(average_precision_score, y, p),
        "brier": float(brier_score_loss(y, p)) if len(y) else float("nan"),
        "lift_top_decile": lift_at(y, p, 0.1),
        "ece": expected_calibration_error(y, p),
        "positive_rate": float(y.mean()) if len(y) else float("nan"),
        "rows": float(len(y)),
    }


def qini_curve(
    uplift: np.ndarray, treated: np.ndarray, y: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Qini curve from observed outcomes: incremental responders when targeting by ``uplift``."""
    order = np.argsort(-uplift, kind="stable")
    t, yy = treated[order].astype(float), y[order].astype(float)
    nt, nc = np.cumsum(t), np.cumsum(1 - t)
    rt, rc = np.cumsum(yy * t), np.cumsum(yy * (1 - t))
    q = rt - np.divide(rc * nt, nc, out=np.zeros_like(rc), where=nc > 0)
    x = np.arange(1, len(y) + 1) / len(y)
    return np.concatenate([[0], x]), np.concatenate([[0], q])


def qini_coefficient(uplift: np.ndarray, treated: np.ndarray, y: np.ndarray) -> float:
    """Area between the Qini curve and the random-targeting line (observed outcomes)."""
    x, q = qini_curve(uplift, treated, y)
    random = x * q[-1]
    return float(np.trapezoid(q - random, x))


def true_qini(uplift: np.ndarray, true_effect: np.ndarray) -> float:
    """Qini area with known individual effects: cumulative true gain of targeting by ``uplift``
    minus that of random targeting (synthetic utility only)."""
    order = np.argsort(-uplift, kind="stable")
    gain = np.concatenate([[0], np.cumsum(true_effect[order])])
    x = np.linspace(0, 1, len(gain))
    return float(np.trapezoid(gain - x * gain[-1], x) / max(len(uplift), 1))


def per_snapshot_auc(y: np.ndarray, p: np.ndarray, snapshot: np.ndarray) -> float:
    """Mean ROC-AUC within each snapshot (rows weighted equally per snapshot).

    Why: a retention team ranks customers *within* a month; a pooled AUC also rewards
    knowing which month has more churn, which no feature can know for a future month.
    """
    from sklearn.metrics import roc_auc_score

    aucs = []
    for s in np.unique(snapshot):
        rows = snapshot == s
        if len(np.unique(y[rows])) == 2:
            aucs.append(roc_auc_score(y[rows], p[rows]))
    return float(np.mean(aucs)) if aucs else float("nan")


def auc_difference_se(y: np.ndarray, a: np.ndarray, b: np.ndarray) -> float:
    """Standard error of ROC-AUC(a) - ROC-AUC(b) on the same rows (DeLong, paired).

    Why: with a few hundred positives (enrolments, churners) in a test set, a gap of 0.02 is within sampling error;
    the report says so next to each gap.
    """
    from scipy.stats import rankdata

    pos, neg = y == 1, y == 0
    m, n = int(pos.sum()), int(neg.sum())
    if m < 2 or n < 2:
        return float("nan")
    v01, v10 = [], []
    for s in (a, b):
        tz = rankdata(np.concatenate([s[pos], s[neg]]))
        tx, ty = rankdata(s[pos]), rankdata(s[neg])
        v01.append((tz[:m] - tx) / n)
        v10.append(1.0 - (tz[m:] - ty) / m)
    sx, sy = np.cov(np.array(v01)), np.cov(np.array(v10))
    var = (sx[0, 0] + sx[1, 1] - 2 * sx[0, 1]) / m + (sy[0, 0] + sy[1, 1] - 2 * sy[0, 1]) / n
    return float(np.sqrt(max(var, 0.0)))
