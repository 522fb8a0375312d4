"""Hostile uploads: every file is either taken and assessed without a worker crash, or
refused with a 4xx and nothing stored. Never a 5xx.

Default run: the generated corpus plus a few hundred random mutations of valid images.
More mutations: CDAT_FUZZ_EXAMPLES=5000 (the `heavy` test runs 3000 when opted in).
"""

from __future__ import annotations

import io
import os
from collections.abc import Iterator
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given
from hypothesis import settings as hypothesis_settings
from hypothesis import strategies as st
from PIL import Image

from mobile_api.queues import jobs
from tests import images
from tests.conftest import make_settings
from tests.hostile import corpus
from tests.hostile.service import (
    CASES_RUN,
    Service,
    assess_in_process,
    hostile_service,
    new_claim,
    stored_state,
    upload_one,
)
from tests.live import settings_on

MAX_UPLOAD_BYTES = 2 * 1024 * 1024
MAX_PIXELS = 4_000_000
HANDLED_STATUSES = {201, 413, 415, 422}
CASES = corpus.all_cases()


@pytest.fixture(scope="module")
def service(tmp_path_factory: pytest.TempPathFactory, backend: str) -> Iterator[Service]:
    tmp = tmp_path_factory.mktemp("hostile")
    limits = {"max_upload_bytes": MAX_UPLOAD_BYTES, "max_image_pixels": MAX_PIXELS}
    with settings_on(backend, tmp, **limits) as settings, hostile_service(settings) as running:
        yield running


def check_upload(service: Service, name: str, data: bytes, allowed: set[int]) -> int:
    """Upload one file to a fresh claim and check the promises for whatever answer comes."""
    claim_id, headers = new_claim(service)
    before = stored_state(service)
    status, body = upload_one(service, claim_id, headers, name, data)
    assert status < 500, f"{name}: server error {status}: {body}"
    assert status in allowed, f"{name}: {status} not in {sorted(allowed)}: {body}"
    if status != 201:
        assert set(body) == {"error"} and body["error"]["code"], body
        assert stored_state(service) == before, f"{name}: a refused upload changed stored data"
        return status
    photo_id = body["photos"][0]["id"] if body["photos"] else body["duplicates"][0]
    served = service.client.get(f"/v1/claims/{claim_id}/photos/{photo_id}", headers=headers)
    assert served.status_code == 200
    assert served.headers["content-type"] in corpus_types()
    job = assess_in_process(service, claim_id, headers)
    assert job.state == jobs.SUCCEEDED, (
        f"{name}: job {job.state} {job.error_code}: {job.error_message}"
    )
    return status


def corpus_types() -> set[str]:
    return {"image/jpeg", "image/png", "image/webp"}


@pytest.mark.parametrize("case", CASES, ids=[case.name for case in CASES])
def test_hostile_file_is_handled_cleanly(service: Service, case: corpus.HostileFile) -> None:
    # given a hostile file; when it is uploaded; then it is refused cleanly or assessed
    check_upload(service, case.name, case.data, set(case.allowed))
    CASES_RUN["generated hostile files"] += 1


def test_oversized_file_is_refused_before_anything_is_stored(service: Service) -> None:
    # given a valid JPEG padded past the per-photo limit with a trailing comment-like tail
    data = images.jpeg() + b"\x00" * MAX_UPLOAD_BYTES
    # when / then: 413, nothing stored
    assert check_upload(service, "huge.jpg", data, {413}) == 413
    CASES_RUN["generated hostile files"] += 1


@pytest.mark.parametrize("bad", ["photo.heic", "png-100k-square.png", "jpeg-trunc-half"])
def test_one_bad_file_spoils_the_whole_request(service: Service, bad: str) -> None:
    # given a request with two good photos and one hostile file
    hostile = next(case for case in CASES if case.name == bad)
    claim_id, headers = new_claim(service)
    files = [
        ("files", ("good1.jpg", images.jpeg(color=(1, 2, 3)), "image/jpeg")),
        ("files", (hostile.name, hostile.data, "image/jpeg")),
        ("files", ("good2.jpg", images.jpeg(color=(4, 5, 6)), "image/jpeg")),
    ]
    before = stored_state(service)
    # when it is sent
    response = service.client.post(f"/v1/claims/{claim_id}/photos", files=files, headers=headers)
    # then it is refused as a whole: not even the good photos are kept
    assert response.status_code in hostile.allowed - {201}
    assert stored_state(service) == before
    CASES_RUN["mixed good/hostile requests"] += 1


# --- random mutations of valid images -----------------------------------------------------


def _bases() -> dict[str, bytes]:
    return {
        "jpeg": corpus.noisy_jpeg(96, 80),
        "png": images.png(80, 80, "RGB"),
        "webp": corpus.webp(96, 80),
    }


BASES = _bases()

Mutation = tuple[str, int, bytes]
mutation = st.tuples(
    st.sampled_from(["flip", "overwrite", "insert", "delete", "truncate", "duplicate"]),
    st.integers(min_value=0, max_value=10**6),
    st.binary(min_size=1, max_size=16),
)


def mutate(data: bytes, steps: list[Mutation]) -> bytes:
    out = bytearray(data)
    for kind, position, payload in steps:
        if not out:
            break
        at = position % len(out)
        if kind == "flip":
            out[at] ^= 1 << (payload[0] % 8)
        elif kind == "overwrite":
            out[at : at + len(payload)] = payload
        elif kind == "insert":
            out[at:at] = payload
        elif kind == "delete":
            del out[at : at + 1 + payload[0] % 64]
        elif kind == "truncate":
            del out[max(at, 1) :]
        else:
            out[at:at] = out[at : at + 1 + payload[0] % 256]
    return bytes(out)


def fuzz_examples() -> int:
    return int(os.environ.get("CDAT_FUZZ_EXAMPLES", "250"))


def run_mutations(service: Service, examples: int) -> None:
    @hypothesis_settings(
        max_examples=examples,
        deadline=None,
        database=None,
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
    )
    @given(base=st.sampled_from(sorted(BASES)), steps=st.lists(mutation, min_size=1, max_size=6))
    def one(base: str, steps: list[Mutation]) -> None:
        data = mutate(BASES[base], steps)
        check_upload(service, f"mutant.{base}", data, HANDLED_STATUSES)
        CASES_RUN["hypothesis byte mutations"] += 1

    one()


def test_random_mutations_of_valid_images(service: Service) -> None:
    # given valid JPEG/PNG/WebP photos mutated at random; when uploaded; then handled cleanly
    run_mutations(service, fuzz_examples())


@pytest.mark.heavy
def test_many_random_mutations(service: Service) -> None:
    run_mutations(service, 3000)


def test_mutation_helper_changes_the_bytes() -> None:
    # the fuzzer is only worth something if its mutants differ from the originals
    base = BASES["png"]
    assert mutate(base, [("flip", 40, b"\x03")]) != base
    assert len(mutate(base, [("truncate", 50, b"\x00")])) == 50
    assert Image.open(io.BytesIO(base)).size == (80, 80)


# --- the real inference pipeline, where models are promoted ------------------------------


@pytest.fixture(scope="module")
def real_service(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Service]:
    settings = make_settings(
        tmp_path_factory.mktemp("hostile-real"),
        analyzer="inference.loading:build_analyzer",
        max_upload_bytes=MAX_UPLOAD_BYTES,
        max_image_pixels=MAX_PIXELS,
    )
    registry = Path(settings.model_dir) / "registry.json"
    if not registry.exists():
        pytest.skip(f"no promoted models ({registry} is missing): real-model fuzz not run")
    with hostile_service(settings) as running:
        reason = running.runtime.try_load_analyzer()
        if reason:
            pytest.skip(f"the real analyzer cannot load: {reason}")
        yield running


ACCEPTED = [case for case in CASES if 201 in case.allowed]


@pytest.mark.slow
@pytest.mark.parametrize("case", ACCEPTED, ids=[case.name for case in ACCEPTED])
def test_real_models_survive_accepted_hostile_files(
    real_service: Service, case: corpus.HostileFile
) -> None:
    check_upload(real_service, case.name, case.data, set(case.allowed))
    CASES_RUN["real-model hostile files"] += 1
