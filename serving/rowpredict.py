"""One-row LightGBM predictions through the C API's "fast single row" entry points.

``Booster.predict`` on one row spends ~0.15–0.3 ms in Python before the trees are walked:
a new predictor object, a deep copy of the parameters, a parameter string that the C side
parses again on every call. A scoring request for one customer needs two such calls (the
probability, then leaf indices or SHAP values for the reasons), more than the trees cost.
``LGBM_BoosterPredictForMatSingleRowFastInit`` parses the configuration once per model and
kind of prediction; each row then costs one C call (~10 µs for a few dozen trees).

Results are the same numbers ``Booster.predict`` gives (tests compare them); anything the
fast path cannot serve (another LightGBM build, more than one row) falls back to it.
"""

from __future__ import annotations

import contextlib
import ctypes
import logging
import threading
from typing import Any, Literal

import numpy as np

log = logging.getLogger(__name__)

Kind = Literal["normal", "leaf", "contrib"]
_TYPES = {"normal": 0, "leaf": 2, "contrib": 3}  # C_API_PREDICT_NORMAL / LEAF_INDEX / CONTRIB
_FLOAT32 = 0  # C_API_DTYPE_FLOAT32


class RowPredictor:
    """Fast one-row predictions of one booster (probability, leaf indices, SHAP values).

    A fast configuration belongs to the thread that made it (LightGBM keeps per-call buffers in
    it), so each thread gets its own; they are freed with the predictor.
    """

    def __init__(self, booster: Any, n_features: int) -> None:
        self.booster = booster
        self.n_features = int(n_features)
        self.num_iteration = booster.best_iteration if booster.best_iteration > 0 else -1
        trees = booster.num_trees()
        if self.num_iteration > 0:
            trees = self.num_iteration * booster.num_model_per_iteration()
        self.sizes = {"normal": 1, "leaf": trees, "contrib": self.n_features + 1}
        self._local = threading.local()
        self._handles: list[ctypes.c_void_p] = []
        self._lock = threading.Lock()
        self.enabled = True
        try:
            from lightgbm.basic import _LIB

            self._lib = _LIB
            self._lib.LGBM_BoosterPredictForMatSingleRowFast  # noqa: B018 (symbol check)
        except (ImportError, AttributeError):  # pragma: no cover - other LightGBM builds
            log.warning("LightGBM has no fast single-row API: one-row predictions use predict()")
            self.enabled = False

    def _config(self, kind: Kind) -> ctypes.c_void_p:
        cfgs: dict[str, ctypes.c_void_p] | None = getattr(self._local, "cfgs", None)
        if cfgs is None:
            cfgs = self._local.cfgs = {}
        handle = cfgs.get(kind)
        if handle is None:
            from lightgbm.basic import _safe_call

            handle = ctypes.c_void_p()
            _safe_call(
                self._lib.LGBM_BoosterPredictForMatSingleRowFastInit(
                    self.booster._handle,
                    ctypes.c_int(_TYPES[kind]),
                    ctypes.c_int(0),
                    ctypes.c_int(self.num_iteration),
                    ctypes.c_int(_FLOAT32),
                    ctypes.c_int32(self.n_features),
                    ctypes.c_char_p(b"num_threads=1"),
                    ctypes.byref(handle),
                )
            )
            with self._lock:
                self._handles.append(handle)
            cfgs[kind] = handle
        return handle

    def predict(self, x: np.ndarray, kind: Kind = "normal") -> np.ndarray:
        """``kind`` for a (1, features) float32 row: a (1,) probability, (1, trees) leaf
        indices, or (1, features + 1) SHAP values with the bias last."""
        if not self.enabled or x.shape != (1, self.n_features):
            return self._slow(x, kind)
        from lightgbm.basic import _safe_call

        row = np.ascontiguousarray(x, dtype=np.float32)
        out = np.empty(self.sizes[kind], dtype=np.float64)
        n = ctypes.c_int64(0)
        _safe_call(
            self._lib.LGBM_BoosterPredictForMatSingleRowFast(
                self._config(kind),
                row.ctypes.data_as(ctypes.c_void_p),
                ctypes.byref(n),
                out.ctypes.data_as(ctypes.POINTER(ctypes.c_double)),
            )
        )
        if n.value != out.size:  # pragma: no cover - a model LightGBM sizes differently
            return self._slow(x, kind)
        return out.reshape(1, -1) if kind != "normal" else out

    def _slow(self, x: np.ndarray, kind: Kind) -> np.ndarray:
        return np.asarray(
            self.booster.predict(
                x, num_threads=1, pred_leaf=kind == "leaf", pred_contrib=kind == "contrib"
            )
        )

    def close(self) -> None:
        """Free the fast configurations (also done when the predictor is collected)."""
        with self._lock:
            handles, self._handles = self._handles, []
        for h in handles:
            self._lib.LGBM_FastConfigFree(h)

    def __del__(self) -> None:
        with contextlib.suppress(Exception):  # interpreter shutdown
            self.close()
