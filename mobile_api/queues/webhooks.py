"""Webhook payloads, signatures and delivery.

A receiver verifies `X-CDAT-Signature: t=<unix time>,v1=<hex>` where v1 is
HMAC-SHA256(secret, "<t>.<raw body>"), and rejects stale timestamps.
"""

from __future__ import annotations

import hashlib
import hmac
import ipaddress
import json
import logging
import socket
import time
from collections.abc import Sequence
from typing import Any
from urllib.parse import urlsplit

import httpx

from cdat.errors import CdatError

log = logging.getLogger("cdat.webhooks")


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


# IPv6 forms that carry an IPv4 address inside: a public-looking v6 address that the host or
# a translator turns into a private v4 one (`[::127.0.0.1]`, NAT64, 6to4, Teredo, mapped).
EMBEDDED_IPV4 = tuple(
    ipaddress.ip_network(net)
    for net in (
        "::/96",
        "::ffff:0:0/96",
        "::ffff:0:0:0/96",
        "64:ff9b::/96",
        "64:ff9b:1::/48",
        "2002::/16",
        "2001::/32",
    )
)


def check_destination(
    url: str, *, allow_private: bool, allowed_hosts: Sequence[str] = ()
) -> tuple[str, ...]:
    """Refuse URLs that resolve to private, loopback, link-local or metadata addresses.

    Returns the addresses that passed, for `deliver` to connect to: resolving the name again
    when sending would let DNS rebinding swap in an internal address after the check. An
    empty tuple means no check applies (private addresses allowed, or an allowed host).
    """
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise WebhookRejected(f"webhook URL must be http(s) with a host: {url!r}")
    if allow_private or parts.hostname.lower() in {h.lower() for h in allowed_hosts}:
        return ()
    # One answer for every refusal: naming the address found (or that a name does not
    # resolve) would let anyone map the server's internal DNS through this check.
    not_allowed = (
        f"webhook host {parts.hostname!r} is not allowed: webhooks go only to public, "
        "resolvable internet addresses (non-public ones are refused)"
    )
    try:
        infos = socket.getaddrinfo(parts.hostname, parts.port or 443, proto=socket.IPPROTO_TCP)
    except socket.gaierror as exc:
        log.info("webhook host %r refused: it does not resolve", parts.hostname)
        raise WebhookRejected(not_allowed) from exc
    addresses = []
    for info in infos:
        address = ipaddress.ip_address(str(info[4][0]).partition("%")[0])
        if not address.is_global or _embeds_ipv4(address):
            log.info("webhook host %r refused: it resolves to %s", parts.hostname, address)
            raise WebhookRejected(not_allowed)
        addresses.append(str(address))
    return tuple(dict.fromkeys(addresses))


def _embeds_ipv4(address: ipaddress.IPv4Address | ipaddress.IPv6Address) -> bool:
    return address.version == 6 and any(address in net for net in EMBEDDED_IPV4)


def deliver(
    url: str,
    secret: str,
    payload: dict[str, Any],
    *,
    timeout_s: float,
    pinned: Sequence[str] = (),
) -> int:
    """POST the signed payload; returns the HTTP status. Network errors raise httpx.HTTPError.

    With `pinned` addresses, connects to the first one only, keeping the URL's host name for
    the Host header and for TLS (SNI and certificate check).
    """
    body = encode(payload)
    headers = {
        "Content-Type": "application/json",
        "X-CDAT-Signature": sign(secret, body, int(time.time())),
        "X-CDAT-Event": str(payload.get("event", "")),
    }
    target = httpx.URL(url)
    extensions: dict[str, Any] = {}
    if pinned:
        headers["Host"] = target.netloc.decode("ascii")
        extensions["sni_hostname"] = target.host
        target = target.copy_with(host=pinned[0])
    # No proxies from the environment: a proxy would connect wherever the name resolves.
    with httpx.Client(timeout=timeout_s, trust_env=False) as client:
        request = client.build_request(
            "POST", target, content=body, headers=headers, extensions=extensions
        )
        return client.send(request).status_code
