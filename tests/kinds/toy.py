"""A toy model kind, kept outside the platform: the worked example of adding a kind.

"Will this home use 10 % more per day over the next 30 days than over the last 30?" One
module (this one) declares everything the platform needs; ``toy.yaml`` beside it is its
config; ``WATTWISE_KINDS='["tests.kinds.toy:KIND"]'`` (the settings' ``kinds`` list) is its
registry line. Nothing else in the repository names it: ``wattwise train toy``, ``registry
promote``, the service's ``POST /toy/score`` and ``wattwise score toy`` all come from the
registry.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from features.services import ServiceDecl
from features.tables import table_dir
from training.config import TabularConfig
from training.kinds import Kind, Route
from training.kinds.schemas import score_schemas
from training.spec import Evaluation, Package, TabularPrepared
from training.tabular import TabularSpec

try:
    from mlflow.pyfunc import PythonModel
except ImportError:  # pragma: no cover
    PythonModel = object  # type: ignore[misc,assignment]

LABEL = "uses_more"
OUTPUTS = {"score": float}


def labels(dataset_dir: Path, as_of: Any = None) -> pd.DataFrame:
    """At each monthly snapshot: did the customer's mean daily kWh over the next 30 days
    exceed 1.1 × that of the 30 days before? (From the interval reads, never truth.)"""
    import duckdb

    def glob(t: str) -> str:
        return f"read_parquet('{table_dir(dataset_dir, t)}/**/*.parquet', hive_partitioning=false)"

    return (
        duckdb.connect()
        .execute(
            f"""
        with snaps as (select distinct snapshot from {glob("churn_labels")}),
        daily as (
          select m.customer_id, date_trunc('day', r.ts) as day, sum(r.kwh) as kwh
          from {glob("interval_reads")} r join {glob("meters")} m using (meter_id)
          where m.service_kind = 'electric' group by all),
        w as (
          select d.customer_id, s.snapshot,
                 avg(kwh) filter (where day >= s.snapshot
                                    and day < s.snapshot + interval 30 day) as after,
                 avg(kwh) filter (where day < s.snapshot
                                    and day >= s.snapshot - interval 30 day) as before
          from daily d, snaps s
          where d.day >= s.snapshot - interval 30 day and d.day < s.snapshot + interval 30 day
          group by all)
        select customer_id, snapshot as event_timestamp, after > 1.1 * before as {LABEL}
        from w where after is not null and before is not null
        order by event_timestamp, customer_id"""
        )
        .fetchdf()
    )


def inputs(frame: pd.DataFrame) -> pd.DataFrame:
    """The derived feature, for training, batch and serving alike: the last month's use
    against the year's."""
    out = frame.copy()
    year = pd.to_numeric(out["usage_mean_daily_kwh_365d"], errors="coerce")
    out["toy_month_vs_year"] = pd.to_numeric(out["usage_mean_daily_kwh_30d"], errors="coerce") / (
        year.where(year > 0)
    )
    return out


class ToyModel(PythonModel):  # type: ignore[misc,valid-type]
    """pyfunc: the inputs in, ``score`` (probability of using more) out."""

    def load_context(self, context: Any) -> None:
        import joblib

        root = Path(context.artifacts["bundle"])
        self.model = joblib.load(root / "model.joblib")
        self.columns: list[str] = json.loads((root / "columns.json").read_text())

    def predict(self, context: Any, model_input: pd.DataFrame, params: Any = None) -> pd.DataFrame:
        X = model_input.reindex(columns=self.columns).astype("float64")
        return pd.DataFrame({"score": self.model.predict_proba(X)[:, 1]}, index=model_input.index)


class ToySpec(TabularSpec):
    """A logistic regression (scikit-learn) on the usage group and the derived ratio."""

    def label_columns(self, df: pd.DataFrame, cfg: Any) -> list[str]:
        return [LABEL]

    def split_target(self, df: pd.DataFrame, cfg: Any) -> np.ndarray:
        return df[LABEL].astype(float).to_numpy()

    def load(self, dataset_dir: Path, cfg: Any, kind: Kind) -> pd.DataFrame:
        return inputs(super().load(dataset_dir, cfg, kind))

    def _fit(self, prep: TabularPrepared, C: float) -> Any:
        from sklearn.impute import SimpleImputer
        from sklearn.linear_model import LogisticRegression
        from sklearn.pipeline import make_pipeline
        from sklearn.preprocessing import StandardScaler

        X = prep.df.loc[prep.split.train, prep.feats].astype("float64")
        y = self.split_target(prep.df, None)[prep.split.train]
        model = make_pipeline(SimpleImputer(), StandardScaler(), LogisticRegression(C=C))
        return model.fit(X, y)

    def _auc(self, prep: TabularPrepared, model: Any, rows: np.ndarray) -> float:
        from sklearn.metrics import roc_auc_score

        y = self.split_target(prep.df, None)[rows]
        p = model.predict_proba(prep.df.loc[rows, prep.feats].astype("float64"))[:, 1]
        return float(roc_auc_score(y, p)) if len(np.unique(y)) == 2 else float("nan")

    def objective(self, prep: TabularPrepared, cfg: Any) -> Any:
        return lambda params, report: self._auc(
            prep, self._fit(prep, params["C"]), prep.split.valid
        )

    def fit(self, prep: TabularPrepared, cfg: Any, params: dict[str, Any]) -> Any:
        return self._fit(prep, float(params["C"]))

    def evaluate(self, prep: TabularPrepared, cfg: Any, fitted: Any) -> Evaluation:
        auc = self._auc(prep, fitted, prep.split.test)
        rows = float(prep.split.test.sum())
        return Evaluation({"roc_auc": auc, "rows": rows}, {"roc_auc": auc, "rows": rows})

    def package(
        self, prep: TabularPrepared, cfg: Any, fitted: Any, ev: Evaluation, tmp: Path
    ) -> Package:
        import joblib

        root = tmp / "bundle"
        root.mkdir()
        joblib.dump(fitted, root / "model.joblib")
        (root / "columns.json").write_text(json.dumps(prep.feats))
        model = ToyModel()
        model.load_context(type("Ctx", (), {"artifacts": {"bundle": str(root)}})())
        example = prep.df.loc[prep.split.train, prep.feats].head(5)
        test = prep.df.loc[prep.split.test, [*prep.feats, LABEL]]
        return Package(
            python_model=ToyModel(),
            artifacts={"bundle": str(root)},
            example=example,
            example_output=model.predict(None, example),
            test_set=test,
            predict=lambda X: model.predict(None, X)["score"].to_numpy(),
            reference=prep.df.loc[prep.split.test, prep.feats],
            requirements=["mlflow==3.17.2", "scikit-learn>=1.9,<1.10", "pandas<3", "joblib"],
        )

    def gate_metrics(
        self, model: Any, test: pd.DataFrame, tags: dict[str, str]
    ) -> dict[str, float]:
        from sklearn.metrics import roc_auc_score

        from training.registry import model_inputs

        p = model.predict(model_inputs(model, test))["score"].to_numpy()
        return {"roc_auc": float(roc_auc_score(test[LABEL].astype(float), p)), "rows": len(test)}

    def render(self, ev: Evaluation) -> list[str]:
        return [f"  test ROC-AUC {ev.headline['roc_auc']:.4f} on {int(ev.headline['rows'])} rows"]


REQUEST, RESPONSE = score_schemas("toy", OUTPUTS)
KIND = Kind(
    name="toy",
    summary="will a home use 10 % more next month",
    config=TabularConfig,
    spec=ToySpec,
    feature_service=ServiceDecl("toy_v1", ("usage",)),
    labels=labels,
    inputs=inputs,
    outputs=OUTPUTS,
    routes=(Route("/toy/score", "score", REQUEST, RESPONSE, "Probability of using 10 % more."),),
    batch=True,
)
