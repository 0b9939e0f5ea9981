"""The console: static HTML, CSS and JavaScript from the package (`app/http/console/`), served
at `/console/`, with `/` redirecting there. No build step, no CDN, no server session: the page
signs in with a pasted API key kept in the tab's sessionStorage and reads the same public
endpoints any dashboard would.

The pages get a strict Content-Security-Policy (only this origin's scripts, styles and API),
so even a hostile string in a model name or agent name cannot run script in the console.
"""

from __future__ import annotations

from pathlib import Path
from typing import Final

from litestar import Response, Router, get
from litestar.handlers import HTTPRouteHandler
from litestar.response import Redirect
from litestar.static_files import create_static_files_router

CONSOLE_DIR: Final = Path(__file__).resolve().parent.parent / "console"
CSP: Final = (
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "connect-src 'self'; font-src 'self'; form-action 'none'; base-uri 'none'; "
    "frame-ancestors 'none'"
)
SECURITY_HEADERS: Final = {
    "content-security-policy": CSP,
    "x-content-type-options": "nosniff",
    "referrer-policy": "no-referrer",
    "x-frame-options": "DENY",
}


async def _harden(response: Response[object]) -> Response[object]:
    response.headers.update(SECURITY_HEADERS)
    return response


@get("/", include_in_schema=False)
async def root() -> Redirect:
    return Redirect(path="/console/", status_code=302)


console_files = create_static_files_router(
    path="/console", directories=[CONSOLE_DIR], html_mode=True, name="console",
    after_request=_harden,
)

ROUTES: list[HTTPRouteHandler | Router] = [root, console_files]
