"""The one place that builds HTTP error responses: ``{"error", "message", "details"}``."""

import logging
import math
from collections.abc import Awaitable, Callable
from typing import Any

import msgspec
from aiohttp import web

from avtomatika.core.codec import encode
from avtomatika.errors import StorageUnavailable

logger = logging.getLogger(__name__)

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


class ApiError(Exception):
    def __init__(self, status: int, code: str, message: str, details: Any = None) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.details = details


def error_response(status: int, code: str, message: str, details: Any = None) -> web.Response:
    body = {"error": code, "message": message, "details": details}
    return web.Response(status=status, body=encode(body), content_type="application/json")


def bad_request(message: str, details: Any = None) -> ApiError:
    return ApiError(400, "bad_request", message, details)


def not_found(message: str) -> ApiError:
    return ApiError(404, "not_found", message)


def unauthorized(message: str) -> ApiError:
    return ApiError(401, "unauthorized", message)


def forbidden(message: str) -> ApiError:
    return ApiError(403, "forbidden", message)


def conflict(message: str) -> ApiError:
    return ApiError(409, "conflict", message)


@web.middleware
async def error_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    try:
        return await handler(request)
    except ApiError as exc:
        return error_response(exc.status, exc.code, exc.message, exc.details)
    except web.HTTPException as exc:
        if exc.status < 400:
            raise
        code = exc.reason.lower().replace(" ", "_")
        return error_response(exc.status, code, f"{exc.reason}: {request.method} {request.path}")
    except msgspec.ValidationError as exc:
        return error_response(400, "invalid_body", "Request body does not match the expected shape", str(exc))
    except StorageUnavailable as exc:
        retry_after = math.ceil(exc.retry_after)
        response = error_response(503, "storage_unavailable", str(exc), {"retry_after": retry_after})
        response.headers["Retry-After"] = str(retry_after)
        return response
    except ConnectionResetError:
        # The client went away mid-request (e.g. while its body was read): no one to answer.
        logger.debug("Client left during %s %s", request.method, request.path)
        return error_response(400, "client_disconnected", "The connection was closed mid-request")
    except Exception:
        logger.exception("Unhandled error on %s %s", request.method, request.path)
        return error_response(500, "internal_error", "The orchestrator failed to handle this request")
