"""The console is served by the gateway itself: `/` redirects to `/console/`, the page and its
assets come from the package with a strict Content-Security-Policy, and a missing asset is a
clear 404 in our error shape."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from litestar.testing import AsyncTestClient

from app.factory import create_app
from app.settings import Settings

CONSOLE = Path(__file__).resolve().parents[2] / "app" / "http" / "console"


async def test_the_console_is_served_with_a_strict_csp(tmp_path: Any) -> None:
    app = create_app(Settings(database_url=f"sqlite:///{tmp_path}/a.db",
                              signing_key_file=str(tmp_path / "signing.key")))
    async with AsyncTestClient(app=app) as client:
        root = await client.get("/", follow_redirects=False)
        assert root.status_code == 302
        assert root.headers["location"] == "/console/"
        page = await client.get("/console/")
        assert page.status_code == 200
        assert page.headers["content-type"].startswith("text/html")
        csp = page.headers["content-security-policy"]
        assert "script-src 'self'" in csp
        assert "connect-src 'self'" in csp
        assert "unsafe-inline" not in csp
        assert page.headers["x-content-type-options"] == "nosniff"
        for asset in re.findall(r'(?:src|href)="(/console/[^"]+)"', page.text):
            response = await client.get(asset)
            assert response.status_code == 200, asset
        for module in sorted((CONSOLE / "js").rglob("*.js")):
            path = "/console/" + str(module.relative_to(CONSOLE))
            response = await client.get(path)
            assert response.status_code == 200, path
            assert "javascript" in response.headers["content-type"], path
        missing = await client.get("/console/js/nope.js")
        assert missing.status_code == 404
        assert missing.json()["error"]["type"] == "not_found_error"
