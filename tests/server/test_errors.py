"""Each class of the error hierarchy, raised through a real server, answers with its own status,
code and ``{"error", "message", "details"}`` body; route modules never translate errors."""

import ast
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from avtomatika import errors
from avtomatika.core.records import WorkerRecord
from avtomatika.storage import MemoryStorage
from tests.conftest import Orchestrator, OrchestratorFactory
from tests.sample_blueprints import echo_blueprint
from tests.wire import WireWorker

SERVER = Path(errors.__file__).parent / "server"
PARSERS = {"body.py", "responses.py"}
"""The modules whose job is to turn a parsing failure or an exception into an answer."""


async def _error(resp: aiohttp.ClientResponse, status: int, code: str) -> dict[str, Any]:
    body: dict[str, Any] = await resp.json()
    assert (resp.status, resp.content_type) == (status, "application/json"), body
    assert set(body) == {"error", "message", "details"}
    assert body["error"] == code
    assert isinstance(body["message"], str)
    assert body["message"]
    return body


class FailingStorage(MemoryStorage):
    """Memory storage whose worker listing raises the error a test chooses."""

    def __init__(self, error: Exception) -> None:
        super().__init__()
        self.error = error

    async def list_workers(self) -> list[WorkerRecord]:
        raise self.error


async def test_invalid_request_is_400_naming_the_parameter(orchestrator: OrchestratorFactory) -> None:
    async with (
        orchestrator(echo_blueprint()) as orch,
        orch.session.get(f"{orch.url}/api/v1/jobs?limit=many", headers=orch.headers) as r,
    ):
        body = await _error(r, 400, "bad_request")
    assert "'limit'" in body["message"]
    assert body["details"] is None


@pytest.mark.parametrize("field", ["webhok_url", "initial_dat", "priority"])
async def test_an_unknown_create_field_is_400_naming_it(
    orchestrator: OrchestratorFactory, field: str
) -> None:
    async with orchestrator(echo_blueprint()) as orch:
        payload = {"initial_data": {}, field: "https://example.test/hook"}
        async with orch.session.post(f"{orch.url}/api/v1/jobs/echo", json=payload, headers=orch.headers) as r:
            body = await _error(r, 400, "bad_request")
        async with orch.session.get(f"{orch.url}/api/v1/jobs", headers=orch.headers) as r:
            assert await r.json() == []
    assert f"`{field}`" in body["message"]


async def test_every_documented_create_field_is_accepted(orchestrator: OrchestratorFactory) -> None:
    async with orchestrator(echo_blueprint()) as orch:
        job_id = await orch.create_job(
            "/api/v1/jobs/echo",
            {"a": 1},
            webhook_url="http://127.0.0.1:9/hook",
            dispatch_timeout=30,
            result_timeout=120,
            security={"k": "v"},
            metadata={"tenant": "acme"},
        )
        doc = await orch.job(job_id)
    assert (doc["webhook_url"], doc["metadata"]) == ("http://127.0.0.1:9/hook", {"tenant": "acme"})


async def test_auth_error_is_401(orchestrator: OrchestratorFactory) -> None:
    async with (
        orchestrator(echo_blueprint()) as orch,
        orch.session.get(f"{orch.url}/api/v1/jobs", headers={"X-Client-Token": "wrong"}) as r,
    ):
        body = await _error(r, 401, "unauthorized")
    assert body["message"] == "Invalid client token"


async def test_signature_error_is_403(orchestrator: OrchestratorFactory) -> None:
    async with orchestrator(echo_blueprint()) as orch:
        worker = WireWorker(orch.session, orch.url, "w1")
        signed = worker.sign({"worker_id": "w1", "supported_skills": [{"name": "echo"}]})
        tampered = {**signed, "supported_skills": [{"name": "other"}]}
        url = f"{orch.url}/_worker/workers/register"
        async with orch.session.post(url, json=tampered, headers=worker.headers) as r:
            body = await _error(r, 403, "forbidden")
    assert body["message"] == "Invalid cryptographic signature"


async def test_forbidden_heartbeat_for_another_worker_is_403(orchestrator: OrchestratorFactory) -> None:
    async with orchestrator(echo_blueprint()) as orch:
        worker = WireWorker(orch.session, orch.url, "w1")
        await worker.register("echo")
        beat = worker.sign({"worker_id": "w2", "status": "idle"})
        async with orch.session.patch(
            f"{orch.url}/_worker/workers/w1", json=beat, headers=worker.headers
        ) as r:
            body = await _error(r, 403, "forbidden")
    assert "'w2'" in body["message"]


async def test_unknown_worker_is_404(orchestrator: OrchestratorFactory) -> None:
    async with orchestrator(echo_blueprint()) as orch:
        worker = WireWorker(orch.session, orch.url, "ghost")
        beat = worker.sign({"worker_id": "ghost", "status": "idle"})
        url = f"{orch.url}/_worker/workers/ghost"
        async with orch.session.patch(url, json=beat, headers=worker.headers) as r:
            body = await _error(r, 404, "not_found")
    assert body["message"] == "Worker 'ghost' not found; register again"


async def test_job_not_found_is_404_for_every_job_route(orchestrator: OrchestratorFactory) -> None:
    async with orchestrator(echo_blueprint()) as orch:
        for method, path, payload in (
            ("GET", "/api/v1/jobs/nope", None),
            ("POST", "/api/v1/jobs/nope/cancel", None),
            ("POST", "/_public/webhooks/approval/nope", {"decision": "approve"}),
        ):
            async with orch.session.request(method, orch.url + path, json=payload, headers=orch.headers) as r:
                body = await _error(r, 404, "not_found")
            assert body["message"] == "Job nope not found", path


async def _cancelled_job(orch: Orchestrator) -> str:
    job_id = await orch.create_job("/api/v1/jobs/echo")
    async with orch.session.post(f"{orch.url}/api/v1/jobs/{job_id}/cancel", headers=orch.headers) as r:
        assert r.status == 200, await r.text()
    return job_id


async def test_job_state_conflict_is_409(orchestrator: OrchestratorFactory) -> None:
    async with orchestrator(echo_blueprint()) as orch:
        job_id = await _cancelled_job(orch)
        async with orch.session.post(f"{orch.url}/api/v1/jobs/{job_id}/cancel", headers=orch.headers) as r:
            cancel = await _error(r, 409, "conflict")
        url = f"{orch.url}/_public/webhooks/approval/{job_id}"
        async with orch.session.post(url, json={"decision": "approve"}, headers=orch.headers) as r:
            approval = await _error(r, 409, "conflict")
    assert cancel["message"] == f"Job {job_id} is already cancelled"
    assert "not waiting for approval" in approval["message"]


async def test_idempotency_key_reused_is_409_naming_the_job(orchestrator: OrchestratorFactory) -> None:
    async with orchestrator(echo_blueprint()) as orch:
        headers = {**orch.headers, "Idempotency-Key": "k1"}
        url = f"{orch.url}/api/v1/jobs/echo"
        async with orch.session.post(url, json={"initial_data": {"a": 1}}, headers=headers) as r:
            job_id = (await r.json())["job_id"]
        async with orch.session.post(url, json={"initial_data": {"a": 2}}, headers=headers) as r:
            body = await _error(r, 409, "idempotency_key_reused")
    assert body["details"] == {"job_id": job_id}


async def test_storage_unavailable_is_503_with_retry_after(orchestrator: OrchestratorFactory) -> None:
    storage = FailingStorage(errors.StorageUnavailable("Storage (Redis) is unreachable: test", 2.5))
    async with (
        orchestrator(echo_blueprint(), storage=storage) as orch,
        orch.session.get(f"{orch.url}/api/v1/workers", headers=orch.headers) as r,
    ):
        body = await _error(r, 503, "storage_unavailable")
        assert r.headers["Retry-After"] == "3"
    assert body["details"] == {"retry_after": 3}


async def test_an_error_without_a_status_is_a_500_that_shows_nothing(
    orchestrator: OrchestratorFactory, caplog: pytest.LogCaptureFixture
) -> None:
    storage = FailingStorage(errors.BlueprintError("secret internals"))
    async with (
        orchestrator(echo_blueprint(), storage=storage) as orch,
        orch.session.get(f"{orch.url}/api/v1/workers", headers=orch.headers) as r,
    ):
        body = await _error(r, 500, "internal_error")
    assert "secret" not in body["message"]
    assert "secret internals" in caplog.text


def _raises_inside_except(tree: ast.AST) -> list[int]:
    """Lines of ``raise X`` (a new error, not a bare re-raise) inside an ``except`` clause."""
    return [
        node.lineno
        for handler in ast.walk(tree)
        if isinstance(handler, ast.ExceptHandler)
        for node in ast.walk(handler)
        if isinstance(node, ast.Raise) and node.exc is not None
    ]


def test_no_route_module_translates_errors() -> None:
    """Only the request parsers and the middleware turn one error into another."""
    translating = {
        path.name: lines
        for path in sorted(SERVER.glob("*.py"))
        if path.name not in PARSERS and (lines := _raises_inside_except(ast.parse(path.read_text())))
    }
    assert translating == {}
    assert _raises_inside_except(ast.parse((SERVER / "body.py").read_text()))
