"""Builds the aiohttp application: middleware, the version header, and every route group."""

from aiohttp import web

from avtomatika.blueprints.blueprint import Blueprint
from avtomatika.protocol.constants import PROTOCOL_VERSION, VERSION_HEADER
from avtomatika.server import client_api, public_api, websocket, worker_api
from avtomatika.server.inflight import InFlightRequests
from avtomatika.server.responses import error_middleware


async def _version_header(request: web.Request, response: web.StreamResponse) -> None:
    response.headers[VERSION_HEADER] = PROTOCOL_VERSION


def new_app(requests: InFlightRequests) -> web.Application:
    app = web.Application(
        middlewares=[requests.middleware, error_middleware], client_max_size=64 * 1024 * 1024
    )
    app.on_response_prepare.append(_version_header)
    return app


def add_routes(app: web.Application, blueprints: dict[str, Blueprint], *, with_client_api: bool) -> None:
    public_api.add_routes(app)
    worker_api.add_routes(app)
    websocket.add_routes(app)
    if with_client_api:
        client_api.add_routes(app, blueprints)
