"""The MLflow pyfunc a disaggregation model is registered as.

Input: a window of readings in time order, one column (``kwh`` per interval for the
synthetic utility's meters, ``aggregate_W`` for REDD mains); an optional ``window_id`` column
scores several windows in one call. Output: one column per appliance, same rows and units
as the input. The bundle is the estimator folder (JSON and torch weights, no pickle) and a
``meta.json`` naming the input column and the unit conversion to watts.
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

from wattwise.errors import DataError

META = "meta.json"
ESTIMATOR = "estimator"
WINDOW_ID = "window_id"


def save_bundle(path: Path, est: Any, meta: dict[str, Any]) -> Path:
    """Write the estimator and its meta (appliances, input column, units) to a folder."""
    from training.disaggregation.estimators import save_estimator

    path.mkdir(parents=True, exist_ok=True)
    save_estimator(est, path / ESTIMATOR)
    (path / META).write_text(json.dumps(meta))
    return path


class DisaggBundle:
    """A loaded bundle: turns a frame of readings into a frame of appliance series."""

    def __init__(self, path: Path, device: str = "auto") -> None:
        from training.disaggregation.estimators import load_estimator

        self.meta = json.loads((path / META).read_text())
        self.est = load_estimator(path / ESTIMATOR, device=device)
        self.appliances: list[str] = list(self.meta["appliances"])
        self.input_column: str = self.meta["input_column"]
        self.to_watts = float(self.meta["to_watts"])  # input unit × to_watts = W

    def predict_array(self, x: np.ndarray) -> np.ndarray:
        """``(n, T)`` readings in the input unit → ``(n, T, A)`` in the same unit."""
        w = np.asarray(x, np.float32) * np.float32(self.to_watts)
        return np.asarray(self.est.predict(w), np.float32) / np.float32(self.to_watts)

    def predict_frame(self, frame: pd.DataFrame) -> pd.DataFrame:
        if self.input_column not in frame.columns:
            raise DataError(
                f"input needs a {self.input_column!r} column (have {list(frame.columns)})"
            )
        x = pd.to_numeric(frame[self.input_column], errors="coerce").to_numpy(np.float32)
        if not np.isfinite(x).any():
            raise DataError(f"{self.input_column!r} has no finite reading")
        out = np.empty((len(frame), len(self.appliances)), np.float32)
        if WINDOW_ID in frame.columns:
            codes, _ = pd.factorize(frame[WINDOW_ID])
            for c in range(codes.max() + 1):
                rows = np.flatnonzero(codes == c)
                out[rows] = self.predict_array(x[rows][None, :])[0]
        else:
            out[:] = self.predict_array(x[None, :])[0]
        return pd.DataFrame(out.astype(np.float64), columns=self.appliances, index=frame.index)


class DisaggModel(PythonModel):  # type: ignore[misc,valid-type]
    """pyfunc: a window of readings in → one series per appliance out."""

    def load_context(self, context: Any) -> None:
        self.bundle = DisaggBundle(Path(context.artifacts["bundle"]))

    def predict(
        self, context: Any, model_input: pd.DataFrame, params: dict[str, Any] | None = None
    ) -> pd.DataFrame:
        return self.bundle.predict_frame(model_input)
