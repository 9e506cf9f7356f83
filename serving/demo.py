"""The serving stage of ``wattwise demo``: start the service, score a few customers over
HTTP, stop it, and say what happened."""

from __future__ import annotations

import json
import tempfile
import time
import urllib.request
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from wattwise.settings import Settings


def post(url: str, body: dict[str, Any], key: str | None = None, timeout: float = 30) -> Any:
    """POST JSON, return the decoded answer (raises ``urllib.error.HTTPError`` on 4xx/5xx)."""
    headers = {"content-type": "application/json"}
    if key:
        headers["authorization"] = f"Bearer {key}"
    req = urllib.request.Request(url, json.dumps(body).encode(), headers, method="POST")
    with urllib.request.urlopen(req, timeout=timeout) as r:
        return json.loads(r.read())


def http_smoke(settings: Settings, dataset_dir: Path, n: int = 5) -> str:
    """Serve ``dataset_dir`` with the @champion models on a free loopback port, score ``n``
    customers for churn and propensity over HTTP, stop; return a short report."""
    from serving.lookup import Customers
    from serving.server import settings_env, start_server, stop_server

    ids = [str(c) for c in Customers(dataset_dir).index[:n]]
    with tempfile.TemporaryDirectory(prefix="wattwise-serve-") as tmp:
        t0 = time.perf_counter()
        server = start_server(
            settings_env(settings, dataset_dir), log_path=Path(tmp) / "service.log"
        )
        started = time.perf_counter() - t0
        try:
            ready = json.loads(urllib.request.urlopen(server.url + "/readyz", timeout=10).read())
            t1 = time.perf_counter()
            churn = post(server.url + "/churn/score", {"customer_ids": ids})
            churn_ms = (time.perf_counter() - t1) * 1e3
            prop = post(server.url + "/propensity/score", {"customer_ids": ids})
        finally:
            stop_server(server)
    lines = [
        f"service started on {server.url} in {started:.1f} s; models: "
        + ", ".join(
            f"{k} v{m['version']}" if m["loaded"] else f"{k} (not loaded)"
            for k, m in ready["models"].items()
        ),
        f"POST /churn/score ({len(ids)} customers, {churn_ms:.0f} ms), "
        f"{churn['model']['name']} v{churn['model']['version']}, "
        f"threshold {churn['threshold']:.3f}:",
    ]
    for r in churn["results"]:
        if r["error"]:
            lines.append(f"  {r['customer_id']}: {r['error']}")
        else:
            lines.append(
                f"  {r['customer_id']}: p={r['probability']:.3f} "
                f"{'CONTACT' if r['decision'] else 'no action'}  reasons: {', '.join(r['reasons'])}"
            )
    lines.append(
        "POST /propensity/score: the program an offer moves most, among those the model may "
        "offer (uplift = p_offer - p_no_offer)"
    )
    for r in prop["results"]:
        if not r["scores"]:
            lines.append(f"  {r['customer_id']}: {r['error'] or r['reason']}")
            continue
        offerable = {p: s for p, s in r["scores"].items() if s["offer"]}
        if not offerable:
            lines.append(f"  {r['customer_id']}: no program passed its uplift test gate")
            continue
        best, sc = max(offerable.items(), key=lambda kv: kv[1]["uplift"])
        lines.append(
            f"  {r['customer_id']}: {best} (p {sc['p_no_offer']:.3f} -> {sc['p_offer']:.3f} "
            f"with an offer, uplift {sc['uplift']:+.3f})"
        )
    withheld = {
        p: s["offer_reason"]
        for r in prop["results"]
        for p, s in (r["scores"] or {}).items()
        if not s["offer"]
    }
    for p, why in sorted(withheld.items()):
        lines.append(f"  {p}: {why}")
    lines.append("service stopped")
    return "\n".join(lines)
