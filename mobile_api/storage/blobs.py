"""Blob storage behind one interface: a local directory by default, S3-compatible by setting.

Blobs are content-addressed: the key is the SHA-256 of the bytes, so the same photo
is stored once however often it is uploaded.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO, Protocol

from cdat.settings import Settings
from mobile_api.errors import StorageError

CHUNK_BYTES = 64 * 1024


@dataclass(frozen=True)
class Blob:
    size: int
    chunks: Iterator[bytes]


class BlobStore(Protocol):
    def put(self, sha256: str, data: bytes, content_type: str) -> None: ...

    def get(self, sha256: str) -> bytes: ...

    def stream(self, sha256: str) -> Blob:
        """The blob opened for reading in chunks: StorageError now, not halfway through."""
        ...

    def exists(self, sha256: str) -> bool: ...

    def check(self) -> None:
        """Raise StorageError if the store cannot be used right now."""
        ...


def _check_key(sha256: str) -> None:
    if len(sha256) != 64 or any(c not in "0123456789abcdef" for c in sha256):
        raise StorageError(f"not a SHA-256 blob key: {sha256!r}")


class LocalBlobStore:
    def __init__(self, root: Path) -> None:
        self.root = root

    def _path(self, sha256: str) -> Path:
        _check_key(sha256)
        return self.root / sha256[:2] / sha256[2:4] / sha256

    def put(self, sha256: str, data: bytes, content_type: str) -> None:
        path = self._path(sha256)
        if path.exists():
            return
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            # Write then rename so a crash or a full disk never leaves a half blob under its key.
            fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".upload-")
            with os.fdopen(fd, "wb") as handle:
                handle.write(data)
                handle.flush()
                os.fsync(handle.fileno())
            os.replace(tmp, path)
        except OSError as exc:
            raise StorageError(f"could not store blob: {exc.strerror or exc}") from exc

    def get(self, sha256: str) -> bytes:
        try:
            return self._path(sha256).read_bytes()
        except OSError as exc:
            raise StorageError(f"could not read blob {sha256[:12]}: {exc.strerror}") from exc

    def stream(self, sha256: str) -> Blob:
        path = self._path(sha256)
        try:
            handle = path.open("rb")
            size = os.fstat(handle.fileno()).st_size
        except OSError as exc:
            raise StorageError(f"could not read blob {sha256[:12]}: {exc.strerror}") from exc
        return Blob(size, _read_chunks(handle))

    def exists(self, sha256: str) -> bool:
        return self._path(sha256).is_file()

    def check(self) -> None:
        try:
            self.root.mkdir(parents=True, exist_ok=True)
            probe = self.root / ".probe"
            probe.write_bytes(b"ok")
            probe.unlink()
        except OSError as exc:
            raise StorageError(f"blob directory {self.root} is not writable: {exc}") from exc


class S3BlobStore:
    def __init__(self, client: Any, bucket: str) -> None:
        self.client = client
        self.bucket = bucket

    @classmethod
    def from_settings(cls, settings: Settings) -> S3BlobStore:
        import boto3

        client = boto3.client(
            "s3",
            endpoint_url=settings.s3_endpoint_url,
            region_name=settings.s3_region,
            aws_access_key_id=settings.s3_access_key_id,
            aws_secret_access_key=settings.s3_secret_access_key,
        )
        return cls(client, settings.s3_bucket)

    def _key(self, sha256: str) -> str:
        _check_key(sha256)
        return f"photos/{sha256[:2]}/{sha256}"

    def put(self, sha256: str, data: bytes, content_type: str) -> None:
        if self.exists(sha256):
            return
        try:
            self.client.put_object(
                Bucket=self.bucket, Key=self._key(sha256), Body=data, ContentType=content_type
            )
        except Exception as exc:
            raise StorageError(f"could not store blob in s3://{self.bucket}: {exc}") from exc

    def get(self, sha256: str) -> bytes:
        try:
            response = self.client.get_object(Bucket=self.bucket, Key=self._key(sha256))
            body: bytes = response["Body"].read()
            return body
        except Exception as exc:
            raise StorageError(f"could not read blob {sha256[:12]} from s3: {exc}") from exc

    def stream(self, sha256: str) -> Blob:
        try:
            response = self.client.get_object(Bucket=self.bucket, Key=self._key(sha256))
        except Exception as exc:
            raise StorageError(f"could not read blob {sha256[:12]} from s3: {exc}") from exc
        return Blob(int(response["ContentLength"]), response["Body"].iter_chunks(CHUNK_BYTES))

    def exists(self, sha256: str) -> bool:
        from botocore.exceptions import ClientError

        try:
            self.client.head_object(Bucket=self.bucket, Key=self._key(sha256))
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") in ("404", "NoSuchKey", "NotFound"):
                return False
            raise StorageError(f"s3 head_object failed: {exc}") from exc
        except Exception as exc:
            raise StorageError(f"s3 unavailable: {exc}") from exc
        return True

    def check(self) -> None:
        try:
            self.client.head_bucket(Bucket=self.bucket)
        except Exception as exc:
            raise StorageError(f"s3 bucket {self.bucket} unavailable: {exc}") from exc


def _read_chunks(handle: BinaryIO) -> Iterator[bytes]:
    with handle:
        while chunk := handle.read(CHUNK_BYTES):
            yield chunk


def make_blob_store(settings: Settings) -> BlobStore:
    if settings.storage_backend == "s3":
        return S3BlobStore.from_settings(settings)
    return LocalBlobStore(settings.blob_dir)
