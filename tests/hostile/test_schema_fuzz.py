"""Schemathesis over the app's own OpenAPI schema, as a policyholder and as an adjuster.

Every generated request (valid and deliberately invalid ones) must get a non-5xx answer that
conforms to the schema: documented status, content type, body shape and headers.
More examples per operation: CDAT_SCHEMA_EXAMPLES=200 (default 25).
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from dataclasses import dataclass

import pytest
import schemathesis
from hypothesis import HealthCheck, given
from hypothesis import settings as hypothesis_settings
from hypothesis.errors import Unsatisfiable
from schemathesis import GenerationMode
from schemathesis.checks import positive_data_acceptance
from schemathesis.core.failures import FailureGroup
from schemathesis.core.result import Ok
from schemathesis.core.transport import Response

from mobile_api.auth import Role
from mobile_api.claims.service import create_staff
from tests import images
from tests.hostile.service import CASES_RUN, Service, assess_in_process, hostile_service, new_claim
from tests.live import settings_on


@dataclass(frozen=True)
class Callers:
    claim_id: str
    photo_id: str
    policyholder: dict[str, str]
    staff: dict[str, str]


@pytest.fixture(scope="module")
def service(tmp_path_factory: pytest.TempPathFactory, backend: str) -> Iterator[Service]:
    # A short long-poll cap: generated `wait` values must not stall the run.
    tmp = tmp_path_factory.mktemp("schema")
    with (
        settings_on(backend, tmp, long_poll_max_seconds=0.2) as settings,
        hostile_service(settings) as running,
    ):
        yield running


@pytest.fixture(scope="module")
def callers(service: Service) -> Callers:
    """A claim with a photo and an assessment, so generated requests can reach real data."""
    claim_id, headers = new_claim(service)
    files = [("files", ("a.jpg", images.jpeg(), "image/jpeg"))]
    uploaded = service.client.post(f"/v1/claims/{claim_id}/photos", files=files, headers=headers)
    assert uploaded.status_code == 201, uploaded.text
    assert assess_in_process(service, claim_id, headers).state == "succeeded"
    _, staff_token = create_staff(service.runtime, "fuzz@example.com", Role.ADJUSTER)
    return Callers(
        claim_id=claim_id,
        photo_id=uploaded.json()["photos"][0]["id"],
        policyholder=headers,
        staff={"Authorization": f"Bearer {staff_token}"},
    )


def examples_per_operation() -> int:
    return int(os.environ.get("CDAT_SCHEMA_EXAMPLES", "25"))


def own_ids(case: schemathesis.Case, callers: Callers) -> None:
    """Point the generated path at the caller's real claim (and photo), to get past 403/404."""
    if case.path_parameters and "claim_id" in case.path_parameters:
        case.path_parameters["claim_id"] = callers.claim_id
    if case.path_parameters and "photo_id" in case.path_parameters:
        case.path_parameters["photo_id"] = callers.photo_id


def fuzz_operations(service: Service, callers: Callers, mode: GenerationMode) -> list[str]:
    schema = schemathesis.openapi.from_asgi("/openapi.json", service.client.app)
    failures: list[str] = []
    for result in schema.get_all_operations():
        if not isinstance(result, Ok):
            failures.append(f"the schema has an invalid operation: {result.err()}")
            continue
        operation = result.ok()

        @hypothesis_settings(
            max_examples=examples_per_operation(),
            deadline=None,
            database=None,
            suppress_health_check=list(HealthCheck),
        )
        @given(case=operation.as_strategy(generation_mode=mode))
        def run(case: schemathesis.Case) -> None:
            as_staff = case.call(headers=callers.staff)
            _validate(case, as_staff, failures, "adjuster")
            own_ids(case, callers)
            as_owner = case.call(headers=callers.policyholder)
            _validate(case, as_owner, failures, "policyholder")
            CASES_RUN[f"schemathesis {mode.value} requests"] += 2

        try:
            run()
        except Unsatisfiable:  # e.g. no negative request exists for an operation without inputs
            CASES_RUN[f"schemathesis {mode.value}: operations with nothing to generate"] += 1
    return failures


def _validate(case: schemathesis.Case, response: Response, failures: list[str], who: str) -> None:
    try:
        # Not `positive_data_acceptance`: the schema cannot say "loss_date not in the future"
        # or "the bytes must be a photo", so schema-valid requests are rightly refused.
        case.validate_response(response, excluded_checks=[positive_data_acceptance])
    except FailureGroup as group:
        for failure in group.exceptions:
            line = f"{who} {case.method} {case.path} -> {response.status_code}: {failure.title}"
            if not any(known.startswith(line) for known in failures):
                detail = f"{failure.message[:400]} | body: {response.content[:300]!r}"
                failures.append(f"{line}\n    {detail}\n    {case.as_curl_command()}")


@pytest.mark.slow
@pytest.mark.parametrize("mode", [GenerationMode.POSITIVE, GenerationMode.NEGATIVE])
def test_api_conforms_to_its_schema_under_generated_requests(
    service: Service, callers: Callers, mode: GenerationMode
) -> None:
    # given the app's schema and two kinds of caller; when every operation is fuzzed
    failures = fuzz_operations(service, callers, mode)
    # then no answer is a server error or breaks the schema
    assert not failures, "\n".join(failures)
