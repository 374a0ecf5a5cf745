"""Client API under ``/api/<version>``: create, inspect, cancel and list jobs; workers; graphs."""

from typing import Annotated, Any

import msgspec
from aiohttp import web

from avtomatika.access.identity import Client
from avtomatika.blueprints.blueprint import Blueprint
from avtomatika.core.documents import document, worker_document
from avtomatika.engine import idempotency, jobs
from avtomatika.engine.services import Services
from avtomatika.errors import BlueprintError, InvalidRequest, NotFound
from avtomatika.protocol.constants import CLIENT_TOKEN_HEADER, IDEMPOTENCY_KEY_HEADER
from avtomatika.server.app_keys import SERVICES_KEY
from avtomatika.server.body import convert, int_query, json_response, read_object
from avtomatika.storage.base import IdempotencyClaim

Seconds = Annotated[float, msgspec.Meta(gt=0)]
MAX_PAGE = 1000
REPLAYED_HEADER = "Idempotent-Replayed"
"""Set on a create answered with the job an earlier request with the same key made."""


class CreateJobRequest(msgspec.Struct, forbid_unknown_fields=True):
    """The create body (protocol.md §4.1): an unknown field (a typo such as ``webhok_url``) is a
    400 naming it, not a setting silently dropped."""

    initial_data: dict[str, Any] = msgspec.field(default_factory=dict)
    webhook_url: str | None = None
    dispatch_timeout: Seconds | None = None
    result_timeout: Seconds | None = None
    security: dict[str, Any] | None = None
    metadata: dict[str, Any] | None = None


def _services(request: web.Request) -> Services:
    return request.app[SERVICES_KEY]


def authenticate(request: web.Request) -> Client:
    return _services(request).clients.authenticate(request.headers.get(CLIENT_TOKEN_HEADER))


def _idempotency_claim(
    request: web.Request, client: Client, bp: Blueprint, body: CreateJobRequest
) -> IdempotencyClaim | None:
    raw = request.headers.get(IDEMPOTENCY_KEY_HEADER)
    if raw is None:
        return None
    key = idempotency.parse_key(raw)
    ttl = _services(request).config.IDEMPOTENCY_KEY_TTL_SECONDS
    return idempotency.claim(client.id, key, idempotency.fingerprint(bp.name, body), ttl)


def create_job_handler(bp: Blueprint) -> Any:
    async def create_job(request: web.Request) -> web.Response:
        client = authenticate(request)
        body = convert(await read_object(request) or {}, CreateJobRequest, "job request")
        if body.webhook_url is not None and not body.webhook_url.startswith(("http://", "https://")):
            raise InvalidRequest("webhook_url must be an http:// or https:// URL")
        claim = _idempotency_claim(request, client, bp, body)
        job = jobs.new_job(
            bp,
            client.id,
            body.initial_data,
            webhook_url=body.webhook_url,
            dispatch_timeout=body.dispatch_timeout,
            result_timeout=body.result_timeout,
            security=body.security,
            metadata=body.metadata,
        )
        job_id = await jobs.create(_services(request), job, claim)
        response = json_response({"status": "accepted", "job_id": job_id}, status=202)
        if job_id != job.id:
            response.headers[REPLAYED_HEADER] = "true"
        return response

    return create_job


async def get_job(request: web.Request) -> web.Response:
    client = authenticate(request)
    job = await jobs.get_owned(_services(request), request.match_info["job_id"], client.id)
    doc = document(job)
    fields = request.query.get("fields")
    if fields:
        wanted = {f.strip() for f in fields.split(",") if f.strip()} | {"id"}
        doc = {k: v for k, v in doc.items() if k in wanted}
    return json_response(doc)


async def cancel_job(request: web.Request) -> web.Response:
    client = authenticate(request)
    await jobs.cancel(_services(request), request.match_info["job_id"], client.id)
    return json_response({"status": "cancellation_request_accepted"})


async def list_jobs(request: web.Request) -> web.Response:
    client = authenticate(request)
    limit = int_query(request, "limit", 100, MAX_PAGE)
    offset = int_query(request, "offset", 0, 10**9)
    found = await _services(request).storage.list_jobs(client.id, limit, offset)
    return json_response([document(job) for job in found])


async def list_workers(request: web.Request) -> web.Response:
    authenticate(request)
    workers = await _services(request).storage.list_workers()
    return json_response([worker_document(w) for w in workers])


async def blueprint_graph(request: web.Request) -> web.Response:
    authenticate(request)
    name = request.match_info["name"]
    bp = _services(request).blueprints.get(name)
    if bp is None:
        raise NotFound(f"Blueprint '{name}' not found")
    return web.Response(text=bp.render_graph(), content_type="text/vnd.graphviz")


def unknown_endpoint(endpoints: list[str]) -> Any:
    async def handler(request: web.Request) -> web.Response:
        authenticate(request)
        known = ", ".join(sorted(endpoints)) or "none"
        raise NotFound(f"No blueprint accepts jobs at {request.path}; known endpoints: {known}")

    return handler


def add_routes(app: web.Application, blueprints: dict[str, Blueprint]) -> None:
    """Create-job routes per blueprint, and the common routes under every version prefix."""
    prefixes: dict[str, list[Blueprint]] = {}
    for bp in blueprints.values():
        if bp.api_endpoint:
            prefix = f"/api/{bp.api_version}" if bp.api_version else "/api"
            prefixes.setdefault(prefix, []).append(bp)
    taken: dict[str, str] = {}
    for prefix, group in prefixes.items():
        for bp in group:
            path = prefix + str(bp.api_endpoint)
            if path in taken:
                raise BlueprintError(f"Blueprints '{taken[path]}' and '{bp.name}' share {path}")
            taken[path] = bp.name
            app.router.add_post(path, create_job_handler(bp))
        app.router.add_get(prefix + "/jobs", list_jobs)
        app.router.add_get(prefix + "/jobs/{job_id}", get_job)
        app.router.add_post(prefix + "/jobs/{job_id}/cancel", cancel_job)
        app.router.add_get(prefix + "/workers", list_workers)
        app.router.add_get(prefix + "/blueprints/{name}/graph", blueprint_graph)
    for prefix in prefixes:
        app.router.add_post(prefix + "/{path:.*}", unknown_endpoint(list(taken)))
