"""Model adapters: how each registered model is loaded and scored, kept apart from HTTP.

Each model kind is a small adapter: ``load(uri)`` returns a scorer, and the scorer turns
feature columns (from the online store or the request) into predictions. Binary models
(churn) and propensity bypass pandas for small batches: the float32 matrix LightGBM gets is
built straight from the feature lists, exactly as ``FramePreprocessor.transform`` would build
it (a test checks the two paths agree), because per-column pandas work dominated the latency
of a single-customer request. Every other kind (disaggregation, demand response, a new one)
is served through its MLflow pyfunc interface. A kind names its adapter (``Kind.adapter``).
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Literal

import numpy as np
import pandas as pd

from serving.rowpredict import RowPredictor
from training.explain import PathContributions, ReasonMethod, shap_contributions, top_features
from wattwise.errors import WattwiseError

log = logging.getLogger(__name__)
NAN = float("nan")


class RequestError(WattwiseError):
    """A request the caller must fix: an HTTP status, the field at fault and why."""

    def __init__(self, status: int, field: str, message: str) -> None:
        super().__init__(f"{field}: {message}" if field else message)
        self.status = status
        self.field = field
        self.message = message


class FastMatrix:
    """The float32 matrix ``FramePreprocessor.transform`` would give, from plain lists.

    Numeric columns: numbers as float32, anything non-numeric missing. Categorical columns:
    the index of ``str(value)`` in the training categories (LightGBM's category code),
    unknown or missing values missing.
    """

    def __init__(self, columns: Sequence[str], categories: Mapping[str, Sequence[str]]) -> None:
        self.columns = list(columns)
        self.cat_maps = {
            c: {str(v): float(i) for i, v in enumerate(cats)} for c, cats in categories.items()
        }
        self.kinds = {c: self.kind(c) for c in self.columns}

    def kind(self, name: str) -> str:
        return "categorical" if name in self.cat_maps else "numeric"

    def matrix(self, cols: Mapping[str, Sequence[Any]], n: int) -> np.ndarray:
        if n == 1:
            return self._row(cols)
        X = np.full((n, len(self.columns)), np.nan, dtype=np.float32)
        for j, c in enumerate(self.columns):
            vals = cols.get(c)
            if vals is None:
                continue
            m = self.cat_maps.get(c)
            if m is not None:
                X[:, j] = [NAN if v is None else m.get(str(v), NAN) for v in vals]
            else:
                X[:, j] = numeric(vals)
        return X

    def _row(self, cols: Mapping[str, Sequence[Any]]) -> np.ndarray:
        """One customer's row (a single request): plain floats, no per-column arrays."""
        out: list[float] = []
        for c in self.columns:
            vals = cols.get(c)
            v = None if vals is None else vals[0]
            m = self.cat_maps.get(c)
            if v is None:
                out.append(NAN)
            elif m is not None:
                out.append(m.get(str(v), NAN))
            elif isinstance(v, bool | int | float):
                out.append(float(v))
            else:
                out.append(float(numeric([v])[0]))
        return np.array([out], dtype=np.float32)

    def frame_matrix(self, frame: pd.DataFrame) -> np.ndarray:
        """The same matrix from a DataFrame, column-vectorised (batch scoring)."""
        n = len(frame)
        X = np.empty((n, len(self.columns)), dtype=np.float32, order="F")  # column writes
        for j, c in enumerate(self.columns):
            if c not in frame.columns:
                X[:, j] = np.nan
                continue
            s = frame[c]
            cats = self.cat_maps.get(c)
            if cats is not None:
                X[:, j] = category_codes(s, cats)
            elif s.dtype.kind in "fiub":
                X[:, j] = s.to_numpy(dtype=np.float64, na_value=np.nan)
            else:
                X[:, j] = pd.to_numeric(s, errors="coerce").to_numpy(
                    dtype=np.float64, na_value=np.nan
                )
        return np.ascontiguousarray(X)


def category_codes(s: pd.Series, cats: Mapping[str, float]) -> np.ndarray:
    """Code of ``str(value)`` per row (NaN: missing or unseen), as FramePreprocessor maps it.

    Factorised first, so ``str`` and the lookup run once per distinct value, not per row.
    """
    inv, uniq = pd.factorize(s, use_na_sentinel=True)
    table = np.array([cats.get(str(u), np.nan) for u in uniq] + [np.nan], dtype=np.float64)
    return table[inv]  # -1 (missing) picks the trailing NaN


def numeric(vals: Sequence[Any]) -> np.ndarray:
    """Values as float64 (None, non-numeric text: NaN), like ``pd.to_numeric(errors=coerce)``."""
    try:
        return np.array(vals, dtype=np.float64)
    except (TypeError, ValueError):
        return pd.to_numeric(pd.Series(list(vals), dtype=object), errors="coerce").to_numpy(
            dtype=np.float64
        )


class ChurnScorer:
    """A registered binary model (``training.pyfunc.BinaryModel``): probability, decision, reasons."""

    def __init__(
        self,
        bundle: Any,
        threshold: float | None = None,
        reason_method: ReasonMethod | Literal["auto"] = "auto",
        shap_budget_ms: float = 0.5,
    ) -> None:
        self.bundle = bundle
        self.features: list[str] = list(bundle.pre.columns_)
        self.fast = FastMatrix(self.features, bundle.pre.categories_)
        self.threshold = float(bundle.threshold if threshold is None else threshold)
        self.reasons = int(bundle.reasons)
        # tabulated once per loaded version (~1 s for 500 trees), so a request pays µs
        self.paths = PathContributions.from_booster(bundle.booster) if self.reasons else None
        self.row = RowPredictor(bundle.booster, len(self.features))  # one-customer requests
        self.shap_ms = self._shap_cost_ms() if self.reasons else 0.0
        if reason_method == "auto":  # TreeSHAP (the model's own reasons) when it is cheap
            reason_method = "shap" if self.shap_ms <= shap_budget_ms else "path"
        self.reason_method: ReasonMethod = reason_method

    def _shap_cost_ms(self) -> float:
        """Median CPU time of one customer's TreeSHAP on this model (a few calls at load)."""
        import time

        x = np.zeros((1, len(self.features)), dtype=np.float32)
        times = []
        for _ in range(7):
            t0 = time.process_time()
            shap_contributions(self.bundle.booster, x)
            times.append(time.process_time() - t0)
        return float(np.median(times) * 1e3)

    def reason_names(
        self, X: np.ndarray, threads: int, method: ReasonMethod | None
    ) -> list[list[str]]:
        """Top reasons per row by ``method`` (default: this scorer's)."""
        method = method or self.reason_method
        booster = self.bundle.booster
        one = len(X) == 1
        if method == "path" and self.paths is not None:
            leaves = self.row.predict(X, "leaf") if one else None
            contrib = self.paths.contributions(booster, X, threads, leaves=leaves)
        elif one:
            contrib = self.row.predict(X, "contrib")[:, :-1]
        else:
            contrib = shap_contributions(booster, X, threads)
        return top_features(contrib, self.reasons, self.features)

    def score(
        self,
        cols: Mapping[str, Sequence[Any]],
        n: int,
        threads: int = 1,
        reasons: bool = True,
        method: ReasonMethod | None = None,
    ) -> dict[str, Any]:
        """``probability`` and ``decision`` arrays and ``reasons`` (n lists of feature names).

        ``threads``: LightGBM threads; 1 for small batches (OpenMP start-up costs milliseconds
        on a busy machine, more than scoring one customer).
        """
        booster = self.bundle.booster
        X = self.fast.matrix(cols, n)
        raw = self.row.predict(X) if n == 1 else booster.predict(X, num_threads=threads)
        prob = np.asarray(self.bundle.cal.predict(raw), dtype=float)
        out: dict[str, Any] = {"probability": prob, "decision": prob >= self.threshold}
        out["reasons"] = (
            self.reason_names(X, threads, method)
            if reasons and self.reasons
            else [[] for _ in range(n)]
        )
        return out

    def score_frame(
        self,
        frame: pd.DataFrame,
        reasons: bool = False,
        threads: int = 2,
        method: ReasonMethod | None = None,
    ) -> pd.DataFrame:
        """Batch scoring of a feature frame: probability, decision (at this scorer's
        threshold) and, on request, reason_1..k (by ``method``, default the scorer's)."""
        X = self.fast.frame_matrix(frame)
        raw = self.bundle.booster.predict(X, num_threads=threads)
        prob = np.asarray(self.bundle.cal.predict(raw), dtype=float)
        out = pd.DataFrame(
            {"probability": prob, "decision": prob >= self.threshold}, index=frame.index
        )
        if reasons and self.reasons:
            names = self.reason_names(X, threads, method)
            for i in range(self.reasons):
                out[f"reason_{i + 1}"] = [r[i] if i < len(r) else "" for r in names]
        return out


@dataclass(frozen=True)
class _MatrixCols:
    """An already-built model matrix (batch path)."""

    X: np.ndarray


class PropensityScorer:
    """``training.propensity.PropensityPyfunc``: per program ``p_no_offer``, ``p_offer``,
    ``uplift`` (their difference: one calibrated model), ``t_learner_uplift`` and whether
    ranking may offer the program (its test gate), as the pyfunc computes them."""

    def __init__(self, pyfunc: Any) -> None:
        self.pyfunc = pyfunc
        self.features: list[str] = list(pyfunc.pre.columns_)
        self.fast = FastMatrix(self.features, pyfunc.pre.categories_)
        self.programs: list[str] = list(pyfunc.programs)
        self.offers: dict[str, tuple[bool, str | None]] = dict(pyfunc.offers)

    def score(
        self,
        cols: Mapping[str, Sequence[Any]] | _MatrixCols,
        n: int,
        programs: Sequence[str],
        threads: int = 1,
    ) -> dict[str, dict[str, np.ndarray]]:
        """``{program: {p_no_offer, p_offer, uplift, t_learner_uplift}}`` arrays of length
        ``n`` (``t_learner_uplift`` NaN where its arms were not fitted)."""
        X = cols.X if isinstance(cols, _MatrixCols) else self.fast.matrix(cols, n)
        out: dict[str, dict[str, np.ndarray]] = {}
        for p in programs:
            m = self.pyfunc.programs[p]
            both = np.vstack([X, X])  # one call for both offer states
            flag = np.repeat(np.array([0.0, 1.0], dtype=np.float32), n)[:, None]
            raw = m.response.predict(np.hstack([both, flag]), num_threads=threads)
            prob = np.asarray(m.calibrator.predict(raw), dtype=float)
            res = {"p_no_offer": prob[:n], "p_offer": prob[n:]}
            res["uplift"] = res["p_offer"] - res["p_no_offer"]
            if m.treated is not None and m.control is not None:
                t1 = m.treated.predict(X, num_threads=threads)
                res["t_learner_uplift"] = np.asarray(
                    t1 - m.control.predict(X, num_threads=threads), float
                )
            else:
                res["t_learner_uplift"] = np.full(n, np.nan)
            out[p] = res
        return out

    def score_frame(self, frame: pd.DataFrame, threads: int = 2) -> pd.DataFrame:
        """Batch scoring: ``<program>_p_no_offer``, ``_p_offer``, ``_uplift``,
        ``_t_learner_uplift`` and ``_offer`` columns."""
        from training.propensity import OUTPUTS

        n = len(frame)
        res = self.score(self._cols(frame), n, self.programs, threads=threads) if n else {}
        out = pd.DataFrame(index=frame.index)
        for p in self.programs:
            for k in OUTPUTS:
                out[f"{p}_{k}"] = res[p][k] if n else np.zeros(0)
            out[f"{p}_offer"] = self.offers[p][0]
        return out

    def _cols(self, frame: pd.DataFrame) -> _MatrixCols:
        return _MatrixCols(self.fast.frame_matrix(frame))


class PyfuncScorer:
    """Any MLflow pyfunc, called through its declared input columns."""

    def __init__(self, model: Any) -> None:
        self.model = model
        schema = model.metadata.get_input_schema()
        self.inputs: list[str] | None = schema.input_names() if schema is not None else None

    def predict(self, frame: pd.DataFrame) -> Any:
        from training.registry import model_inputs

        if self.inputs is not None:
            missing = [c for c in self.inputs if c not in frame.columns]
            if missing:
                raise RequestError(
                    422, "", f"the model needs columns the request cannot supply: {missing}"
                )
        frame = model_inputs(self.model, frame).copy()
        for c in frame.columns:  # MLflow's schema check takes naive datetimes only: UTC, naive
            if isinstance(frame[c].dtype, pd.DatetimeTZDtype):
                frame[c] = frame[c].dt.tz_convert("UTC").dt.tz_localize(None)
        try:
            return self.model.predict(frame)
        except Exception as exc:
            from mlflow.exceptions import MlflowException

            if isinstance(exc, MlflowException) and "schema" in str(exc):
                first = str(exc).split("Error:", 1)[-1].strip().splitlines()[0]
                raise RequestError(422, "", f"input does not fit the model: {first}") from exc
            raise


def _load_pyfunc(uri: str) -> Any:
    import mlflow

    if uri.startswith("bento:"):
        import bentoml

        return bentoml.mlflow.load_model(uri[len("bento:") :])
    return mlflow.pyfunc.load_model(uri)


def load_churn(
    uri: str,
    threshold: float | None = None,
    reason_method: ReasonMethod | Literal["auto"] = "auto",
    shap_budget_ms: float = 0.5,
) -> ChurnScorer:
    model = _load_pyfunc(uri)
    inner = model.unwrap_python_model()
    if not hasattr(inner, "bundle"):
        raise WattwiseError(f"{uri} is not a wattwise binary model (no bundle)")
    return ChurnScorer(inner.bundle, threshold, reason_method, shap_budget_ms)


def load_propensity(uri: str) -> PropensityScorer:
    inner = _load_pyfunc(uri).unwrap_python_model()
    if not hasattr(inner, "programs"):
        raise WattwiseError(f"{uri} is not a wattwise propensity model (no programs)")
    return PropensityScorer(inner)


def load_pyfunc(uri: str) -> PyfuncScorer:
    return PyfuncScorer(_load_pyfunc(uri))


def loader(adapter: str, cfg: Any) -> Callable[[str], Any]:
    """How a kind's registered versions are loaded (``Kind.adapter``), with the serving
    config's options of that adapter."""
    if adapter == "binary":
        return lambda uri: load_churn(
            uri, cfg.churn_threshold, cfg.reason_method, cfg.reason_shap_budget_ms
        )
    if adapter == "propensity":
        return load_propensity
    if adapter == "pyfunc":
        return load_pyfunc
    raise WattwiseError(f"unknown serving adapter {adapter!r} (binary, propensity or pyfunc)")


@dataclass(frozen=True)
class Loaded:
    """A loaded model version; replaced whole on reload, never mutated."""

    kind: str
    registered_name: str
    version: str
    scorer: Any
    loaded_at: datetime


@dataclass
class ModelSlot:
    """Holds the current :class:`Loaded` of one kind; a request reads ``current`` once and
    keeps that object, so a swap (one reference assignment) never disturbs it."""

    kind: str
    registered_name: str
    alias: str
    required: bool
    loader: Callable[[str], Any]
    current: Loaded | None = None
    error: str | None = None
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def status(self) -> dict[str, Any]:
        cur = self.current
        return {
            "registered_name": self.registered_name,
            "alias": self.alias,
            "loaded": cur is not None,
            "version": cur.version if cur else None,
            "loaded_at": cur.loaded_at.isoformat(timespec="seconds") if cur else None,
            "required": self.required,
            "error": self.error,
        }

    def refresh(
        self, resolve: Callable[[str, str], tuple[str, str] | None]
    ) -> tuple[str | None, str | None]:
        """Load the version the alias points at if it is not the one loaded.

        Returns (old version, new version); on failure the old model stays and ``error`` says why.
        """
        with self._lock:  # one load at a time per slot (interval thread and /admin/reload)
            old = self.current.version if self.current else None
            try:
                found = resolve(self.registered_name, self.alias)
            except Exception as exc:  # registry unreachable: keep serving what we have
                self.error = f"registry lookup failed: {exc}"
                log.warning("%s: %s", self.kind, self.error)
                return old, old
            if found is None:
                if self.current is None:
                    self.error = (
                        f"no @{self.alias} version of registered model {self.registered_name!r}"
                    )
                return old, old
            version, uri = found
            if version == old:
                return old, old
            try:
                scorer = self.loader(uri)
            except Exception as exc:
                self.error = f"loading {self.registered_name} v{version} failed: {exc}"
                log.exception("%s: loading v%s failed; keeping v%s", self.kind, version, old)
                return old, old
            self.current = Loaded(
                self.kind, self.registered_name, version, scorer, datetime.now(UTC)
            )
            self.error = None
            log.info("%s: %s v%s loaded (was v%s)", self.kind, self.registered_name, version, old)
            return old, version

    def get(self) -> Loaded:
        """The loaded model, or a 503 that says why it is not there."""
        cur = self.current
        if cur is None:
            why = self.error or "not loaded yet"
            raise RequestError(
                503,
                "",
                f"model {self.kind} ({self.registered_name}@{self.alias}) is not loaded: {why}",
            )
        return cur
