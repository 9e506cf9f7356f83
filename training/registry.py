"""The model registry: aliases (@champion, @challenger), gated promotion, history, rollback.

Every alias move is recorded (when, alias, from, to, metrics, reason) in a small SQLite
table beside the MLflow database, so ``wattwise registry history`` can tell the whole story
and ``rollback`` knows where to go back to.
"""

from __future__ import annotations

import json
import logging
import math
import sqlite3
import tempfile
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from training.config import LOWER_IS_BETTER
from wattwise.errors import NotPromotedError, WattwiseError

if TYPE_CHECKING:
    from training.config import GateConfig
    from training.spec import ModelSpec
    from wattwise.settings import Settings

log = logging.getLogger(__name__)
CHAMPION, CHALLENGER = "champion", "challenger"
# a gate metric within this of the champion's is a tie (floating-point noise of the same
# predictions summed in another order is ~1e-16; no real gain is that small)
TIE_REL, TIE_ABS = 1e-9, 1e-12
TEST_SET = "eval/test_set.parquet"


def _db(settings: Settings) -> sqlite3.Connection:
    settings.mlruns_dir.mkdir(parents=True, exist_ok=True)
    con = sqlite3.connect(settings.mlruns_dir / "registry_history.db")
    con.execute(
        """create table if not exists alias_history (
             id integer primary key autoincrement, at text not null, model text not null,
             alias text not null, from_version text, to_version text, metrics text, reason text)"""
    )
    return con


def record(
    settings: Settings,
    model: str,
    alias: str,
    from_v: str | None,
    to_v: str | None,
    metrics: dict[str, Any],
    reason: str,
) -> None:
    """Append one alias move to the history."""
    with _db(settings) as con:
        con.execute(
            "insert into alias_history (at, model, alias, from_version, to_version, metrics, reason)"
            " values (?, ?, ?, ?, ?, ?, ?)",
            (
                datetime.now(UTC).isoformat(timespec="seconds"),
                model,
                alias,
                from_v,
                to_v,
                json.dumps(metrics, default=float),
                reason,
            ),
        )


def history(settings: Settings, model: str) -> list[dict[str, Any]]:
    """Every alias move of ``model``, oldest first."""
    with _db(settings) as con:
        rows = con.execute(
            "select at, alias, from_version, to_version, metrics, reason from alias_history"
            " where model = ? order by id",
            (model,),
        ).fetchall()
    return [
        {
            "at": r[0],
            "alias": r[1],
            "from": r[2],
            "to": r[3],
            "metrics": json.loads(r[4] or "{}"),
            "reason": r[5],
        }
        for r in rows
    ]


def alias_version(client: Any, model: str, alias: str) -> str | None:
    """The version an alias points at, or None."""
    try:
        return str(client.get_model_version_by_alias(model, alias).version)
    except Exception:  # MLflow raises RestException when the alias does not exist
        return None


def move_alias(
    settings: Settings,
    client: Any,
    model: str,
    alias: str,
    version: str,
    metrics: dict[str, Any],
    reason: str,
) -> None:
    """Point ``alias`` at ``version`` and record the move."""
    prev = alias_version(client, model, alias)
    client.set_registered_model_alias(model, alias, version)
    record(settings, model, alias, prev, version, metrics, reason)
    log.info("%s@%s: %s -> %s (%s)", model, alias, prev, version, reason)


def load_test_set(client: Any, model: str, version: str) -> pd.DataFrame:
    """The test set a version was evaluated on (logged with its run)."""
    import mlflow

    run_id = client.get_model_version(model, version).run_id
    with tempfile.TemporaryDirectory() as d:
        try:
            p = mlflow.artifacts.download_artifacts(
                run_id=run_id, artifact_path=TEST_SET, dst_path=d
            )
        except Exception as exc:
            raise WattwiseError(f"{model} v{version} has no logged test set ({TEST_SET})") from exc
        return pd.read_parquet(p)


def model_inputs(model: Any, frame: pd.DataFrame) -> pd.DataFrame:
    """The columns of ``frame`` that the model's signature declares (extra columns dropped),
    integer and boolean columns as float64 where it declares a double: MLflow's schema check
    refuses int64 → double ("not safely"), and a feature that is an integer in one frame is
    a float with missing values in another."""
    schema = model.metadata.get_input_schema()
    if schema is None:
        return frame
    out = frame[[c for c in schema.input_names() if c in frame.columns]]
    doubles = {
        spec.name
        for spec in schema.inputs
        if str(getattr(spec, "type", "")).lower() in ("datatype.double", "datatype.float")
    }
    cast = {
        c: "float64"
        for c in out.columns
        if c in doubles
        and (
            pd.api.types.is_integer_dtype(out[c].dtype) or pd.api.types.is_bool_dtype(out[c].dtype)
        )
    }
    return out.astype(cast) if cast else out


@dataclass
class Promotion:
    moved: bool
    reason: str
    candidate: str
    champion: str | None
    candidate_metrics: dict[str, float] = field(default_factory=dict)
    champion_metrics: dict[str, float] = field(default_factory=dict)

    def require_moved(self, model: str) -> None:
        """Raise :class:`NotPromotedError` (exit 5, the reason in one line) when @champion
        stayed: a command that asked for promotion did not get it."""
        if not self.moved:
            raise NotPromotedError(f"{model} v{self.candidate} not promoted: {self.reason}")


def gate(cand: dict[str, float], champ: dict[str, float], g: GateConfig) -> tuple[bool, str]:
    """Does the candidate beat the champion (strictly, and by the configured margin) without
    regressions? A tie keeps the champion."""
    c, h = cand[g.metric], champ[g.metric]
    delta = (c - h) if g.higher_is_better else (h - c)
    if math.isclose(c, h, rel_tol=TIE_REL, abs_tol=TIE_ABS):
        delta = 0.0  # the same model re-scored (or rounding noise): a tie, not a gain
    if not np.isfinite(delta) or delta <= 0 or delta < g.min_delta:
        need = f"> 0 and ≥ {g.min_delta}" if g.min_delta else "> 0"
        return (
            False,
            f"{g.metric} {c:.4f} vs champion {h:.4f}: improvement {delta:+.4f}, required {need}",
        )
    for m, allowed in g.guards.items():
        worse = cand[m] - champ[m] if m in LOWER_IS_BETTER else champ[m] - cand[m]
        if worse > allowed:
            return False, f"guard {m} regressed by {worse:.4f} > {allowed}"
    return True, f"{g.metric} {c:.4f} vs champion {h:.4f} (+{delta:.4f} ≥ {g.min_delta})"


def version_kind(tags: dict[str, str]) -> str:
    """The model kind a registered version was trained as (its ``wattwise.kind`` tag; older
    versions carry ``wattwise.spec`` with the same names)."""
    kind = tags.get("wattwise.kind") or tags.get("wattwise.spec")
    if not kind:
        raise WattwiseError("the version has no wattwise.kind tag: it was not trained by wattwise")
    return kind


def promote(
    settings: Settings,
    model: str,
    g: GateConfig,
    candidate: str | None = None,
    spec: ModelSpec | None = None,
) -> Promotion:
    """Compare a candidate (default @challenger) with @champion on the candidate's test set.

    The candidate must pass the gate's absolute floor (the first version too); against a
    champion it must then win the gate. @champion moves only then; the history records the
    move or the refusal, with the reason, either way. ``spec``: the version's kind's spec
    (default: from its ``wattwise.kind`` tag)."""
    from training.tracking import setup

    client = setup(settings)
    cand = candidate or alias_version(client, model, CHALLENGER)
    if cand is None:
        raise WattwiseError(f"{model} has no @{CHALLENGER} and no candidate version was given")
    champ = alias_version(client, model, CHAMPION)
    tags = client.get_model_version(model, cand).tags
    if spec is None:
        from training.kinds import get_kind

        spec = get_kind(version_kind(tags), settings).spec()
    if champ == cand:
        return Promotion(False, f"v{cand} is already @{CHAMPION}", cand, champ)
    test = load_test_set(client, model, cand)
    scorer = spec

    def evaluate(version: str) -> dict[str, float]:
        import mlflow

        m = mlflow.pyfunc.load_model(f"models:/{model}/{version}")
        return scorer.gate_metrics(m, test, tags)

    cm = evaluate(cand)
    fails = g.floor_failures(cm)
    if fails:
        why = "below the floor: " + "; ".join(fails)
        record(settings, model, "gate-refused", champ, cand, {"candidate": cm}, why)
        log.info("%s v%s not promoted: %s", model, cand, why)
        return Promotion(False, why, cand, champ, cm, {})
    floor = ", ".join(f"{k} {v}" for k, v in g.floor.items()) or "none configured"
    if champ is None:
        why = f"first champion: no model to compare with; floor passed ({floor})"
        move_alias(settings, client, model, CHAMPION, cand, cm, why)
        return Promotion(True, why, cand, None, cm, {})
    hm = evaluate(champ)
    ok, why = gate(cm, hm, g)
    if ok:
        move_alias(settings, client, model, CHAMPION, cand, {"candidate": cm, "champion": hm}, why)
    else:
        record(settings, model, "gate-refused", champ, cand, {"candidate": cm, "champion": hm}, why)
    return Promotion(ok, why, cand, champ, cm, hm)


def candidate_gate(
    settings: Settings, model: str, version: str | None = None
) -> tuple[str, GateConfig]:
    """The candidate (``version``, default @challenger) and the promotion gate of the config
    it was trained with (its ``wattwise.config`` tag; else the config under configs/models
    that registers ``model``)."""
    from training.config import load_model_config, registered_config
    from training.tracking import setup

    client = setup(settings)
    cand = version or alias_version(client, model, CHALLENGER)
    if cand is None:
        raise WattwiseError(f"{model} has no @{CHALLENGER} and no candidate version was given")
    try:
        tags = client.get_model_version(model, cand).tags
    except Exception as exc:  # MLflow raises RestException for an unknown name/version
        raise WattwiseError(f"{model} v{cand} is not registered") from exc
    ref = tags.get("wattwise.config") or registered_config(model)
    return cand, load_model_config(ref, settings=settings).promotion


def rollback(settings: Settings, model: str) -> str:
    """Move @champion back to the version it pointed at before its last move."""
    from training.tracking import setup

    client = setup(settings)
    moves = [h for h in history(settings, model) if h["alias"] == CHAMPION]
    current = alias_version(client, model, CHAMPION)
    for h in reversed(moves):
        if h["to"] == current and h["from"]:
            move_alias(
                settings, client, model, CHAMPION, h["from"], {}, f"rollback from v{current}"
            )
            return str(h["from"])
    raise WattwiseError(f"{model}: no earlier @{CHAMPION} to roll back to")


def tmp_dir() -> Path:
    return Path(tempfile.mkdtemp(prefix="wattwise-"))
