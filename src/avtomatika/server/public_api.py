"""Public routes: liveness, and human approvals (which still require the job owner's token)."""

import msgspec
from aiohttp import web

from avtomatika.engine import jobs
from avtomatika.server.app_keys import SERVICES_KEY
from avtomatika.server.body import convert, json_response, read_object
from avtomatika.server.client_api import authenticate


class ApprovalRequest(msgspec.Struct):
    decision: str


async def status(request: web.Request) -> web.Response:
    return json_response({"status": "ok"})


async def approval(request: web.Request) -> web.Response:
    # Unlike the published release (W-12), approving needs the token of the job's client.
    client = authenticate(request)
    job_id = request.match_info["job_id"]
    body = convert(await read_object(request) or {}, ApprovalRequest, "approval")
    await jobs.approve(request.app[SERVICES_KEY], job_id, client.id, body.decision)
    return json_response({"status": "approval_received", "job_id": job_id})


def add_routes(app: web.Application) -> None:
    app.router.add_get("/_public/status", status)
    app.router.add_post("/_public/webhooks/approval/{job_id}", approval)
