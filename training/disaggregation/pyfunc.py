"""The MLflow pyfunc a disaggregation model is registered as.

Input: a window of readings in time order, one column (``kwh`` per interval for the
synthetic utility's meters, ``aggregate_W`` for REDD mains); an optional ``window_id`` column
scores several windows in one call. A network trained with time features (the synthetic
default: time of day and of week) also reads each reading's time: a ``ts`` column (UTC; naive
timestamps are taken as UTC), or, for a single window without one, the ``start`` parameter
(the first reading's time; the rest follow at the model's interval). Output: one column per
appliance, same rows and units as the input. The bundle is the estimator folder (JSON and
torch weights, no pickle) and a ``meta.json`` naming the input column, the unit conversion to
watts and the time features.
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
TS = "ts"
START = "start"  # pyfunc parameter: the first reading's time, for input without a ts column


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
        self.time_features: list[str] = list(self.meta.get("time_features") or [])

    @property
    def step_seconds(self) -> float:
        """The model's reading interval (what ``start`` advances by, row to row)."""
        if "interval_minutes" in self.meta:
            return float(self.meta["interval_minutes"]) * 60.0
        return float(self.meta.get("resample_seconds", 60))

    def predict_array(self, x: np.ndarray, times: np.ndarray | None = None) -> np.ndarray:
        """``(n, T)`` readings in the input unit → ``(n, T, A)`` in the same unit; ``times``
        (epoch seconds, ``(n, T)`` or ``(T,)``) for a network with time features."""
        w = np.asarray(x, np.float32) * np.float32(self.to_watts)
        try:
            y = self.est.predict(w, times=times)
        except ValueError as exc:  # a missing or malformed time input is the caller's to fix
            raise DataError(str(exc)) from exc
        return np.asarray(y, np.float32) / np.float32(self.to_watts)

    def _times(self, frame: pd.DataFrame, start: Any) -> np.ndarray | None:
        """Epoch seconds of each row: the ``ts`` column, else ``start`` plus the interval."""
        if not self.time_features:
            return None
        if TS in frame.columns:
            col = frame[TS]
            if not pd.api.types.is_datetime64_any_dtype(col):
                col = pd.to_datetime(col, utc=True, errors="coerce")
            ts = pd.DatetimeIndex(col)  # aware: UTC underneath; naive: taken as UTC
            if ts.hasnans:
                raise DataError(f"{TS!r} has {int(ts.isna().sum())} missing or unreadable times")
            per_s = {"s": 1.0, "ms": 1e3, "us": 1e6, "ns": 1e9}[ts.unit]
            return ts.asi8.astype(np.float64) / per_s
        if start is None or start == "":
            raise DataError(
                f"this model uses the time of day ({', '.join(self.time_features)}): give a "
                f"{TS!r} column (UTC time of each reading) or the {START!r} parameter"
            )
        if WINDOW_ID in frame.columns:
            raise DataError(f"with {WINDOW_ID!r} windows, give a {TS!r} column, not {START!r}")
        try:
            t0 = pd.Timestamp(start)
        except ValueError as exc:
            raise DataError(f"{START!r} is not a timestamp: {start!r}") from exc
        t0 = t0.tz_localize("UTC") if t0.tzinfo is None else t0.tz_convert("UTC")
        return t0.value / 1e9 + np.arange(len(frame), dtype=np.float64) * self.step_seconds

    def predict_frame(self, frame: pd.DataFrame, start: Any = None) -> pd.DataFrame:
        if self.input_column not in frame.columns:
            raise DataError(
                f"input needs a {self.input_column!r} column (have {list(frame.columns)})"
            )
        x = pd.to_numeric(frame[self.input_column], errors="coerce").to_numpy(np.float32)
        if not np.isfinite(x).any():
            raise DataError(f"{self.input_column!r} has no finite reading")
        t = self._times(frame, start)
        out = np.empty((len(frame), len(self.appliances)), np.float32)
        if WINDOW_ID in frame.columns:
            codes, _ = pd.factorize(frame[WINDOW_ID])
            for c in range(codes.max() + 1):
                rows = np.flatnonzero(codes == c)
                tr = None if t is None else t[rows][None, :]
                out[rows] = self.predict_array(x[rows][None, :], tr)[0]
        else:
            out[:] = self.predict_array(x[None, :], None if t is None else t[None, :])[0]
        return pd.DataFrame(out.astype(np.float64), columns=self.appliances, index=frame.index)


class DisaggModel(PythonModel):  # type: ignore[misc,valid-type]
    """pyfunc: a window of readings in → one series per appliance out."""

    def load_context(self, context: Any) -> None:
        self.bundle = DisaggBundle(Path(context.artifacts["bundle"]))

    def predict(
        self, context: Any, model_input: pd.DataFrame, params: dict[str, Any] | None = None
    ) -> pd.DataFrame:
        return self.bundle.predict_frame(model_input, (params or {}).get(START))
