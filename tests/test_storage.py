"""Blob storage: the local directory and S3 (moto's in-process S3) behave alike."""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from pathlib import Path

import boto3
import pytest
from moto import mock_aws

from mobile_api.errors import StorageError
from mobile_api.storage.blobs import BlobStore, LocalBlobStore, S3BlobStore


@pytest.fixture(params=["local", "s3"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[BlobStore]:
    if request.param == "local":
        yield LocalBlobStore(tmp_path / "blobs")
        return
    with mock_aws():
        client = boto3.client("s3", region_name="us-east-1")
        client.create_bucket(Bucket="claims")
        yield S3BlobStore(client, "claims")


def test_content_addressed_round_trip(store: BlobStore) -> None:
    data = b"\xff\xd8\xff photo bytes"
    key = hashlib.sha256(data).hexdigest()
    assert not store.exists(key)
    store.put(key, data, "image/jpeg")
    store.put(key, data, "image/jpeg")  # a second upload of the same photo is a no-op
    assert store.exists(key)
    assert store.get(key) == data
    store.check()


def test_blobs_stream_in_chunks_with_their_size(store: BlobStore) -> None:
    # given a blob of several chunks
    data = bytes(range(256)) * 1000
    key = hashlib.sha256(data).hexdigest()
    store.put(key, data, "image/png")
    # when it is streamed
    blob = store.stream(key)
    chunks = list(blob.chunks)
    # then it comes in bounded chunks that add up to it
    assert blob.size == len(data)
    assert len(chunks) > 1 and max(len(c) for c in chunks) <= 64 * 1024
    assert b"".join(chunks) == data


def test_bad_keys_and_missing_blobs_are_storage_errors(store: BlobStore) -> None:
    with pytest.raises(StorageError, match="not a SHA-256"):
        store.get("../../etc/passwd")
    with pytest.raises(StorageError):
        store.get("0" * 64)
    with pytest.raises(StorageError):  # before a response has started, not halfway through
        store.stream("0" * 64)


def test_unusable_directory_fails_cleanly(tmp_path: Path) -> None:
    # a path through a regular file can never be created, even by root
    (tmp_path / "not-a-dir").write_text("x")
    store = LocalBlobStore(tmp_path / "not-a-dir" / "blobs")
    with pytest.raises(StorageError, match="could not store"):
        store.put("a" * 64, b"x", "image/jpeg")
    with pytest.raises(StorageError, match="not writable"):
        store.check()
    assert not store.exists("a" * 64)


def test_unavailable_bucket_fails_readiness() -> None:
    with mock_aws():
        client = boto3.client("s3", region_name="us-east-1")
        with pytest.raises(StorageError, match="unavailable"):
            S3BlobStore(client, "no-such-bucket").check()
