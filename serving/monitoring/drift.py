"""Drift of a window of served traffic against a model version's training reference.

Evidently is kept behind this module: per column it picks Evidently's default test (reference
<= 1,000 rows: Kolmogorov-Smirnov for numbers, chi-squared for categories or few values;
larger: normed Wasserstein distance, Jensen-Shannon), with thresholds from
``configs/monitoring.yaml``. The result is a typed :class:`DriftSummary` (features, the
prediction, segments, missing and out-of-range rates, and the window's decision with its
reasons); :func:`render_html` writes the same tests as an Evidently report.
"""

from __future__ import annotations

import logging
import math
import warnings
from dataclasses import asdict, dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any, Literal

import numpy as np
import pandas as pd

from serving.monitoring.config import MonitoringConfig
from serving.monitoring.usage import UsageCheck
from wattwise.errors import DataError

log = logging.getLogger(__name__)

PREDICTION = "prediction"
USAGE_PREFIX = "usage view: "
# log/reference columns that are bookkeeping, never features
NOT_FEATURES = {
    "request_id",
    "ts",
    "model_name",
    "model_version",
    "customer_key",
    "customer_id",
    "meter_id",
    "event_timestamp",
    "created_timestamp",
    PREDICTION,
}
Kind = Literal["num", "cat"]
Status = Literal["ok", "drift", "insufficient"]


@dataclass(frozen=True)
class ColumnDrift:
    """One column's drift test and data quality in the window."""

    column: str
    kind: Kind
    method: str
    score: float | None
    threshold: float | None
    drifted: bool
    missing_reference: float
    missing_current: float
    out_of_range: float


@dataclass(frozen=True)
class SegmentDrift:
    """Drift inside one segment value (e.g. region = inland)."""

    segment: str
    column: str
    value: str
    rows_current: int
    rows_reference: int
    drifted_features: list[str]
    drifted_share: float
    prediction_score: float | None
    prediction_drifted: bool


@dataclass
class DriftSummary:
    """What a drift report found, as typed data (also the JSON summary's schema)."""

    model_name: str
    model_version: str
    window_start: str | None
    window_end: str | None
    rows_current: int
    rows_tested: int
    rows_reference: int
    status: Status
    reasons: list[str]
    drifted_share: float
    features: list[ColumnDrift]
    prediction: ColumnDrift | None
    segments: list[SegmentDrift] = field(default_factory=list)
    skipped_segments: dict[str, str] = field(default_factory=dict)
    created_at: str = ""
    usage: UsageCheck | None = None  # the usage view (reads vs previous windows), when set up

    @property
    def drift_found(self) -> bool:
        return self.status == "drift"

    @property
    def drifted_features(self) -> list[str]:
        return [c.column for c in self.features if c.drifted]

    def to_dict(self) -> dict[str, Any]:
        return _json_safe(asdict(self))

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> DriftSummary:
        d = dict(d)
        d["features"] = [ColumnDrift(**c) for c in d.get("features", [])]
        d["prediction"] = ColumnDrift(**d["prediction"]) if d.get("prediction") else None
        d["segments"] = [SegmentDrift(**s) for s in d.get("segments", [])]
        d["usage"] = UsageCheck.from_dict(d["usage"]) if d.get("usage") else None
        return cls(**d)

    def with_usage(self, usage: UsageCheck) -> DriftSummary:
        """This summary with the usage view's check added (its reasons alert too)."""
        from dataclasses import replace

        core = [r for r in self.reasons if not r.startswith(USAGE_PREFIX)]
        status: Status
        if usage.reasons:
            status = "drift"
        elif self.status == "insufficient":
            status = "insufficient"
        else:
            status = "drift" if core else "ok"
        reasons = core + [USAGE_PREFIX + r for r in usage.reasons]
        return replace(self, usage=usage, reasons=reasons, status=status)

    def render(self) -> str:
        """A few lines for the terminal."""
        head = (
            f"{self.model_name} v{self.model_version}: {self.status.upper()}  "
            f"{self.rows_current:,} predictions ({self.window_start} .. {self.window_end}), "
            f"reference {self.rows_reference:,} rows; "
            f"{len(self.drifted_features)}/{len(self.features)} features drifted"
        )
        lines = [head]
        if self.prediction is not None and self.prediction.score is not None:
            lines.append(
                f"  prediction: {self.prediction.method} {self.prediction.score:.4g} "
                f"(threshold {self.prediction.threshold:.3g}) "
                f"{'DRIFT' if self.prediction.drifted else 'ok'}"
            )
        u = self.usage
        if u is not None and u.median_ratio is not None:
            lines.append(
                f"  usage view: {u.customers:,} customers, median level x{u.median_ratio:.3f}, "
                f"{u.jump_customers} jumped/stuck, {u.new_high_customers} new high evening loads, "
                f"missing reads {u.missing_current:.2%}"
            )
        lines += [f"  - {r}" for r in self.reasons]
        return "\n".join(lines)


def _json_safe(x: Any) -> Any:
    if isinstance(x, dict):
        return {str(k): _json_safe(v) for k, v in x.items()}
    if isinstance(x, list | tuple):
        return [_json_safe(v) for v in x]
    if isinstance(x, np.generic):
        x = x.item()
    if isinstance(x, float) and not math.isfinite(x):
        return None
    return x


def feature_columns(reference: pd.DataFrame) -> list[str]:
    """The reference's tested columns: everything but bookkeeping and the prediction."""
    return [c for c in reference.columns if c not in NOT_FEATURES]


def _kind(s: pd.Series) -> Kind:
    if pd.api.types.is_bool_dtype(s) or pd.api.types.is_numeric_dtype(s):
        return "num"
    return "cat"


def align(reference: pd.DataFrame, current: pd.DataFrame, columns: list[str]) -> pd.DataFrame:
    """``current`` with ``columns`` typed like the reference (missing columns all null)."""
    out = {}
    for c in columns:
        s = current[c] if c in current.columns else pd.Series(np.nan, index=current.index)
        if _kind(reference[c]) == "num":
            out[c] = pd.to_numeric(s, errors="coerce").astype("float64")
        else:
            out[c] = s.astype(object).where(s.notna(), None)
    if PREDICTION in current.columns:
        out[PREDICTION] = pd.to_numeric(current[PREDICTION], errors="coerce").astype("float64")
    return pd.DataFrame(out, index=current.index)


def _numeric(ref: pd.DataFrame, columns: list[str]) -> pd.DataFrame:
    return pd.DataFrame(
        {c: pd.to_numeric(ref[c], errors="coerce").astype("float64") for c in columns},
        index=ref.index,
    )


def _ref_typed(reference: pd.DataFrame, columns: list[str]) -> pd.DataFrame:
    out = {}
    for c in [*columns, PREDICTION]:
        if c not in reference.columns:
            continue
        s = reference[c]
        out[c] = (
            pd.to_numeric(s, errors="coerce").astype("float64")
            if _kind(s) == "num"
            else s.astype(object).where(s.notna(), None)
        )
    return pd.DataFrame(out, index=reference.index)


def _stat_test(
    ref: pd.Series, cur: pd.Series, kind: Kind, column: str, cfg: MonitoringConfig
) -> tuple[str, float | None, float | None, bool]:
    """Evidently's test for one column: (method, score, threshold, drifted)."""
    from evidently.legacy.calculations.stattests.registry import get_stattest
    from evidently.legacy.core import ColumnType

    d = cfg.drift
    if kind == "num":
        ref = ref.replace([np.inf, -np.inf], np.nan)
        cur = cur.replace([np.inf, -np.inf], np.nan)
    ref, cur = ref.dropna(), cur.dropna()
    if ref.empty or cur.empty:
        return "none (no values)", None, None, False
    ctype = ColumnType.Numerical if kind == "num" else ColumnType.Categorical
    if kind == "cat":
        ref, cur = ref.astype(str), cur.astype(str)
    method = d.method or (d.num_method if kind == "num" else d.cat_method)
    threshold = column_threshold(cfg, column, kind)
    test = get_stattest(ref, cur, ctype, method)
    res = test(ref, cur, ctype, threshold)
    score = float(res.drift_score)
    return (
        test.name,
        (score if math.isfinite(score) else None),
        float(res.actual_threshold),
        bool(res.drifted),
    )


def _quality(
    ref: pd.DataFrame, cur: pd.DataFrame, columns: list[str], cfg: MonitoringConfig
) -> tuple[dict[str, float], dict[str, float], dict[str, float]]:
    """Missing shares (reference, current) and out-of-range shares, vectorised over columns."""
    num = [c for c in columns if _kind(ref[c]) == "num"]
    cat = [c for c in columns if c not in num]
    miss_ref = ref[columns].isna().mean().to_dict() if len(ref) else {}
    miss_cur = cur[columns].isna().mean().to_dict() if len(cur) else dict.fromkeys(columns, 0.0)
    oor: dict[str, float] = {}
    if num and len(cur):
        r = _numeric(ref, num).to_numpy()
        c = _numeric(cur, num).to_numpy()
        qlo, qhi = cfg.quality.range_quantiles
        with np.errstate(all="ignore"), warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)  # all-null columns: no range
            lo = np.nanquantile(r, qlo, axis=0) if len(r) else np.full(len(num), np.nan)
            hi = np.nanquantile(r, qhi, axis=0) if len(r) else np.full(len(num), np.nan)
        finite = np.isfinite(c)
        outside = finite & ((c < lo) | (c > hi))
        outside |= np.isinf(c)
        n_obs = np.maximum((finite | np.isinf(c)).sum(axis=0), 1)
        oor.update(dict(zip(num, (outside.sum(axis=0) / n_obs).tolist(), strict=True)))
    for col in cat:
        seen = set(ref[col].dropna().astype(str))
        v = cur[col].dropna().astype(str)
        oor[col] = float((~v.isin(seen)).mean()) if len(v) else 0.0
    return miss_ref, miss_cur, oor


def _sample(df: pd.DataFrame, n: int, seed: int) -> pd.DataFrame:
    if len(df) <= n:
        return df
    idx = np.sort(np.random.default_rng(seed).choice(len(df), size=n, replace=False))
    return df.iloc[idx]


def _segment_drift(
    ref: pd.DataFrame, cur: pd.DataFrame, columns: list[str], cfg: MonitoringConfig
) -> tuple[list[SegmentDrift], dict[str, str]]:
    out: list[SegmentDrift] = []
    skipped: dict[str, str] = {}
    sc = cfg.segments
    for seg, col in sc.columns.items():
        if col not in ref.columns or col not in cur.columns:
            where = "reference" if col not in ref.columns else "prediction log"
            skipped[seg] = f"column {col!r} is not in the {where}"
            continue
        counts = cur[col].dropna().astype(str).value_counts().head(sc.max_values)
        feats = [c for c in columns if c != col]
        rkey, ckey = ref[col].astype(str), cur[col].astype(str)
        for value, n_cur in counts.items():
            if n_cur < sc.min_rows:
                continue
            r = ref[rkey == value]
            c = _sample(cur[ckey == value], sc.max_rows, cfg.drift.seed)
            if len(r) < min(sc.min_rows, 50):
                continue
            drifted = []
            for f in feats:
                _, _, _, d = _stat_test(r[f], c[f], _kind(ref[f]), f, cfg)
                if d:
                    drifted.append(f)
            pscore, pdrift = None, False
            if PREDICTION in r.columns and PREDICTION in c.columns:
                _, pscore, _, pdrift = _stat_test(
                    r[PREDICTION], c[PREDICTION], "num", PREDICTION, cfg
                )
            out.append(
                SegmentDrift(
                    seg,
                    col,
                    str(value),
                    int(n_cur),
                    len(r),
                    drifted,
                    len(drifted) / max(len(feats), 1),
                    pscore,
                    pdrift,
                )
            )
    return out, skipped


def compute_drift(
    reference: pd.DataFrame,
    current: pd.DataFrame,
    cfg: MonitoringConfig,
    *,
    model_name: str = "",
    model_version: str = "",
    window_start: datetime | None = None,
    window_end: datetime | None = None,
    segments: bool = True,
) -> DriftSummary:
    """Test every reference feature and the prediction on ``current``; decide the window."""
    columns = feature_columns(reference)
    if not columns:
        raise DataError("the reference has no feature columns to compare")
    ref = _ref_typed(reference, columns)
    cur_all = align(ref, current, columns)
    for c in cfg.segments.columns.values():  # segment columns may be context, not features
        if c not in cur_all.columns and c in current.columns and c in reference.columns:
            cur_all[c] = current[c].astype(object)
            ref[c] = reference[c].astype(object)
    now = pd.Timestamp.now(tz="UTC").isoformat(timespec="seconds")
    ws = window_start.isoformat() if window_start else None
    we = window_end.isoformat() if window_end else None
    base = dict(
        model_name=model_name,
        model_version=str(model_version),
        window_start=ws,
        window_end=we,
        rows_current=len(current),
        rows_reference=len(reference),
        created_at=now,
    )
    if len(current) < cfg.drift.min_rows:
        return DriftSummary(
            **base,  # type: ignore[arg-type]
            rows_tested=0,
            status="insufficient",
            reasons=[f"{len(current)} predictions in the window, fewer than {cfg.drift.min_rows}"],
            drifted_share=0.0,
            features=[],
            prediction=None,
        )
    cur = _sample(cur_all, cfg.drift.max_current_rows, cfg.drift.seed)
    miss_ref, miss_cur, oor = _quality(ref, cur_all, columns, cfg)
    feats: list[ColumnDrift] = []
    for c in columns:
        kind = _kind(ref[c])
        method, score, thr, drifted = _stat_test(ref[c], cur[c], kind, c, cfg)
        feats.append(
            ColumnDrift(
                c,
                kind,
                method,
                score,
                thr,
                drifted,
                float(miss_ref.get(c, 0.0)),
                float(miss_cur.get(c, 0.0)),
                float(oor.get(c, 0.0)),
            )
        )
    pred = None
    if PREDICTION in ref.columns and PREDICTION in cur.columns:
        method, score, thr, drifted = _stat_test(
            ref[PREDICTION], cur[PREDICTION], "num", PREDICTION, cfg
        )
        pq = _quality(ref, cur_all, [PREDICTION], cfg)
        pred = ColumnDrift(
            PREDICTION,
            "num",
            method,
            score,
            thr,
            drifted,
            pq[0][PREDICTION],
            pq[1][PREDICTION],
            pq[2][PREDICTION],
        )
    counted = [f for f in feats if f.column not in cfg.drift.ignore_columns]
    share = sum(f.drifted for f in counted) / max(len(counted), 1)
    reasons = decide(feats, pred, share, cfg)
    segs, skipped = _segment_drift(ref, cur, columns, cfg) if segments else ([], {})
    return DriftSummary(
        **base,  # type: ignore[arg-type]
        rows_tested=len(cur),
        status="drift" if reasons else "ok",
        reasons=reasons,
        drifted_share=share,
        features=feats,
        prediction=pred,
        segments=segs,
        skipped_segments=skipped,
    )


# Evidently tests whose score is a p-value (drift when below the threshold); the others are
# distances (drift when at or above it)
P_VALUE_METHODS = {
    "ks",
    "chisquare",
    "z",
    "fisher_exact",
    "g_test",
    "t_test",
    "mannw",
    "anderson",
    "cramer_von_mises",
    "epps_singleton",
    "empirical_mmd",
}


def column_threshold(cfg: MonitoringConfig, column: str, kind: Kind) -> float | None:
    """The configured threshold of a column (None: the method's default)."""
    d = cfg.drift
    t = d.per_column_threshold.get(column, d.threshold)
    if t is None:
        t = d.num_threshold if kind == "num" else d.cat_threshold
    return t


def redecide(s: DriftSummary, cfg: MonitoringConfig) -> DriftSummary:
    """The same scores judged with ``cfg``'s thresholds and rules (no test is re-run)."""
    from dataclasses import replace

    def judge(c: ColumnDrift) -> ColumnDrift:
        t = column_threshold(cfg, c.column, c.kind)
        if c.score is None or t is None:
            return c
        drifted = c.score < t if c.method in P_VALUE_METHODS else c.score >= t
        return replace(c, threshold=t, drifted=bool(drifted))

    feats = [judge(c) for c in s.features]
    pred = judge(s.prediction) if s.prediction is not None else None
    counted = [f for f in feats if f.column not in cfg.drift.ignore_columns]
    share = sum(f.drifted for f in counted) / max(len(counted), 1)
    reasons = decide(feats, pred, share, cfg) if s.status != "insufficient" else s.reasons
    status = s.status if s.status == "insufficient" else ("drift" if reasons else "ok")
    out = replace(
        s, features=feats, prediction=pred, drifted_share=share, reasons=reasons, status=status
    )
    if s.usage is not None:
        from serving.monitoring.usage import decide_usage

        out = out.with_usage(decide_usage(s.usage, cfg.usage))
    return out


def decide(
    feats: list[ColumnDrift], pred: ColumnDrift | None, share: float, cfg: MonitoringConfig
) -> list[str]:
    """The window's reasons for a drift alert (empty: quiet).

    Columns in ``drift.ignore_columns`` are reported but never alert.
    """
    reasons = []
    feats = [f for f in feats if f.column not in cfg.drift.ignore_columns]
    drifted = [f.column for f in feats if f.drifted]
    top = ", ".join(drifted[:5]) + (" ..." if len(drifted) > 5 else "")
    if feats and share >= cfg.drift.drift_share:
        reasons.append(
            f"{len(drifted)}/{len(feats)} features drifted ({share:.0%} >= "
            f"{cfg.drift.drift_share:.0%}): {top}"
        )
    elif cfg.drift.min_drifted_features and len(drifted) >= cfg.drift.min_drifted_features:
        reasons.append(f"{len(drifted)} feature(s) drifted: {top}")
    if pred is not None and pred.drifted and cfg.drift.prediction_alert:
        reasons.append(
            f"prediction drifted ({pred.method} {pred.score:.4g}, threshold {pred.threshold:.3g})"
        )
    q = cfg.quality
    allowed = {
        f.column: q.per_column_missing_increase.get(f.column, q.missing_increase) for f in feats
    }
    miss = [f for f in feats if f.missing_current - f.missing_reference > allowed[f.column]]
    if len(miss) >= q.min_features:
        worst = max(miss, key=lambda f: f.missing_current - f.missing_reference)
        reasons.append(
            f"missing values up in {len(miss)} feature(s), worst {worst.column}: "
            f"{worst.missing_reference:.1%} -> {worst.missing_current:.1%}"
        )
    limit = {f.column: q.per_column_out_of_range.get(f.column, q.out_of_range_max) for f in feats}
    oor = [f for f in feats if f.out_of_range > limit[f.column]]
    if len(oor) >= q.min_features:
        worst = max(oor, key=lambda f: f.out_of_range - limit[f.column])
        reasons.append(
            f"out-of-range values in {len(oor)} feature(s) above their limit, worst "
            f"{worst.column}: {worst.out_of_range:.1%} (limit {limit[worst.column]:.1%})"
        )
    return reasons


def _closeness(c: ColumnDrift) -> float:
    """How close a column's score is to its threshold (1: at it; larger: further past it)."""
    if c.score is None or not c.threshold:
        return 0.0
    if c.method in P_VALUE_METHODS:
        return c.threshold / max(c.score, 1e-300)
    return c.score / c.threshold


CATEGORICAL_ONLY = frozenset({"z", "chisquare", "fisher_exact", "g_test"})


def render_html(
    reference: pd.DataFrame,
    current: pd.DataFrame,
    summary: DriftSummary,
    path: Path,
    cfg: MonitoringConfig,
) -> Path:
    """Write the Evidently HTML report of the same tests (method and threshold per column)."""
    from evidently import DataDefinition, Dataset, Report
    from evidently.metrics import ValueDrift

    cols = [f for f in summary.features if f.score is not None]
    limit = cfg.drift.html_max_columns
    if limit and len(cols) > limit:  # one plotly figure per column: the drifted first
        cols = sorted(cols, key=lambda c: (not c.drifted, -_closeness(c)))[:limit]
    if summary.prediction is not None and summary.prediction.score is not None:
        cols.append(summary.prediction)
    names = [c.column for c in cols]
    ref = _ref_typed(reference, [n for n in names if n != PREDICTION])[names]
    cur = _sample(
        align(ref, current, [n for n in names if n != PREDICTION]),
        cfg.drift.max_current_rows,
        cfg.drift.seed,
    )[names]
    # a numeric column with few distinct values gets a categorical test by Evidently's own
    # default (z, chi-squared); the HTML must declare it categorical to run the same test
    as_cat = {c.column for c in cols if c.kind == "cat" or c.method in CATEGORICAL_ONLY}
    num = [c.column for c in cols if c.column not in as_cat]
    cat = [c.column for c in cols if c.column in as_cat]
    for c in cat:
        ref[c] = ref[c].astype(str).where(ref[c].notna(), None)
        cur[c] = cur[c].astype(str).where(cur[c].notna(), None)
    dd = DataDefinition(numerical_columns=num, categorical_columns=cat)
    metrics = [ValueDrift(column=c.column, method=c.method, threshold=c.threshold) for c in cols]
    snap = Report(metrics).run(
        Dataset.from_pandas(cur, data_definition=dd), Dataset.from_pandas(ref, data_definition=dd)
    )
    path.parent.mkdir(parents=True, exist_ok=True)
    snap.save_html(str(path))
    return path
