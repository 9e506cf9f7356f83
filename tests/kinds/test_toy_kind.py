"""A kind added with one module, one YAML file and one registry line (tests/kinds/toy.py,
toy.yaml and ``WATTWISE_KINDS``) trains, promotes, serves and batch scores through the
documented commands, with no other file touched."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import urllib.request
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

pytestmark = [pytest.mark.integration, pytest.mark.slow]
HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[1]
REF = "tests.kinds.toy:KIND"


def cli(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "wattwise.app.cli", *args],
        capture_output=True,
        text=True,
        env=env,
        cwd=ROOT,
        timeout=600,
    )


def test_nothing_outside_its_own_files_names_the_toy_kind() -> None:
    """The registry line lives in the settings; the platform's code and configs never
    mention the kind."""
    out = subprocess.run(
        [
            "git",
            "grep",
            "-il",
            "toy",
            "--",
            "features",
            "training",
            "serving",
            "wattwise",
            "configs",
        ],
        capture_output=True,
        text=True,
        cwd=ROOT,
    )
    assert out.returncode in (0, 1), out.stderr
    assert out.stdout.split() == []


def test_a_new_kind_trains_promotes_serves_and_batch_scores(
    tiny_feature_store: Path, tmp_path: Path
) -> None:
    from serving.server import settings_env, start_server, stop_server
    from wattwise.settings import load_settings

    ds = tmp_path / "data" / "synthetic"
    shutil.copytree(tiny_feature_store, ds)
    env = {
        **os.environ,
        "WATTWISE_KINDS": json.dumps([REF]),
        "WATTWISE_PATHS__DATA_DIR": str(ds.parent),
        "WATTWISE_PATHS__MLRUNS_DIR": str(tmp_path / "mlruns"),
        "WATTWISE_MLFLOW__TRACKING_URI": f"sqlite:///{tmp_path}/mlruns/mlflow.db",
        "WATTWISE_MLFLOW__ARTIFACT_ROOT": str(tmp_path / "mlruns" / "art"),
    }
    config = str(HERE / "toy.yaml")

    # its FeatureService is applied with everyone else's
    r = cli(env, "features", "apply")
    assert r.returncode == 0, r.stderr
    assert "FeatureService toy_v1" in r.stdout and "FeatureService churn_v1" in r.stdout
    assert cli(env, "features", "materialize").returncode == 0
    r = cli(env, "train", "--help")
    assert r.returncode == 0 and "toy" in r.stdout

    # train: the one pipeline, the kind's spec; registered and promoted through its floor
    r = cli(env, "train", "toy", "--model-config", config)
    assert r.returncode == 0, r.stderr[-3000:]
    assert "toy v1" in r.stdout and "promoted to @champion" in r.stdout, r.stdout

    # a second version, then `registry promote` with the gate of the config it was trained with
    r = cli(
        env, "train", "toy", "--model-config", config, "--no-promote", "--set", "estimator.C=0.05"
    )
    assert r.returncode == 0 and "toy v2" in r.stdout, r.stderr[-3000:]
    r = cli(env, "registry", "promote", "toy")
    assert r.returncode in (0, 5), r.stderr  # 5: the champion stays (said why)
    assert "candidate v2, champion v1" in r.stdout
    champion = "2" if r.returncode == 0 else "1"
    hist = cli(env, "registry", "history", "toy").stdout
    moved = re.search(r"@champion\s+v1 -> v2", hist) is not None
    refused = re.search(r"@gate-refused\s+v1 -> v2", hist) is not None
    assert (moved, refused) == (champion == "2", champion == "1"), hist

    # batch: every customer from the offline store, the kind's derived input included
    out = tmp_path / "toy.parquet"
    r = cli(env, "score", "toy", "--out", str(out))
    assert r.returncode == 0, r.stderr[-3000:]
    batch = pd.read_parquet(out)
    scored = batch.dropna(subset=["score"])
    assert len(scored) > 0 and scored.score.between(0, 1).all()
    assert set(batch.model_name) == {"toy"} and set(batch.model_version) == {champion}

    # serve: the generic route of the kind, over HTTP, with the registered model
    settings = load_settings()
    senv = {**settings_env(settings, ds), **{k: env[k] for k in env if k.startswith("WATTWISE_")}}
    # this world trained only the toy kind: serve it alone (the serving config's models)
    off = {k: {"enabled": False} for k in ("churn", "propensity", "disaggregation", "dr_response")}
    senv["WW_SERVING_MODELS"] = json.dumps(off)
    server = start_server(senv, log_path=tmp_path / "service.log", timeout_s=120)
    try:
        ids = scored.customer_id.head(5).tolist()
        req = urllib.request.Request(
            server.url + "/toy/score",
            json.dumps({"customer_ids": [*ids, "C9999999"]}).encode(),
            {"content-type": "application/json"},
        )
        with urllib.request.urlopen(req, timeout=60) as resp:
            body = json.loads(resp.read())
        spec = json.loads(urllib.request.urlopen(server.url + "/docs.json", timeout=30).read())
    finally:
        stop_server(server)
    res = {x["customer_id"]: x for x in body["results"]}
    assert res["C9999999"]["error"] == "unknown customer_id" and res["C9999999"]["score"] is None
    online = np.array([res[c]["score"] for c in ids])
    assert np.isfinite(online).all()
    # the same version on the same (newest) features: online equals batch
    assert body["model"]["version"] == str(batch.model_version.iloc[0])
    np.testing.assert_allclose(online, scored.set_index("customer_id").loc[ids, "score"], rtol=1e-6)
    assert "/toy/score" in spec["paths"]
    assert "score" in json.dumps(spec["components"]["schemas"]["ToyResult"])
