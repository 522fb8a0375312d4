"""Webhook payloads, signatures and delivery.

A receiver verifies `X-CDAT-Signature: t=<unix time>,v1=<hex>` where v1 is
HMAC-SHA256(secret, "<t>.<raw body>"), and rejects stale timestamps.
"""

from __future__ import annotations

import hashlib
import hmac
import ipaddress
import json
import socket
import time
from collections.abc import Sequence
from typing import Any
from urllib.parse import urlsplit

import httpx

from cdat.errors import CdatError


class WebhookRejected(CdatError):
    code = "webhook_url_not_allowed"


def sign(secret: str, body: bytes, timestamp: int) -> str:
    mac = hmac.new(secret.encode(), f"{timestamp}.".encode() + body, hashlib.sha256)
    return f"t={timestamp},v1={mac.hexdigest()}"


def verify(secret: str, body: bytes, header: str, *, tolerance_s: int = 300) -> bool:
    try:
        parts = dict(item.split("=", 1) for item in header.split(","))
        timestamp = int(parts["t"])
    except (ValueError, KeyError):
        return False
    if abs(time.time() - timestamp) > tolerance_s:
        return False
    return hmac.compare_digest(sign(secret, body, timestamp), header)


def encode(payload: dict[str, Any]) -> bytes:
    return json.dumps(payload, separators=(",", ":"), sort_keys=True).encode()


def check_destination(url: str, *, allow_private: bool, allowed_hosts: Sequence[str] = ()) -> None:
    """Refuse URLs that resolve to private, loopback, link-local or metadata addresses.

    Checked when the URL is registered and again before each delivery, so a name
    that later re-resolves to an internal address is still refused.
    """
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise WebhookRejected(f"webhook URL must be http(s) with a host: {url!r}")
    if allow_private or parts.hostname.lower() in {h.lower() for h in allowed_hosts}:
        return
    try:
        infos = socket.getaddrinfo(parts.hostname, parts.port or 443, proto=socket.IPPROTO_TCP)
    except socket.gaierror as exc:
        raise WebhookRejected(f"webhook host {parts.hostname!r} does not resolve") from exc
    for info in infos:
        address = ipaddress.ip_address(info[4][0])
        if not address.is_global:
            raise WebhookRejected(
                f"webhook host {parts.hostname!r} resolves to a non-public address ({address})"
            )


def deliver(url: str, secret: str, payload: dict[str, Any], *, timeout_s: float) -> int:
    """POST the signed payload; returns the HTTP status. Network errors raise httpx.HTTPError."""
    body = encode(payload)
    headers = {
        "Content-Type": "application/json",
        "X-CDAT-Signature": sign(secret, body, int(time.time())),
        "X-CDAT-Event": str(payload.get("event", "")),
    }
    response = httpx.post(url, content=body, headers=headers, timeout=timeout_s)
    return response.status_code
