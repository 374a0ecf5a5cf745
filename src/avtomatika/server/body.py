"""Request parsing: bodies (once, with msgspec) and query parameters; errors name the field."""

from typing import Any, TypeVar

import msgspec
from aiohttp import web

from avtomatika.core.codec import decode, encode
from avtomatika.errors import InvalidRequest

T = TypeVar("T")


async def read_object(request: web.Request, *, allow_empty: bool = False) -> dict[str, Any] | None:
    """The body as a JSON object; None for an empty body or ``null`` when ``allow_empty``."""
    raw = await request.read()
    if not raw.strip():
        if allow_empty:
            return None
        raise InvalidRequest("Request body is empty; a JSON object is required")
    try:
        value = decode(raw)
    except msgspec.DecodeError as exc:
        raise InvalidRequest("Request body is not valid JSON", str(exc)) from None
    if value is None and allow_empty:
        return None
    if not isinstance(value, dict):
        raise InvalidRequest(f"Request body must be a JSON object, got {type(value).__name__}")
    return value


def convert(value: dict[str, Any], kind: type[T], what: str) -> T:
    try:
        return msgspec.convert(value, kind)
    except msgspec.ValidationError as exc:
        raise InvalidRequest(f"Invalid {what}: {exc}", str(exc)) from None


def int_query(request: web.Request, name: str, default: int, maximum: int) -> int:
    """Query parameter ``name`` as an integer from 0 to ``maximum``; ``default`` when absent."""
    raw = request.query.get(name)
    if raw is None:
        return default
    try:
        value = int(raw)
    except ValueError:
        raise InvalidRequest(f"Query parameter '{name}' must be an integer, got {raw!r}") from None
    if not 0 <= value <= maximum:
        raise InvalidRequest(f"Query parameter '{name}' must be between 0 and {maximum}")
    return value


def json_response(value: Any, status: int = 200) -> web.Response:
    return web.Response(status=status, body=encode(value), content_type="application/json")
