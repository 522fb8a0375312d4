"""Bodies over their limit are refused with 413 early, and uploads by strangers before a byte."""

from __future__ import annotations

import gc
import json
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import anyio
import psutil
import pytest
from fastapi.testclient import TestClient

from tests.conftest import make_settings, open_claim, serving

CHUNK = 64 * 1024


@dataclass
class Sent:
    """What a client streamed to the app, and what the app answered."""

    offered: int
    read: int = 0
    status: int = 0
    body: bytes = b""
    headers: dict[str, str] = field(default_factory=dict)

    @property
    def error(self) -> dict[str, Any]:
        return dict(json.loads(self.body)["error"])


def stream(
    client: TestClient,
    path: str,
    size: int,
    headers: dict[str, str],
    *,
    declare_length: bool = True,
    prefix: bytes = b"",
    method: str = "POST",
) -> Sent:
    """Call the ASGI app directly with a body of `size` bytes sent in 64 KiB chunks,
    `prefix` first."""
    sent = Sent(offered=size)
    raw = [(k.lower().encode(), v.encode()) for k, v in headers.items()]
    if declare_length:
        raw.append((b"content-length", str(size).encode()))
    scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": method,
        "scheme": "http",
        "path": path,
        "raw_path": path.encode(),
        "query_string": b"",
        "root_path": "",
        "headers": raw,
        "client": ("127.0.0.1", 5000),
        "server": ("testserver", 80),
        "state": {},
    }
    chunk = b"x" * CHUNK

    async def receive() -> dict[str, Any]:
        if sent.read >= size:
            await anyio.sleep(3600)  # the client waits for the answer
        part = (prefix if sent.read == 0 else b"") + chunk[: size - sent.read - len(prefix)]
        sent.read += len(part)
        return {"type": "http.request", "body": part, "more_body": sent.read < size}

    async def send(message: dict[str, Any]) -> None:
        if message["type"] == "http.response.start":
            sent.status = message["status"]
            sent.headers = {k.decode(): v.decode() for k, v in message["headers"]}
        elif message["type"] == "http.response.body":
            sent.body += message.get("body", b"")

    async def call() -> None:
        with anyio.fail_after(20):
            await client.app(scope, receive, send)  # type: ignore[arg-type]

    client.portal.call(call)  # type: ignore[union-attr]
    return sent


def json_stream(client: TestClient, size: int) -> Sent:
    """A JSON claim body of `size` bytes, streamed without a declared length."""
    json_type = {"content-type": "application/json"}
    return stream(client, "/v1/claims", size, json_type, declare_length=False)


@pytest.fixture
def small(tmp_path: Path) -> Iterator[TestClient]:
    """A service whose JSON bodies stop at 64 KiB and whose uploads stop at 1 MiB."""
    settings = make_settings(
        tmp_path, max_body_bytes=64 * 1024, max_upload_bytes=256 * 1024, max_photos_per_request=4
    )
    with serving(settings) as client:
        yield client


def test_declared_oversize_json_is_refused_before_reading(small: TestClient) -> None:
    # when a client declares a 200 MB JSON body
    sent = stream(small, "/v1/claims", 200 * 1024 * 1024, {"content-type": "application/json"})
    # then it gets 413 having sent nothing
    assert sent.status == 413
    assert sent.error["code"] == "payload_too_large"
    assert sent.read == 0


def test_undeclared_oversize_json_is_cut_off_at_the_limit(small: TestClient) -> None:
    # when a client streams a 200 MB JSON body without a length
    sent = json_stream(small, 200 * 1024 * 1024)
    # then it gets 413 once the bytes pass the 64 KiB limit
    assert sent.status == 413
    assert sent.read <= 64 * 1024 + CHUNK


def test_uploads_without_credentials_are_refused_before_a_byte(small: TestClient) -> None:
    claim_id, headers = open_claim(small)
    multipart = {"content-type": "multipart/form-data; boundary=xyz"}
    path = f"/v1/claims/{claim_id}/photos"
    # when strangers upload 1.5 GB: no token, a wrong token
    anonymous = stream(small, path, 1536 * 1024 * 1024, multipart)
    forged = stream(
        small, path, 1536 * 1024 * 1024, {**multipart, "authorization": "Bearer cdat_claim_nope"}
    )
    # and a stranger's replacement of one photo, the other route that takes photos
    replacing = stream(small, f"{path}/some-photo", 1536 * 1024 * 1024, multipart, method="PUT")
    # then each is refused without the body being read
    assert (anonymous.status, forged.status, replacing.status) == (401, 401, 401)
    assert anonymous.read == forged.read == replacing.read == 0
    # and the owner's upload over the request limit is a 413, read no further than the limit
    file_part = (
        b'--xyz\r\nContent-Disposition: form-data; name="files"; filename="a.jpg"\r\n'
        b"Content-Type: image/jpeg\r\n\r\n"
    )
    owner = stream(
        small,
        path,
        64 * 1024 * 1024,
        {**multipart, **headers},
        declare_length=False,
        prefix=file_part,
    )
    assert owner.status == 413
    assert owner.read <= 4 * 256 * 1024 + 64 * 1024 + CHUNK


def test_memory_stays_flat_under_a_huge_json_body(small: TestClient) -> None:
    # given the process's resident memory
    gc.collect()
    before = psutil.Process().memory_info().rss
    # when a 256 MB JSON body is streamed at the API, without a length
    sent = json_stream(small, 256 * 1024 * 1024)
    grown = psutil.Process().memory_info().rss - before
    # then it is refused and memory grew by far less than the body
    assert sent.status == 413
    assert grown < 16 * 1024 * 1024, f"grew {grown / 2**20:.0f} MiB"
