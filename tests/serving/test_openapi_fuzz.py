"""Schemathesis over every operation of ``/docs.json`` on the fixture's real service.

Bounded for CI: a fixed seed, no example database, ``EXAMPLES`` generated cases per
operation (schema-valid and schema-violating bodies), alternately on our dispatch and on
BentoML's own path. (Schemathesis' pytest plugin needs pytest < 9: the operations are run
from one test here.) Any 5xx, any response whose status the document does not declare, or
whose body or content type does not match what it declares, fails the test. Then the server
log is searched for every customer id the fuzzer sent. (Runs before test_service.py, whose
last test kills the server.)
"""

from __future__ import annotations

import itertools
import logging
from collections import Counter
from typing import Any

import hypothesis
import pytest
import schemathesis
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from tests.serving.conftest import ADMIN_KEY, Service

pytestmark = [pytest.mark.integration]
log = logging.getLogger(__name__)
EXAMPLES = 80
CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_schema_conformance,
]
CASES: Counter[tuple[str, int]] = Counter()  # (operation, status) of every case sent
SENT_IDS: set[str] = set()  # customer ids the fuzzer sent (long enough to search a log for)
_turn = itertools.count()


def customer_ids(body: Any) -> list[str]:
    """Every string under a ``customer_id``/``customer_ids`` key of a request body."""
    out: list[str] = []
    if isinstance(body, dict):
        for k, v in body.items():
            if k in ("customer_id", "customer_ids"):
                items = v if isinstance(v, list) else [v]
                out += [x for x in items if isinstance(x, str)]
            else:
                out += customer_ids(v)
    elif isinstance(body, list):
        for v in body:
            out += customer_ids(v)
    return out


def searchable(cid: str) -> bool:
    """Long and varied enough that finding it in the log means it was logged (not "0000"
    of a timestamp)."""
    return len(cid) >= 8 and len(set(cid)) >= 4


def fuzz(operation: Any) -> None:
    """``EXAMPLES`` cases of one operation, valid and invalid; raises on the first finding
    (shrunk to a minimal case)."""
    from hypothesis import strategies as st

    modes = (schemathesis.GenerationMode.POSITIVE, schemathesis.GenerationMode.NEGATIVE)

    @hypothesis.seed(21)
    @hypothesis.settings(
        max_examples=EXAMPLES,
        deadline=None,
        database=None,
        suppress_health_check=list(hypothesis.HealthCheck),
    )
    @hypothesis.given(case=st.one_of(*(operation.as_strategy(generation_mode=m) for m in modes)))
    def run(case: Any) -> None:
        headers = {"authorization": f"Bearer {ADMIN_KEY}"}
        if next(_turn) % 2:
            headers["x-wattwise-dispatch"] = "bentoml"
        SENT_IDS.update(c for c in customer_ids(case.body) if searchable(c))
        response = case.call_and_validate(headers=headers, checks=CHECKS, timeout=60)
        CASES[(operation.label, response.status_code)] += 1

    run()


BREAKDOWN = "POST /disaggregation/breakdown"


@pytest.mark.parametrize(
    "only",
    [
        pytest.param(None, id="every-other-operation"),
        pytest.param(BREAKDOWN, id="breakdown"),
    ],
)
def test_every_operation_answers_as_its_document_says(service: Service, only: str | None) -> None:
    schema = schemathesis.openapi.from_url(service.url + "/docs.json")
    findings, tested = {}, []
    for result in schema.get_all_operations():
        operation = result.ok()  # the document itself must be valid: an error raises here
        if (operation.label == BREAKDOWN) != (only == BREAKDOWN):
            continue
        tested.append(operation.label)
        try:
            fuzz(operation)
        except (Exception, BaseExceptionGroup) as exc:  # a finding, with its curl to reproduce
            findings[operation.label] = str(exc)[:3000]
    # every route of every kind, the admin and probe routes
    assert len(tested) >= (1 if only else 10), tested
    counts = sorted((k, n) for k, n in CASES.items() if k[0] in tested)
    log.info("schemathesis: %d cases, %s", sum(n for _, n in counts), counts)
    print(f"schemathesis: {sum(n for _, n in counts)} cases", counts)
    for label in tested:  # each POST got its examples (a probe without inputs: one)
        sent = sum(n for (op, _), n in CASES.items() if op == label)
        assert sent >= (EXAMPLES // 2 if label.startswith("POST") else 1), (label, sent)
    assert findings == {}, "\n\n".join(f"{k}:\n{v}" for k, v in findings.items())


def test_the_fuzz_run_logged_no_customer_id(service: Service) -> None:
    log_text = service.server.log_path.read_text(errors="replace")  # type: ignore[attr-defined]
    assert len(SENT_IDS) > 20, SENT_IDS  # the fuzz run sent ids to look for
    leaked = sorted(c for c in SENT_IDS if c in log_text)
    assert leaked == [], leaked[:20]
