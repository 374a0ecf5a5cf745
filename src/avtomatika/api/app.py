"""Builds the aiohttp application: middleware, the version header, and every route group."""

from aiohttp import web

from avtomatika.api import client, public, websocket, worker
from avtomatika.api.errors import error_middleware
from avtomatika.api.inflight import InFlightRequests
from avtomatika.blueprint import Blueprint
from avtomatika.protocol.constants import PROTOCOL_VERSION, VERSION_HEADER


async def _version_header(request: web.Request, response: web.StreamResponse) -> None:
    response.headers[VERSION_HEADER] = PROTOCOL_VERSION


def new_app(requests: InFlightRequests) -> web.Application:
    app = web.Application(
        middlewares=[requests.middleware, error_middleware], client_max_size=64 * 1024 * 1024
    )
    app.on_response_prepare.append(_version_header)
    return app


def add_routes(app: web.Application, blueprints: dict[str, Blueprint], *, client_api: bool) -> None:
    public.add_routes(app)
    worker.add_routes(app)
    websocket.add_routes(app)
    if client_api:
        client.add_routes(app, blueprints)
