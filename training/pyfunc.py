"""The MLflow pyfunc that every binary wattwise model is registered as.

The bundle holds the LightGBM booster (text), the preprocessor (columns and categories),
the calibrator, the decision threshold and the number of reason codes. Serving loads it with
``mlflow.pyfunc.load_model`` and gets, per row: calibrated probability, decision and the top
reason codes (features pushing the score up).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

try:  # mlflow is a dependency; the import is guarded so this module stays light to inspect
    from mlflow.pyfunc import PythonModel
except ImportError:  # pragma: no cover
    PythonModel = object  # type: ignore[misc,assignment]

BOOSTER = "booster.txt"
META = "meta.json"


def save_bundle(
    path: Path,
    booster: Any,
    preprocessor: Any,
    calibrator: Any,
    threshold: float,
    reasons: int,
    extra: dict[str, Any] | None = None,
) -> Path:
    """Write a model bundle folder (logged as the pyfunc's artifact)."""
    path.mkdir(parents=True, exist_ok=True)
    booster.save_model(str(path / BOOSTER), num_iteration=booster.best_iteration or None)
    meta = {
        "preprocessor": preprocessor.to_dict(),
        "calibrator": calibrator.to_dict(),
        "threshold": threshold,
        "reasons": reasons,
        **(extra or {}),
    }
    (path / META).write_text(json.dumps(meta))
    return path


class Bundle:
    """A loaded bundle: everything needed to score a frame of features."""

    def __init__(self, path: Path) -> None:
        import lightgbm as lgb

        from training.estimators import Calibrator, FramePreprocessor

        meta = json.loads((path / META).read_text())
        self.meta = meta
        self.booster = lgb.Booster(model_file=str(path / BOOSTER))
        self.pre = FramePreprocessor.from_dict(meta["preprocessor"])
        self.cal = Calibrator.from_dict(meta["calibrator"])
        self.threshold = float(meta["threshold"])
        self.reasons = int(meta["reasons"])

    @property
    def features(self) -> list[str]:
        return list(self.pre.columns_)

    def score(self, X: pd.DataFrame, with_reasons: bool = True) -> pd.DataFrame:
        from training.estimators import reason_codes

        Xt = self.pre.transform(X)
        raw = self.booster.predict(Xt)
        prob = self.cal.predict(raw)
        out = pd.DataFrame({"probability": prob, "decision": prob >= self.threshold}, index=X.index)
        if with_reasons and self.reasons:
            names, _ = reason_codes(self.booster, Xt, self.reasons)
            for i in range(names.shape[1]):
                out[f"reason_{i + 1}"] = names[:, i]
        return out


class BinaryModel(PythonModel):  # type: ignore[misc,valid-type]
    """pyfunc: features frame in → probability, decision, reason_1..k out."""

    def load_context(self, context: Any) -> None:
        self.bundle = Bundle(Path(context.artifacts["bundle"]))

    def predict(
        self, context: Any, model_input: pd.DataFrame, params: dict[str, Any] | None = None
    ) -> pd.DataFrame:
        return self.bundle.score(model_input)


def signature_frame(bundle_features: list[str], X: pd.DataFrame) -> pd.DataFrame:
    """A small input example with the model's columns (for the MLflow signature)."""
    return X[bundle_features].head(5).replace({np.nan: None})
