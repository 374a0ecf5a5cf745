"""The one place that builds HTTP error responses: ``{"error", "message", "details"}``.

Route handlers raise; this middleware answers. An :class:`AvtomatikaError` answers with its own
status, code, details and headers; request-parsing failures of the framework and msgspec are
mapped here too; anything else is a 500 whose cause is logged, not shown.
"""

import logging
from collections.abc import Awaitable, Callable
from typing import Any

import msgspec
from aiohttp import web

from avtomatika.core.codec import encode
from avtomatika.errors import AvtomatikaError

logger = logging.getLogger(__name__)

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
INTERNAL_ERROR_MESSAGE = "The orchestrator failed to handle this request"


def error_response(status: int, code: str, message: str, details: Any = None) -> web.Response:
    body = {"error": code, "message": message, "details": details}
    return web.Response(status=status, body=encode(body), content_type="application/json")


def _internal_error(request: web.Request) -> web.Response:
    logger.exception("Unhandled error on %s %s", request.method, request.path)
    return error_response(500, "internal_error", INTERNAL_ERROR_MESSAGE)


def _domain_error(request: web.Request, exc: AvtomatikaError) -> web.Response:
    if exc.status == 500:
        return _internal_error(request)
    response = error_response(exc.status, exc.code, exc.message, exc.details)
    response.headers.update(exc.headers())
    return response


@web.middleware
async def error_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    try:
        return await handler(request)
    except AvtomatikaError as exc:
        return _domain_error(request, exc)
    except web.HTTPException as exc:
        if exc.status < 400:
            raise
        code = exc.reason.lower().replace(" ", "_")
        return error_response(exc.status, code, f"{exc.reason}: {request.method} {request.path}")
    except msgspec.ValidationError as exc:
        return error_response(400, "invalid_body", "Request body does not match the expected shape", str(exc))
    except ConnectionResetError:
        # The client went away mid-request (e.g. while its body was read): no one to answer.
        logger.debug("Client left during %s %s", request.method, request.path)
        return error_response(400, "client_disconnected", "The connection was closed mid-request")
    except Exception:
        return _internal_error(request)
