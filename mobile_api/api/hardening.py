"""HTTP hardening around the whole app, as one ASGI middleware.

* Production keeps operational endpoints private: `/metrics` and `/readyz` need
  `Authorization: Bearer <CDAT_OPS_TOKEN>` (and are not served without one configured);
  the API docs and schema are not served unless `CDAT_PUBLIC_DOCS=true`. `/healthz` stays
  open for load balancers.
* Redirects never send a client to the host its Host header named: Starlette builds the
  trailing-slash redirect from that header, so an absolute `Location` on the request's own
  host is rewritten to a path.
"""

from __future__ import annotations

import hmac
from urllib.parse import urlsplit

from starlette.datastructures import Headers, MutableHeaders
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from cdat.settings import Settings
from mobile_api.errors import error_response

OPS_PATHS = frozenset({"/metrics", "/readyz"})
# Whatever serves them (FastAPI's defaults or routes of our own with local assets).
DOCS_PATHS = frozenset({"/docs", "/redoc", "/openapi.json", "/docs-assets"})


class Hardening:
    def __init__(self, app: ASGIApp, settings: Settings, docs_paths: frozenset[str]) -> None:
        self.app = app
        self.production = settings.environment == "production"
        self.ops_token = settings.ops_token
        hide = self.production and not settings.public_docs
        self.hidden_docs = DOCS_PATHS | docs_paths if hide else frozenset()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        path = scope["path"].rstrip("/") or "/"
        if path in self.hidden_docs or any(path.startswith(f"{p}/") for p in self.hidden_docs):
            await error_response(404, "not_found", "Not Found")(scope, receive, send)
            return
        if self.production and path in OPS_PATHS and not self._operator(scope):
            await error_response(404, "not_found", "Not Found")(scope, receive, send)
            return
        await self.app(scope, receive, _relative_redirects(scope, send))

    def _operator(self, scope: Scope) -> bool:
        if not self.ops_token:
            return False
        sent = Headers(scope=scope).get("authorization", "")
        return hmac.compare_digest(sent.encode(), f"Bearer {self.ops_token}".encode())


def _relative_redirects(scope: Scope, send: Send) -> Send:
    host = Headers(scope=scope).get("host", "")

    async def sending(message: Message) -> None:
        if message["type"] == "http.response.start" and 300 <= message["status"] < 400:
            headers = MutableHeaders(scope=message)
            target = urlsplit(headers.get("location", ""))
            if target.scheme and target.netloc == host:
                headers["location"] = target.path + (f"?{target.query}" if target.query else "")
        await send(message)

    return sending
