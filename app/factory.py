"""The composition root: `create_app(settings)` wires everything. Nothing does I/O at import
time; resources are opened in the lifespan and closed with it."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from litestar import Litestar
from litestar.openapi import OpenAPIConfig

from app.heap import settle_after_start
from app.http.access_log import access_log_middleware
from app.http.errors import EXCEPTION_HANDLERS
from app.http.middleware import request_id_middleware
from app.http.openapi.document import OpenAPIJson, OpenAPIReference
from app.http.routes.admin import ROUTES as ADMIN_ROUTES
from app.http.routes.console import ROUTES as CONSOLE_ROUTES
from app.http.routes.count_tokens import count_tokens
from app.http.routes.dashboard import agent_metrics, caps_rollup, inference_decision, usage_daily
from app.http.routes.discovery import agent_card, llms_txt
from app.http.routes.health import healthz, readyz
from app.http.routes.inference_calls import create_chat_completion, create_message
from app.http.routes.inferences import get_inference, list_inferences
from app.http.routes.ledger import ROUTES as LEDGER_ROUTES
from app.http.routes.metrics import metrics
from app.http.routes.models import list_models
from app.runtime import open_runtime
from app.settings import Settings
from app.startup import log_startup
from domain.protocols.validate import MAX_BODY_BYTES

log = logging.getLogger("ainfera")


def create_app(settings: Settings | None = None, *, settle_heap: bool = False) -> Litestar:
    """`settle_heap`: tune the garbage collector once started (app.heap); for a process that
    serves this one app until it exits (`ainfera serve`), not for tests that build many."""
    settings = settings or Settings.from_env()

    @asynccontextmanager
    async def lifespan(app: Litestar) -> AsyncIterator[None]:
        async with open_runtime(settings) as runtime:
            app.state.runtime = runtime
            log_startup(runtime)
            if settle_heap:
                settle_after_start()
            yield

    return Litestar(
        route_handlers=[
            healthz, readyz, list_inferences, get_inference, create_message,
            create_chat_completion, count_tokens, list_models, usage_daily, caps_rollup,
            agent_metrics, inference_decision, agent_card, llms_txt,
            metrics, *LEDGER_ROUTES, *ADMIN_ROUTES, *CONSOLE_ROUTES,
        ],
        lifespan=[lifespan],
        middleware=[request_id_middleware, access_log_middleware],
        exception_handlers=EXCEPTION_HANDLERS,
        # One limit for every body, enforced while it is read (domain.protocols.validate).
        request_max_body_size=MAX_BODY_BYTES,
        openapi_config=OpenAPIConfig(
            title="Ainfera Ledger", version="0.1.0", path="/schema",
            description="LLM gateway whose every call is an event on a verifiable ledger.",
            # Our document and a reference page that needs nothing from a CDN.
            render_plugins=[OpenAPIJson(), OpenAPIReference()],
        ),
        # The process configures logging once (app.logs.configure_logging), in our format;
        # Litestar's own config would replace it with another format.
        logging_config=None,
        debug=False,
    )
