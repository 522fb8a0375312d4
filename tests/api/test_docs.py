"""The interactive docs work without the internet."""

from __future__ import annotations

import re

from fastapi.testclient import TestClient


def test_docs_and_redoc_load_every_asset_from_the_service_itself(client: TestClient) -> None:
    for page in ("/docs", "/redoc"):
        # given the docs page
        html = client.get(page)
        assert html.status_code == 200
        # then every script, stylesheet and icon it loads is served by the API, not a CDN
        assets = re.findall(r'(?:src|href)\s*=\s*["\']([^"\']+)["\']', html.text)
        assets += re.findall(r"url:\s*'([^']+)'", html.text)
        assert assets, page
        for url in assets:
            assert url.startswith("/"), f"{page} loads {url} from elsewhere"
            assert client.get(url).status_code == 200, url
