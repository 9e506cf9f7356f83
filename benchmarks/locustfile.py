"""Locust users for the scoring service load test (``python -m benchmarks.bench_load``).

Run by ``bench_load`` as ``locust -f benchmarks/locustfile.py --headless``, never imported
by wattwise (locust monkey-patches the process with gevent). The plan (ids, an event, a
month of readings) comes from the JSON file ``$WATTWISE_BENCH_LOAD_PLAN``; each request's
latency goes, exact (locust's own percentiles are rounded), to ``$WATTWISE_BENCH_LOAD_OUT``
as JSON lines at the end of the run.

- :class:`Traffic`: the mix of every endpoint, each user at a constant pace; many users at a
  low pace each, so that a slow answer does not slow the offered rate (a closed loop that
  waits would hide the server's queue).
- :class:`Stall` (only when ``$WATTWISE_BENCH_LOAD_STALLS`` is 1): one request per second
  of the heaviest kinds the limits allow: a year's breakdown, a batch of the batch limit.
"""

from __future__ import annotations

import itertools
import json
import os
import random
from typing import Any

from locust import FastHttpUser, constant_pacing, events, task

LATENCIES: list[tuple[str, float, int]] = []
with open(os.environ["WATTWISE_BENCH_LOAD_PLAN"]) as _f:
    PLAN: dict[str, Any] = json.load(_f)


@events.request.add_listener
def _record(name: str, response_time: float, response: Any = None, **_: Any) -> None:
    status = int(getattr(response, "status_code", 0) or 0)
    LATENCIES.append((name, float(response_time), status))


@events.quitting.add_listener
def _write(**_: Any) -> None:
    with open(os.environ["WATTWISE_BENCH_LOAD_OUT"], "w") as f:
        for name, ms, status in LATENCIES:
            f.write(json.dumps({"name": name, "ms": ms, "status": status}) + "\n")


def _post(user: FastHttpUser, name: str, path: str, body: dict[str, Any]) -> None:
    with user.client.post(path, json=body, name=name, catch_response=True) as r:
        if r.status_code != 200:
            r.failure(f"{r.status_code}")


def churn(user: FastHttpUser) -> None:
    _post(user, "churn", "/churn/score", {"customer_ids": [random.choice(PLAN["ids"])]})


def propensity(user: FastHttpUser) -> None:
    body = {"customer_ids": [random.choice(PLAN["ids"])]}
    _post(user, "propensity", "/propensity/score", body)


def dr_predict(user: FastHttpUser) -> None:
    ids = random.sample(PLAN["enrolled"], min(10, len(PLAN["enrolled"])))
    _post(user, "dr_predict", "/dr/predict", {"customer_ids": ids, "event_id": PLAN["event_id"]})


def dr_target(user: FastHttpUser) -> None:
    ids = random.sample(PLAN["enrolled"], min(50, len(PLAN["enrolled"])))
    body = {"target_kw": 5.0, "event_id": PLAN["event_id"], "customer_ids": ids}
    _post(user, "dr_target", "/dr/target", body)


def breakdown(user: FastHttpUser) -> None:
    body = {"customer_id": random.choice(PLAN["ids"]), **PLAN["month"]}
    _post(user, "breakdown", "/disaggregation/breakdown", body)


# the mix, by the kind each serves: only the kinds the service has loaded (PLAN["kinds"])
MIX = [
    ("churn", churn, 60),
    ("propensity", propensity, 20),
    ("dr_response", dr_predict, 10),
    ("dr_response", dr_target, 5),
    ("disaggregation", breakdown, 5),
]


class Traffic(FastHttpUser):
    """The mix of every loaded endpoint, each user at a constant pace."""

    wait_time = constant_pacing(float(os.environ.get("WATTWISE_BENCH_LOAD_PACE", "2.0")))
    tasks = {fn: w for kind, fn, w in MIX if kind in PLAN["kinds"]}  # noqa: RUF012


class Stall(FastHttpUser):
    """One heavy request a second, in turn: what a hostile or careless client can send."""

    fixed_count = 1
    wait_time = constant_pacing(1.0)
    weight = 0

    def on_start(self) -> None:
        batch = PLAN["ids"][: PLAN["max_batch"]]
        kinds = ["disaggregation", "propensity", "churn", "dr_response"]
        heavy = [
            (
                "stall_breakdown_year",
                "/disaggregation/breakdown",
                {"customer_id": PLAN["ids"][0], **PLAN["year"]},
            ),
            ("stall_propensity_batch", "/propensity/score", {"customer_ids": batch}),
            ("stall_churn_batch", "/churn/score", {"customer_ids": batch}),
            (
                "stall_dr_target_region",
                "/dr/target",
                {"target_kw": 1e6, "event_id": PLAN["event_id"]},
            ),
        ]
        self.heavy = itertools.cycle(
            h for k, h in zip(kinds, heavy, strict=True) if k in PLAN["kinds"]
        )

    @task
    def heavy_request(self) -> None:
        name, path, body = next(self.heavy)
        _post(self, name, path, body)


if os.environ.get("WATTWISE_BENCH_LOAD_STALLS") != "1":
    del Stall  # locust runs every user class the file defines
