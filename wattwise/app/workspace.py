"""The notebooks' starting point: settings, and a dataset with features and Feast ready.

A notebook calls :func:`workspace` first. After ``make demo`` it finds the demo's synthetic
utility and uses it; on a fresh checkout it builds a small one (generate → features →
Feast apply and materialize), so every notebook runs on its own, in CI included. A model a
notebook needs (the churn @champion, say) is trained with a small budget the same way, by
:meth:`Workspace.ensure_model`, through the one training pipeline.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from wattwise.settings import Settings, load_settings

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Workspace:
    settings: Settings
    dataset_dir: Path

    def ensure_model(self, name: str, trials: int = 2) -> str:
        """The version behind ``NAME@champion``, training (small budget) when there is none.

        The workspace's utility is small (a few hundred homes): a model trained on it may
        not pass the production floor of its config, so this training promotes without the
        floor, and says so; the comparison with an existing champion still applies."""
        from training.config import load_model_config
        from training.pipeline import train
        from training.registry import alias_version
        from training.tracking import setup

        version = alias_version(setup(self.settings), name, "champion")
        if version is not None:
            return version
        log.info("no %s@champion: training one (%d trials)", name, trials)
        cfg = load_model_config(name, settings=self.settings, promotion={"floor": {}})
        res = train(
            cfg, self.settings, dataset_dir=self.dataset_dir, trials=trials, config_ref=name
        )
        print(  # noqa: T201 - the notebook reader sees it
            f"{name} v{res.version} trained on the workspace's small utility and promoted "
            f"without the production floor (test {cfg.promotion.metric} "
            f"{res.metrics.get(cfg.promotion.metric, float('nan')):.3f})"
        )
        return str(res.version)


def workspace(customers: int = 300, days: int = 396, seed: int | None = None) -> Workspace:
    """Settings and the synthetic dataset, built small the first time (see module docstring)."""
    settings = load_settings()
    ds = settings.data_dir / "synthetic"
    if not (ds / "feast" / "online.db").exists():
        build_dataset(ds, customers, days, seed)
    return Workspace(settings, ds)


def build_dataset(ds: Path, customers: int, days: int, seed: int | None = None) -> dict[str, Any]:
    """Generate a synthetic utility, build its features and serve them from Feast."""
    from features.attributes import build_attributes
    from features.pipeline import build_features
    from features.store import apply, materialize
    from features.synth.config import load_world_config
    from features.synth.generate import generate
    from training.kinds import feature_services

    over: dict[str, Any] = {"customers": customers, "days": days}
    if seed is not None:
        over["seed"] = seed
    log.info("building a synthetic utility of %d customers × %d days in %s", customers, days, ds)
    generate(load_world_config(**over), ds)
    build_features(ds)
    build_attributes(ds)
    apply(ds, feature_services())
    lo, hi = materialize(ds)
    return {"dataset": ds, "online_from": lo, "online_to": hi}


def import_lcl(settings: Settings) -> Path | None:
    """The London households (LCL) as a dataset with features, imported once; None (with a
    log line saying why) when ``../shared/data`` does not have them."""
    from features.attributes import build_attributes
    from features.ingest.run import run_import
    from features.pipeline import build_features

    shared = settings.shared_data_dir
    inputs = [shared / "lcl_smart_meters", shared / "lcl_tou_tariff", shared / "london_weather"]
    missing = [p for p in inputs if not p.exists()]
    if missing:
        log.warning(
            "LCL skipped: %s not found (the shared data is not on this machine)", missing[0]
        )
        print(f"LCL skipped: {missing[0]} not found")  # noqa: T201 - the notebook reader sees it
        return None
    ds = settings.data_dir / "lcl"
    if not (ds / "features" / "usage.parquet").exists():
        run_import("lcl", inputs, ds)
        build_features(ds)
        build_attributes(ds)
    return ds


def import_redd(settings: Settings) -> Path | None:
    """REDD house 3 (``wattwise data import redd``) as a dataset, imported once; None (with a
    message) when ``../shared/data`` does not have it."""
    from features.ingest.run import run_import

    src = settings.shared_data_dir / "nilm_redd"
    if not src.exists():
        log.warning("REDD skipped: %s not found (the shared data is not on this machine)", src)
        print(f"REDD skipped: {src} not found")  # noqa: T201 - the notebook reader sees it
        return None
    ds = settings.data_dir / "redd"
    if not (ds / "highres_power").exists():
        run_import("redd", [src], ds)
    return ds
