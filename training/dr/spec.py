"""The DR response model as a registry spec: what ``wattwise registry promote dr_response``
needs to gate a regression model.

The response model trains through :func:`training.dr.response.train_response` (its rows are
settled events joined point-in-time with ``dr_response_v1``, not a labels table), which logs
the called test rows as the run's test set. The promotion gate re-scores the candidate and
the champion on that set with :meth:`RegressionSpec.gate_metrics`: RMSE and MAE (lower is
better: gate them with ``higher_is_better: false``), R² and the Spearman rank correlation
(higher is better; the registry treats every guard except Brier/ECE as higher-is-better, so
guards should name these).
"""

from __future__ import annotations

from typing import Any, NoReturn

import numpy as np
import pandas as pd

from wattwise.errors import ConfigError, DataError


def regression_metrics(y: np.ndarray, pred: np.ndarray) -> dict[str, float]:
    """RMSE, MAE, R², Spearman correlation and the bias (mean prediction - mean target)."""
    ok = np.isfinite(y) & np.isfinite(pred)
    y, pred = y[ok], pred[ok]
    if len(y) < 2:
        raise DataError(f"{len(y)} scorable rows: need at least 2 to compare regression models")
    err = pred - y
    var = float(np.var(y))
    rank_y = pd.Series(y).rank().to_numpy()
    rank_p = pd.Series(pred).rank().to_numpy()
    spear = float(np.corrcoef(rank_y, rank_p)[0, 1]) if np.std(rank_p) > 0 else 0.0
    return {
        "rmse": float(np.sqrt(np.mean(err**2))),
        "mae": float(np.mean(np.abs(err))),
        "r2": 1.0 - float(np.mean(err**2)) / var if var > 0 else float("nan"),
        "spearman": spear,
        "bias": float(err.mean()),
        "rows": float(len(y)),
    }


class RegressionSpec:
    """A registered regression model: a pyfunc whose output has ``output`` and a test set
    with ``label``. Only the registry uses it; training is the model's own function."""

    labels = "none"
    label = "reduction_kw"
    output = "expected_kw"
    trainer = "its own training command"

    def _not_here(self) -> NoReturn:
        raise ConfigError(
            f"model spec {type(self).__name__} trains with {self.trainer}, not the generic "
            "training pipeline; the registry uses it only to gate promotions"
        )

    def label_columns(self, df: pd.DataFrame, cfg: Any) -> list[str]:
        self._not_here()

    def split_target(self, df: pd.DataFrame, cfg: Any) -> np.ndarray:
        self._not_here()

    def objective(self, prep: Any, cfg: Any) -> Any:
        self._not_here()

    def fit(self, prep: Any, cfg: Any, params: dict[str, Any]) -> Any:
        self._not_here()

    def evaluate(self, prep: Any, cfg: Any, fitted: Any) -> Any:
        self._not_here()

    def package(self, prep: Any, cfg: Any, fitted: Any, ev: Any, tmp: Any) -> Any:
        self._not_here()

    def gate_metrics(
        self, model: Any, test: pd.DataFrame, tags: dict[str, str]
    ) -> dict[str, float]:
        """Metrics of a loaded pyfunc on a logged test set (lower RMSE/MAE is better)."""
        from training.registry import model_inputs

        if self.label not in test.columns:
            raise DataError(f"the logged test set has no {self.label!r} column")
        out = model.predict(model_inputs(model, test))
        pred = np.asarray(out[self.output] if isinstance(out, pd.DataFrame) else out, float)
        return regression_metrics(test[self.label].to_numpy(float), pred.ravel())

    def render(self, ev: Any) -> list[str]:
        m = ev.logged if hasattr(ev, "logged") else dict(ev)
        return [
            f"  test: RMSE {m['rmse']:.4f}  MAE {m['mae']:.4f}  R² {m['r2']:.3f}  "
            f"Spearman {m['spearman']:.3f}  bias {m['bias']:+.4f}  rows {int(m['rows']):,}"
        ]


class DRResponseSpec(RegressionSpec):
    """``dr_response``: expected kW reduction (pyfunc column ``expected_kw``) against the
    settled reduction ``reduction_kw`` of called customers in the test events."""

    labels = "dr_events"
    label = "reduction_kw"
    output = "expected_kw"
    trainer = "`wattwise dr train` (training/dr/response.py)"
