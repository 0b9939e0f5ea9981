"""The shared upstream client keeps no cookies: one client serves every tenant, so a cookie an
upstream sets (vendors' CDNs do) must never be sent on anyone's next call."""

from __future__ import annotations

from aiohttp import web

from adapters.providers.http import build_http_client


async def test_a_cookie_an_upstream_sets_is_never_sent_back() -> None:
    seen: list[str | None] = []

    async def answer(request: web.Request) -> web.Response:
        seen.append(request.headers.get("cookie"))
        response = web.json_response({"ok": True})
        response.set_cookie("__cf_bm", "tenant-a-session", path="/")
        return response

    app = web.Application()
    app.router.add_post("/v1/messages", answer)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    try:
        async with build_http_client() as client:
            for _ in range(3):
                response = await client.post(f"http://127.0.0.1:{port}/v1/messages", json={})
                assert response.status_code == 200
                assert "set-cookie" in response.headers  # the upstream did set one
            assert len(client.cookies) == 0
    finally:
        await runner.cleanup()
    assert seen == [None, None, None]
