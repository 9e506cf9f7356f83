"""How close can any model of these features get to the oracle? (issue: training platform)

The oracle's ROC-AUC is the true probability's, which knows the generator's latent traits and
what the window brings. Three fits on the pipeline's own split say how much of a model's gap
to it is learnable, for churn and for each propensity program:

- **fitted on the test rows**: the oracle's log-probability regressed on the features of the
  test rows, 3-fold by customer. What the features say about the oracle in the test months;
  below the oracle by what the features do not show (latent traits, the window's events).
- **fitted on the past**: the same regression on the *training* rows, scoring the test rows: a
  model trained on earlier snapshots with the true probabilities as labels, the best any
  learner of these features and this split can hope for. Below the previous figure by what
  changes between the training and the test months (the season, the competitor's prices).
- **label fit**: one fixed, regularised LightGBM on the 0/1 labels of the same training rows
  (a reference for the tuned pipeline model, not a replacement).

    python -m benchmarks.oracle_ceiling --world data/synthetic [--model churn|propensity]

The world needs its features built and applied (``wattwise features build``); the module
reads truth, so its name says ``oracle``.
"""

from __future__ import annotations

import argparse
import logging
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from wattwise.errors import DataError

log = logging.getLogger(__name__)

# regression of the oracle's log-probability and the fixed label fit (not tuned: references)
REGRESSOR: dict[str, Any] = {
    "n_estimators": 500,
    "learning_rate": 0.05,
    "num_leaves": 15,
    "min_child_samples": 100,
}
CLASSIFIER: dict[str, Any] = {
    "n_estimators": 300,
    "learning_rate": 0.03,
    "num_leaves": 8,
    "min_child_samples": 200,
}


@dataclass(frozen=True)
class Ceiling:
    """One target's test ROC-AUCs: the oracle's and the three fits' (see the module doc)."""

    target: str
    test_rows: int
    positives: int
    oracle: float
    fitted_on_test: float
    fitted_on_past: float
    label_fit: float

    def render(self) -> str:
        g = self.oracle
        return (
            f"{self.target:20s} {self.test_rows:>7,} {self.positives:>6,}  {g:.4f}  "
            f"{self.fitted_on_test:.4f} ({g - self.fitted_on_test:+.4f})  "
            f"{self.fitted_on_past:.4f} ({g - self.fitted_on_past:+.4f})  "
            f"{self.label_fit:.4f} ({g - self.label_fit:+.4f})"
        )


HEADER = (
    f"{'target':20s} {'rows':>7} {'pos':>6}  oracle  on test rows (gap)  "
    "on the past (gap)  label fit (gap)"
)


def ceiling(
    target: str,
    X: pd.DataFrame,
    y: np.ndarray,
    groups: np.ndarray,
    train: np.ndarray,
    test: np.ndarray,
    oracle_train: np.ndarray,
    oracle_test: np.ndarray,
    n_jobs: int = 2,
    seed: int = 0,
) -> Ceiling:
    """The three fits for one target; ``train``/``test`` are row masks over ``X``."""
    import lightgbm as lgb
    from sklearn.metrics import roc_auc_score
    from sklearn.model_selection import GroupKFold

    common: dict[str, Any] = {"verbose": -1, "n_jobs": n_jobs, "random_state": seed}
    yt = y[test]
    Xt = X[test]
    z_test = np.log(np.clip(oracle_test, 1e-6, 1.0))
    on_test = np.zeros(len(Xt))
    for a, b in GroupKFold(3).split(Xt, z_test, groups[test]):
        m = lgb.LGBMRegressor(**REGRESSOR, **common).fit(Xt.iloc[a], z_test[a])
        on_test[b] = m.predict(Xt.iloc[b])
    z_train = np.log(np.clip(oracle_train, 1e-6, 1.0))
    past = lgb.LGBMRegressor(**REGRESSOR, **common).fit(X[train], z_train)
    label = lgb.LGBMClassifier(**CLASSIFIER, **common).fit(X[train], y[train])
    return Ceiling(
        target,
        int(test.sum()),
        int(yt.sum()),
        float(roc_auc_score(yt, oracle_test)),
        float(roc_auc_score(yt, on_test)),
        float(roc_auc_score(yt, past.predict(Xt))),
        float(roc_auc_score(yt, np.asarray(label.predict_proba(Xt))[:, 1])),
    )


def _prepared(world: Path, model: str, df: pd.DataFrame | None) -> tuple[Any, Any, Any]:
    """The model's config, spec and prepared training set: the pipeline's own split."""
    from training.config import load_model_config
    from training.kinds import get_kind

    cfg = load_model_config(model)
    kind = get_kind(cfg.kind)
    spec = kind.spec()
    df = spec.load(world, cfg, kind) if df is None else df
    return cfg, spec, spec.prepare(df, cfg, world)


def churn_ceiling(world: Path, df: pd.DataFrame | None = None) -> list[Ceiling]:
    """Churn's ceilings on the split of ``configs/models/churn.yaml``."""
    from training.oracle import churn_oracle_probability

    cfg, _, prep = _prepared(world, "churn", df)
    sp = prep.split
    p = churn_oracle_probability(world, prep.df)
    if p is None:
        raise DataError(f"{world} has no churn truth (truth/churn_probability)")
    keep = np.isfinite(p)
    y = prep.df[cfg.label].astype(float).to_numpy()
    train, test = sp.train & keep, sp.test & keep
    groups = prep.df["customer_id"].astype(str).to_numpy()
    return [ceiling("churn", prep.X, y, groups, train, test, p[train], p[test])]


def propensity_ceilings(
    world: Path, df: pd.DataFrame | None = None, programs: list[str] | None = None
) -> list[Ceiling]:
    """Each program's ceilings on the split of ``configs/models/propensity.yaml``; the offer
    received is a feature, as in the response model."""
    from training.oracle import enrollment_oracle
    from training.propensity import OFFER

    cfg, spec, prep = _prepared(world, "propensity", df)
    sp = prep.split
    groups = prep.df["customer_id"].astype(str).to_numpy()
    out = []
    for prog in programs or cfg.programs:
        has, y, offered = spec._data(prep.df, prog)  # the response model's rows, label, offer
        X = prep.X.assign(**{OFFER: offered.astype(float)})
        train, test = sp.train & has, sp.test & has
        o_train = enrollment_oracle(world, prep.df[train].reset_index(drop=True), prog)
        o_test = enrollment_oracle(world, prep.df[test].reset_index(drop=True), prog)
        if o_train is None or o_test is None:
            raise DataError(f"{world} has no enrolment truth (truth/enrollment_probability)")
        out.append(ceiling(prog, X, y, groups, train, test, o_train.p, o_test.p))
        log.info("%s", out[-1].render())
    return out


def main(argv: list[str] | None = None) -> None:
    """Print the ceilings of churn and/or propensity on a featurized synthetic world."""
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--world", type=Path, required=True, help="a synthetic dataset directory")
    ap.add_argument("--model", choices=["churn", "propensity", "both"], default="both")
    ap.add_argument("--programs", help="comma-separated programs (default: the config's)")
    ap.add_argument("--json", type=Path, help="also write the rows here")
    a = ap.parse_args(argv)
    logging.basicConfig(level=logging.WARNING)
    try:
        _print(a)
    except DataError as e:  # a world without truth or features: one line, not a traceback
        raise SystemExit(f"error: {e}") from None


def _print(a: argparse.Namespace) -> None:
    """Compute and print the asked ceilings (and write them as JSON if asked)."""
    rows: list[Ceiling] = []
    print(HEADER)
    if a.model in ("churn", "both"):
        rows += churn_ceiling(a.world)
        print(rows[-1].render(), flush=True)
    if a.model in ("propensity", "both"):
        progs = a.programs.split(",") if a.programs else None
        for c in propensity_ceilings(a.world, programs=progs):
            rows.append(c)
            print(c.render(), flush=True)
    if a.json:
        import json

        a.json.write_text(json.dumps([asdict(r) for r in rows], indent=2))


if __name__ == "__main__":
    main()
