"""``wattwise drift watch``: report every configured model on a schedule."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import TYPE_CHECKING

from serving.monitoring.config import MonitoringConfig, parse_duration
from serving.monitoring.service import drift_report
from wattwise.errors import WattwiseError

if TYPE_CHECKING:
    from wattwise.settings import Settings

log = logging.getLogger(__name__)


def watch_round(
    settings: Settings, cfg: MonitoringConfig, echo: Callable[[str], None] = log.info
) -> bool:
    """One report per configured model; True when any found drift. A model without
    traffic or reference is logged and skipped, so one bad model does not stop the others."""
    from training.kinds import registry

    found = False
    models = cfg.watch.models
    if models is None:
        models = [name for name, kind in registry(settings).items() if kind.monitored]
    for model in models:
        try:
            out = drift_report(settings, cfg, model, window=cfg.watch.window)
        except WattwiseError as exc:
            log.warning("watch: %s skipped: %s", model, exc)
            echo(f"{model}: skipped ({exc})")
            continue
        echo(out.summary.render())
        found |= out.summary.drift_found
    return found


def watch(
    settings: Settings,
    cfg: MonitoringConfig,
    *,
    rounds: int = 0,
    echo: Callable[[str], None] = log.info,
    sleep: Callable[[float], None] = time.sleep,
) -> bool:
    """Run rounds every ``cfg.watch.every`` (``rounds`` 0: until interrupted)."""
    every = parse_duration(cfg.watch.every).total_seconds()
    found, n = False, 0
    while True:
        t = time.monotonic()
        found |= watch_round(settings, cfg, echo)
        n += 1
        if rounds and n >= rounds:
            return found
        sleep(max(0.0, every - (time.monotonic() - t)))
