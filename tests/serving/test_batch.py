"""``wattwise score churn --as-of``: every customer from the offline store, same model and
features as the online service."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from serving.server import settings_env
from tests.serving.conftest import Served

pytestmark = [pytest.mark.integration]


def test_offline_batch_equals_online_scores(served_models: Served, tmp_path: Path) -> None:
    from features.store import online, open_store
    from serving.models import load_churn
    from training.tracking import setup

    newest = served_models.frame.event_timestamp.max()
    out = tmp_path / "churn.parquet"
    env = {**os.environ, **settings_env(served_models.settings, served_models.dataset_dir)}
    res = subprocess.run(
        [
            sys.executable,
            "-m",
            "wattwise.app.cli",
            "score",
            "churn",
            "--as-of",
            str(newest.date()),
            "--out",
            str(out),
        ],
        capture_output=True,
        text=True,
        env=env,
        timeout=600,
    )
    assert res.returncode == 0, res.stderr[-2000:]
    assert "customers/s" in res.stdout and "Feast offline" in res.stdout
    got = pd.read_parquet(out)
    assert got.customer_id.is_unique and len(got) > 0
    assert set(got.model_version) == {served_models.churn_version}
    assert {"probability", "decision", "error", "as_of"} <= set(got.columns)
    scored = got.dropna(subset=["probability"])
    assert len(scored) > 0 and got.loc[got.probability.isna(), "error"].notna().all()

    # the online path (the service's scorer on the Feast online store) gives the same scores
    setup(served_models.settings)
    scorer = load_churn(f"models:/churn/{served_models.churn_version}")
    ids = scored.customer_id.tolist()
    live = scorer.score(online(open_store(served_models.dataset_dir), "churn_v1", ids), len(ids))
    np.testing.assert_allclose(scored.probability.to_numpy(), live["probability"], rtol=1e-6)
    assert (scored.decision.to_numpy() == live["decision"]).all()

    from serving.batch import score_offline
    from serving.config import ModelEntry, load_serving_config
    from wattwise.errors import DataError

    cfg = load_serving_config()
    nope = cfg.model_copy(update={"models": {"churn": ModelEntry(registered_name="nope")}})
    with pytest.raises(DataError, match="'nope' has no @champion"):
        score_offline(
            served_models.settings,
            nope,
            "churn",
            tmp_path / "x.parquet",
            dataset_dir=served_models.dataset_dir,
        )


def test_default_as_of_is_the_newest_snapshot_of_the_kinds_own_features(
    served_models: Served, tmp_path: Path
) -> None:
    """The serving dataset's dr_performance group runs months past the customer features
    (DR seasons settle later): churn's default date comes from churn_v1's groups only, so
    every customer with features scores; a date with no features is an error, not a file
    of empty scores."""
    import pyarrow.parquet as pq

    from serving.batch import score_offline
    from serving.config import load_serving_config
    from training.kinds import get_kind
    from wattwise.errors import DataError, EmptyResultError

    ds = served_models.dataset_dir
    churn = get_kind("churn").feature_service
    assert churn is not None and "dr_performance" not in churn.groups

    def newest(group: str) -> pd.Timestamp:
        t = pq.read_table(ds / "features" / f"{group}.parquet", columns=["event_timestamp"])
        return pd.Timestamp(t.column(0).to_pandas().max())

    own = max(newest(g) for g in churn.groups if (ds / "features" / f"{g}.parquet").exists())
    assert newest("dr_performance") > own  # the trap the default must avoid
    cfg = load_serving_config()
    res = score_offline(
        served_models.settings, cfg, "churn", tmp_path / "a.parquet", dataset_dir=ds
    )
    assert res.as_of == own and res.scored > 0.5 * res.rows
    early = pd.Timestamp("2001-01-01", tz="UTC")
    with pytest.raises(EmptyResultError, match="none of .* has a score") as empty:
        score_offline(
            served_models.settings,
            cfg,
            "churn",
            tmp_path / "b.parquet",
            as_of=early,
            dataset_dir=ds,
        )
    assert empty.value.exit_code == 4  # a scheduler must not read 0 scored as success
    allowed = score_offline(
        served_models.settings,
        cfg,
        "churn",
        tmp_path / "b.parquet",
        as_of=early,
        dataset_dir=ds,
        allow_empty=True,
    )
    assert allowed.scored == 0 and allowed.rows == res.rows
    with pytest.raises(DataError, match="not batch scored"):
        score_offline(
            served_models.settings, cfg, "dr_response", tmp_path / "c.parquet", dataset_dir=ds
        )
