"""Validation of drift detection with known shifts (the synthetic utility's scenarios).

Protocol (``wattwise drift validate``), per seed (one utility):

* worlds: the same seed without a scenario and with each scenario, all starting at ``T0``
  (default 2024-07-01, summer, so the heat wave matters); each world has over a year of
  history before the first as-of date so 365-day features are complete;
* features at **weekly** as-of dates (``build_features(snapshots=...)``; a uniform weekly grid,
  because the pipeline's "12 periods" features count snapshot periods), 12 burn-in weeks first;
* a churn model (LightGBM) per seed, trained on the scenario-free world's earlier weeks with
  its churn labels; it scores every window, so the prediction is part of the traffic;
* reference: the model's traffic at ``T0 - 3w`` and ``T0 - 2w`` (like the training test split),
  sampled to ``reference_rows``;
* windows: one week of traffic = the features of the customers active at an as-of date and
  the model's predictions on them. Shifted windows: each scenario world at ``T0 + 1w .. +4w``.
  Unshifted windows: the scenario-free world at the same dates, and each scenario world at
  ``T0 - 1w`` and ``T0`` (its data ends before the shift).

* the usage view (``serving/monitoring/usage.py``) of each window: the week's interval reads of
  the window's customers against their previous ``usage.baseline`` weeks.

Detection rate = flagged shifted windows / shifted windows; false-alarm rate = flagged
unshifted windows / unshifted windows; "first window" = flagged at ``T0 + 1w``.
"""

from __future__ import annotations

import json
import logging
import time
from dataclasses import asdict, dataclass, field
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from serving.monitoring.config import MonitoringConfig
from serving.monitoring.drift import P_VALUE_METHODS, DriftSummary, compute_drift, redecide
from serving.monitoring.usage import UsageCheck, period_usage, usage_check
from training.reference import build_reference

log = logging.getLogger(__name__)

SCENARIOS = ("heat_wave", "price_rise", "ev_wave", "broken_meters")
CHURN_GROUPS = ("usage", "load_shape", "peer", "rate", "billing", "engagement")
BURN_IN_WEEKS = 12
REFERENCE_WEEKS = (-3, -2)
PRE_WEEKS = (-1, 0)
POST_WEEKS = (1, 2, 3, 4)


@dataclass
class WindowResult:
    seed: int
    world: str
    week: int
    part: int
    shifted: bool
    calibration: bool
    flagged: bool
    rows: int
    drifted_share: float
    prediction_score: float | None
    reasons: list[str]
    top_features: list[str]
    seconds: float


@dataclass
class ValidationResult:
    """Per-window outcomes and the rates per scenario.

    Thresholds are calibrated on the unshifted windows of the calibration seeds, so false
    alarms are counted on the other seeds only; shifted windows never enter calibration, so
    detection counts every seed.
    """

    windows: list[WindowResult] = field(default_factory=list)
    thresholds: dict[str, float] = field(default_factory=dict)
    out_of_range: dict[str, float] = field(default_factory=dict)
    missing_increase: dict[str, float] = field(default_factory=dict)
    usage_limits: dict[str, float] = field(default_factory=dict)
    config: dict[str, Any] = field(default_factory=dict)

    def rates(self) -> dict[str, dict[str, float]]:
        """Per scenario: detection rate, first-window detection, false alarms (own + baseline)."""
        out: dict[str, dict[str, float]] = {}
        held = [w for w in self.windows if not w.calibration]
        base = [w for w in held if w.world == "none"]
        for s in sorted({w.world for w in self.windows} - {"none"}):
            shifted = [w for w in self.windows if w.world == s and w.shifted]
            quiet = [w for w in held if w.world == s and not w.shifted] + base
            first = [w for w in shifted if w.week == POST_WEEKS[0]]
            out[s] = {
                "shifted_windows": len(shifted),
                "detection_rate": _rate(shifted),
                "first_window_detection": _rate(first),
                "first_windows": len(first),
                "unshifted_windows": len(quiet),
                "false_alarm_rate": _rate(quiet),
            }
        allq = [w for w in held if not w.shifted]
        out["all"] = {
            "shifted_windows": sum(w.shifted for w in self.windows),
            "detection_rate": _rate([w for w in self.windows if w.shifted]),
            "unshifted_windows": len(allq),
            "false_alarm_rate": _rate(allq),
        }
        return out

    def render(self) -> str:
        lines = [
            f"{'scenario':<14} {'shifted':>7} {'detected':>9} {'1st week':>9} "
            f"{'unshifted':>9} {'false alarms':>12}"
        ]
        for s, r in self.rates().items():
            first = f"{r['first_window_detection']:.0%}" if "first_window_detection" in r else "-"
            lines.append(
                f"{s:<14} {int(r['shifted_windows']):>7} {r['detection_rate']:>9.0%} {first:>9} "
                f"{int(r['unshifted_windows']):>9} {r['false_alarm_rate']:>12.1%}"
            )
        return "\n".join(lines)

    def to_dict(self) -> dict[str, Any]:
        return {
            "rates": self.rates(),
            "thresholds": self.thresholds,
            "out_of_range": self.out_of_range,
            "missing_increase": self.missing_increase,
            "usage_limits": self.usage_limits,
            "config": self.config,
            "windows": [asdict(w) for w in self.windows],
        }


def _rate(ws: list[WindowResult]) -> float:
    return float(np.mean([w.flagged for w in ws])) if ws else float("nan")


def week_dates(t0: date) -> dict[int, date]:
    """Weekly as-of dates, week index relative to ``t0`` (burn-in weeks first)."""
    first = REFERENCE_WEEKS[0] - BURN_IN_WEEKS
    return {k: t0 + timedelta(weeks=k) for k in range(first, POST_WEEKS[-1] + 1)}


def build_world(
    out: Path, scenario: str, seed: int, customers: int, t0: date, *, workers: int = 1
) -> Path:
    """Generate one world and its features at the weekly grid (kept when already there)."""
    from features.pipeline import build_features
    from features.synth.config import load_world_config
    from features.synth.generate import generate

    weeks = week_dates(t0)
    start = min(weeks.values()) - timedelta(days=400)
    end = max(weeks.values()) + timedelta(days=1)
    done = out / "features" / "engagement.parquet"
    if done.is_file():
        return out
    cfg = load_world_config(
        customers=customers,
        start=start,
        days=(end - start).days,
        seed=seed,
        scenario=scenario,
        scenario_start=t0 if scenario != "none" else None,
        workers=workers,
        chunk_customers=min(250, customers),
    )
    generate(cfg, out)
    build_features(out, snapshots=sorted(weeks.values()), groups=list(CHURN_GROUPS))
    return out


def traffic(ds: Path) -> pd.DataFrame:
    """All weekly rows of a world: churn features plus segment context (region, dwelling)."""
    df: pd.DataFrame | None = None
    for g in CHURN_GROUPS:
        x = pd.read_parquet(ds / "features" / f"{g}.parquet").drop(columns=["created_timestamp"])
        df = x if df is None else df.merge(x, on=["customer_id", "event_timestamp"], how="outer")
    assert df is not None
    cust = pd.read_parquet(ds / "customers", columns=["customer_id", "region", "dwelling_type"])
    df = df.merge(cust, on="customer_id", how="left")
    df["asof"] = df["event_timestamp"].dt.date
    return df


def feature_names(df: pd.DataFrame) -> list[str]:
    skip = {"customer_id", "event_timestamp", "asof", "region", "dwelling_type"}
    return [c for c in df.columns if c not in skip]


def train_model(ds: Path, df: pd.DataFrame, feats: list[str], t0: date, seed: int) -> Any:
    """LightGBM churn model on the weeks before the reference, with the world's labels."""
    import lightgbm as lgb

    from features.labels import churn
    from training.estimators import FramePreprocessor

    lab = churn(ds)
    lab["event_timestamp"] = pd.to_datetime(lab["event_timestamp"], utc=True).astype(
        df["event_timestamp"].dtype
    )
    cutoff = t0 + timedelta(weeks=REFERENCE_WEEKS[0] - 1)
    rows = df[df["asof"] < cutoff].sort_values("event_timestamp")
    lab = lab.sort_values("event_timestamp")
    train = pd.merge_asof(
        rows,
        lab[["customer_id", "event_timestamp", "churned"]],
        on="event_timestamp",
        by="customer_id",
        direction="nearest",
        tolerance=pd.Timedelta(days=4),
    ).dropna(subset=["churned"])
    pre = FramePreprocessor().fit(train[feats])
    model = lgb.LGBMClassifier(
        n_estimators=150,
        learning_rate=0.05,
        num_leaves=15,
        min_child_samples=50,
        subsample=0.8,
        subsample_freq=1,
        random_state=seed,
        n_jobs=1,
        verbose=-1,
    ).fit(pre.transform(train[feats]), train["churned"].astype(int))
    return lambda frame: np.asarray(model.predict_proba(pre.transform(frame[feats])))[:, 1]


@dataclass
class _Scored:
    seed: int
    world: str
    week: int
    part: int
    rows: int
    summary: DriftSummary
    seconds: float
    usage: UsageCheck | None = None
    customers: list[str] | None = None  # the window's customers (for the usage view)

    @property
    def shifted(self) -> bool:
        return self.world != "none" and self.week > 0


def score_windows(
    workdir: Path,
    cfg: MonitoringConfig,
    seed: int,
    *,
    customers: int,
    t0: date,
    scenarios: tuple[str, ...],
    parts: int,
    workers: int = 1,
) -> list[_Scored]:
    """Every window of one seed's worlds, tested with ``cfg`` (segments left out).

    Cached next to the worlds, keyed by the config, customers, t0 and parts.
    """
    import hashlib
    import pickle

    # only what changes the scores (decisions are re-made from scores afterwards)
    d = cfg.drift
    scoring = (
        d.method, d.num_method, d.cat_method, d.threshold, d.num_threshold, d.cat_threshold,
        sorted(d.per_column_threshold.items()), d.max_current_rows, d.min_rows, d.seed,
        cfg.reference_rows, cfg.quality.range_quantiles,
    )  # fmt: skip
    key = hashlib.sha1(f"{scoring}|{customers}|{t0}|{scenarios}|{parts}".encode()).hexdigest()[:12]
    cache = workdir / f"seed{seed}" / f"scored-{key}.pkl"
    if cache.is_file():
        cached: list[_Scored] = pickle.loads(cache.read_bytes())
        return cached
    weeks = week_dates(t0)
    worlds = {
        w: build_world(workdir / f"seed{seed}" / w, w, seed, customers, t0, workers=workers)
        for w in ("none", *scenarios)
    }
    base = traffic(worlds["none"])
    feats = feature_names(base)
    predict = train_model(worlds["none"], base, feats, t0, seed)
    out = []
    for w, ds in worlds.items():
        df = base if w == "none" else traffic(ds)
        df["prediction"] = predict(df)
        ref_rows = df[df["asof"].isin([weeks[k] for k in REFERENCE_WEEKS])]
        ref = build_reference(
            ref_rows[[*feats, "region", "dwelling_type"]],
            ref_rows["prediction"].to_numpy(),
            cfg.reference_rows,
            seed,
        )
        # each week's customers split at random into `parts` disjoint windows of traffic
        codes = pd.Series(df["customer_id"].unique())
        part_of = dict(
            zip(codes, np.random.default_rng(seed).integers(0, parts, len(codes)), strict=True)
        )
        df["part"] = df["customer_id"].map(part_of)
        for k in PRE_WEEKS + POST_WEEKS:
            if w == "none" and k <= 0:
                continue
            for part in range(parts):
                cur = df[(df["asof"] == weeks[k]) & (df["part"] == part)]
                t = time.perf_counter()
                s = compute_drift(
                    ref, cur, cfg, model_name="churn", model_version=f"s{seed}", segments=False
                )
                out.append(
                    _Scored(
                        seed, w, k, part, len(cur), s, time.perf_counter() - t,
                        customers=list(cur["customer_id"]),
                    )
                )  # fmt: skip
        log.info("seed %s %s: %d windows scored", seed, w, len(out))
    cache.write_bytes(pickle.dumps(out))
    return out


def add_usage(workdir: Path, scored: list[_Scored], cfg: MonitoringConfig, *, t0: date) -> None:
    """The usage view of every window (one scan of the reads per world; not cached, cheap)."""
    weeks = week_dates(t0)
    last = POST_WEEKS[-1]
    end = datetime.combine(weeks[last], datetime.min.time(), UTC)
    periods = last - PRE_WEEKS[0] + 1 + cfg.usage.baseline
    for seed, world in dict.fromkeys((sc.seed, sc.world) for sc in scored):
        per = period_usage(
            workdir / f"seed{seed}" / world, end, timedelta(weeks=1), periods, cfg.usage
        )
        parts = max(sc.part for sc in scored if sc.seed == seed) + 1
        split: pd.Series | None = None
        for sc in scored:
            if sc.seed != seed or sc.world != world:
                continue
            if getattr(sc, "customers", None) is not None:
                ids = pd.Index(sc.customers)
            else:  # a cache from before the usage view: the same split, drawn again
                if split is None:
                    split = _split(workdir / f"seed{seed}" / world, seed, parts)
                ids = pd.Index(split.index[split == sc.part])
            sc.usage = usage_check(per, cfg.usage, current=sc.week - last - 1, customers=ids)


def _split(ds: Path, seed: int, parts: int) -> pd.Series:
    """customer_id -> part, drawn as :func:`score_windows` draws it."""
    codes = traffic(ds)["customer_id"].unique()
    return pd.Series(np.random.default_rng(seed).integers(0, parts, len(codes)), index=codes)


def calibrate(
    scored: list[_Scored], cfg: MonitoringConfig, *, margin: float = 1.25
) -> tuple[dict[str, float], dict[str, float], dict[str, float]]:
    """Per-column limits from unshifted windows: ``margin`` × the largest value seen.

    Drift: only distance tests (Wasserstein, Jensen-Shannon) are calibrated, never below
    their default threshold; p-value tests keep theirs. Out of range: never below
    ``quality.out_of_range_max``; rises of the missing share likewise, never below
    ``quality.missing_increase`` (a degree-day balance point is null in the season without
    heating or cooling, so its missing share moves with the calendar).
    """
    best: dict[str, float] = {}
    default: dict[str, float] = {}
    oor: dict[str, float] = {}
    miss: dict[str, float] = {}
    for sc in scored:
        if sc.shifted:
            continue
        cols = list(sc.summary.features)
        if sc.summary.prediction is not None:
            cols.append(sc.summary.prediction)
        for c in cols:
            oor[c.column] = max(oor.get(c.column, 0.0), c.out_of_range)
            rise = c.missing_current - c.missing_reference
            miss[c.column] = max(miss.get(c.column, 0.0), rise)
            if c.score is None or c.method in P_VALUE_METHODS or c.threshold is None:
                continue
            best[c.column] = max(best.get(c.column, 0.0), c.score)
            default[c.column] = c.threshold
    drift = {c: round(max(default[c], margin * v), 4) for c, v in sorted(best.items())}
    floor = cfg.quality.out_of_range_max
    ranges = {c: round(margin * v, 4) for c, v in sorted(oor.items()) if margin * v > floor}
    mfloor = cfg.quality.missing_increase
    missing = {c: round(margin * v, 4) for c, v in sorted(miss.items()) if margin * v > mfloor}
    return drift, ranges, missing


def calibrate_usage(
    scored: list[_Scored], cfg: MonitoringConfig, *, margin: float = 1.25
) -> dict[str, float]:
    """Usage-view limits from unshifted windows: ``margin`` × the largest value seen.

    Level: the largest rise and fall of the median ratio; shares of jumped meters and of new
    high evening loads; the rise of the missing-read share. Never below the configured limits
    (``usage.*`` in ``configs/monitoring.yaml``), which are the floor.
    """
    checks = [sc.usage for sc in scored if not sc.shifted and sc.usage is not None]
    checks = [c for c in checks if c.median_ratio is not None]
    if not checks:
        return {}
    med = np.array([c.median_ratio for c in checks], dtype=float)
    miss = max(c.missing_current - c.missing_baseline for c in checks)
    u = cfg.usage  # never below the configured limits
    jump = max(c.jump_share for c in checks)
    high = max(c.new_high_share for c in checks)
    return {
        "level_rise": round(max(u.level_rise, margin * (float(med.max()) - 1)), 4),
        "level_fall": round(min(max(u.level_fall, margin * (1 - float(med.min()))), 0.99), 4),
        "jump_share_max": round(max(u.jump_share_max, margin * jump), 4),
        "new_high_share_max": round(max(u.new_high_share_max, margin * high), 4),
        "missing_increase": round(max(u.missing_increase, margin * miss), 4),
    }


def run_validation(
    workdir: Path,
    cfg: MonitoringConfig,
    *,
    seeds: list[int],
    calibration_seeds: list[int] | None = None,
    customers: int = 1000,
    t0: date = date(2024, 7, 1),
    scenarios: tuple[str, ...] = SCENARIOS,
    parts: int = 2,
    margin: float = 1.25,
    usage_margin: float | None = None,
    workers: int = 1,
) -> ValidationResult:
    """Generate the worlds (cached in ``workdir``), test every window, calibrate, decide."""
    cal = list(calibration_seeds or [])
    if cal:  # calibrate from the methods' defaults, not from an earlier calibration
        cfg = cfg.model_copy(
            update={
                "drift": cfg.drift.model_copy(update={"per_column_threshold": {}}),
                "quality": cfg.quality.model_copy(
                    update={"per_column_out_of_range": {}, "per_column_missing_increase": {}}
                ),
            }
        )
    scored: list[_Scored] = []
    for seed in dict.fromkeys([*cal, *seeds]):
        scored += score_windows(
            workdir,
            cfg,
            seed,
            customers=customers,
            t0=t0,
            scenarios=scenarios,
            parts=parts,
            workers=workers,
        )
    add_usage(workdir, scored, cfg, t0=t0)
    thresholds: dict[str, float] = {}
    ranges: dict[str, float] = {}
    missing: dict[str, float] = {}
    usage_limits: dict[str, float] = {}
    judged = cfg
    if cal:
        thresholds, ranges, missing = calibrate(
            [s for s in scored if s.seed in cal], cfg, margin=margin
        )
        drift = cfg.drift.model_copy(
            update={"per_column_threshold": {**cfg.drift.per_column_threshold, **thresholds}}
        )
        quality = cfg.quality.model_copy(
            update={
                "per_column_out_of_range": {**cfg.quality.per_column_out_of_range, **ranges},
                "per_column_missing_increase": {
                    **cfg.quality.per_column_missing_increase,
                    **missing,
                },
            }
        )
        usage_limits = calibrate_usage(
            [s for s in scored if s.seed in cal], cfg, margin=usage_margin or margin
        )
        usage = cfg.usage.model_copy(update=usage_limits)
        judged = cfg.model_copy(update={"drift": drift, "quality": quality, "usage": usage})
    res = ValidationResult(
        thresholds=thresholds,
        out_of_range=ranges,
        missing_increase=missing,
        usage_limits=usage_limits,
        config={
            "seeds": seeds,
            "calibration_seeds": cal,
            "customers": customers,
            "t0": t0.isoformat(),
            "parts": parts,
            "margin": margin,
            "usage_margin": usage_margin or margin,
            "shifts": list(scenarios),
            "monitoring": judged.model_dump(mode="json"),
        },
    )
    for sc in scored:
        summary = sc.summary.with_usage(sc.usage) if sc.usage is not None else sc.summary
        s = redecide(summary, judged)
        top = sorted((f for f in s.features if f.drifted), key=lambda f: -(f.score or 0.0))
        res.windows.append(
            WindowResult(
                sc.seed,
                sc.world,
                sc.week,
                sc.part,
                shifted=sc.shifted,
                calibration=sc.seed in cal,
                flagged=s.drift_found,
                rows=sc.rows,
                drifted_share=s.drifted_share,
                prediction_score=s.prediction.score if s.prediction else None,
                reasons=s.reasons,
                top_features=[f.column for f in top[:5]],
                seconds=sc.seconds,
            )
        )
    return res


def thresholds_yaml(res: ValidationResult) -> str:
    """The calibrated thresholds as a ``configs/monitoring.yaml`` fragment."""
    import yaml

    return yaml.safe_dump(
        {
            "drift": {"per_column_threshold": res.thresholds},
            "quality": {
                "per_column_out_of_range": res.out_of_range,
                "per_column_missing_increase": res.missing_increase,
            },
            "usage": res.usage_limits,
        },
        sort_keys=True,
    )


def write_result(res: ValidationResult, path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(res.to_dict(), indent=1, default=str))
    return path
