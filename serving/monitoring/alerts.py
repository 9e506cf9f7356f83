"""Alerts: a log line always, and a JSON POST to the configured webhook."""

from __future__ import annotations

import json
import logging
import time
import urllib.error
import urllib.request
from typing import Any

from serving.monitoring.config import AlertConfig

log = logging.getLogger("wattwise.alerts")


def send_alert(cfg: AlertConfig, kind: str, payload: dict[str, Any]) -> bool:
    """Log ``kind`` with its payload; POST it to the webhook. True when the webhook took it.

    A webhook that is down must not stop monitoring: failures are logged, not raised.
    """
    body = {"kind": kind, **payload}
    log.warning("ALERT %s %s", kind, json.dumps(payload, default=str, sort_keys=True))
    if not cfg.webhook_url:
        return False
    data = json.dumps(body, default=str).encode()
    for attempt in range(cfg.retries + 1):
        req = urllib.request.Request(
            cfg.webhook_url,
            data=data,
            headers={"Content-Type": "application/json", "User-Agent": "wattwise-monitoring"},
            method="POST",
        )
        try:
            with urllib.request.urlopen(req, timeout=cfg.timeout_s) as resp:  # noqa: S310
                if 200 <= resp.status < 300:
                    return True
                log.warning("webhook %s answered %s", cfg.webhook_url, resp.status)
        except (urllib.error.URLError, TimeoutError, OSError) as exc:
            log.warning(
                "webhook %s failed (attempt %d/%d): %s",
                cfg.webhook_url,
                attempt + 1,
                cfg.retries + 1,
                exc,
            )
        if attempt < cfg.retries:
            time.sleep(min(0.5 * 2**attempt, 5.0))
    return False
