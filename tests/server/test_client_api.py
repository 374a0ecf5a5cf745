"""Client API: every kind of bad input gets a 4xx JSON error naming the problem."""

from typing import Any

import pytest

from tests.conftest import OrchestratorFactory
from tests.sample_blueprints import echo_blueprint
from tests.wire import WireWorker


def _is_error(body: Any, code: str) -> bool:
    return isinstance(body, dict) and body.get("error") == code and bool(body.get("message"))


@pytest.mark.parametrize(
    ("payload", "fragment"),
    [
        (b"{not json", "not valid JSON"),
        (b"[1, 2]", "must be a JSON object"),
        (b'{"initial_data": "text"}', "initial_data"),
        (b'{"dispatch_timeout": "soon"}', "dispatch_timeout"),
        (b'{"dispatch_timeout": -5}', "dispatch_timeout"),
        (b'{"webhook_url": "ftp://x"}', "webhook_url"),
        (b'{"security": {"signer_id": 5}}', "signer_id"),
        (b'{"security": {"identity_chain": "me"}}', "identity_chain"),
    ],
)
async def test_bad_create_bodies_get_400(
    orchestrator: OrchestratorFactory, payload: bytes, fragment: str
) -> None:
    async with (
        orchestrator(echo_blueprint()) as orch,
        orch.session.post(f"{orch.url}/api/v1/jobs/echo", data=payload, headers=orch.headers) as r,
    ):
        body = await r.json()
        assert r.status == 400
    assert body["error"] == "bad_request"
    assert fragment in body["message"]


@pytest.mark.parametrize(
    ("headers", "status"), [({}, 401), ({"X-Client-Token": "wrong"}, 401), ({"X-Client-Token": ""}, 401)]
)
async def test_missing_or_wrong_client_token(
    orchestrator: OrchestratorFactory, headers: dict[str, str], status: int
) -> None:
    async with orchestrator(echo_blueprint()) as orch:
        for method, path in (
            ("POST", "/api/v1/jobs/echo"),
            ("GET", "/api/v1/jobs/x"),
            ("GET", "/api/v1/jobs"),
        ):
            async with orch.session.request(method, orch.url + path, json={}, headers=headers) as r:
                assert r.status == status
                assert _is_error(await r.json(), "unauthorized")


async def test_unknown_blueprint_route_and_job(orchestrator: OrchestratorFactory) -> None:
    async with orchestrator(echo_blueprint()) as orch:
        async with orch.session.post(f"{orch.url}/api/v1/jobs/nope", json={}, headers=orch.headers) as r:
            assert r.status == 404
            assert _is_error(await r.json(), "not_found")
        async with orch.session.get(f"{orch.url}/api/v1/jobs/missing", headers=orch.headers) as r:
            assert r.status == 404
            assert _is_error(await r.json(), "not_found")
        async with orch.session.get(f"{orch.url}/api/v1/blueprints/nope/graph", headers=orch.headers) as r:
            assert r.status == 404
        async with orch.session.delete(f"{orch.url}/api/v1/jobs/echo", headers=orch.headers) as r:
            assert r.status == 405
            assert (await r.json())["error"] == "method_not_allowed"


async def test_pagination_is_validated(orchestrator: OrchestratorFactory) -> None:
    async with orchestrator(echo_blueprint()) as orch:
        for query in ("limit=abc", "limit=-1", "offset=x", "limit=100000"):
            async with orch.session.get(f"{orch.url}/api/v1/jobs?{query}", headers=orch.headers) as r:
                assert r.status == 400, query


async def test_job_document_and_field_selection(orchestrator: OrchestratorFactory) -> None:
    async with orchestrator(echo_blueprint()) as orch:
        job_id = await orch.create_job("/api/v1/jobs/echo", {"a": 1}, metadata={"tenant": "acme"})
        async with orch.session.get(
            f"{orch.url}/api/v1/jobs/{job_id}?fields=status", headers=orch.headers
        ) as r:
            assert set(await r.json()) == {"id", "status"}
        doc = await orch.job(job_id)
    assert doc["initial_data"] == {"a": 1}
    assert doc["metadata"] == {"tenant": "acme"}
    assert "test-client-token" not in str(doc)


async def test_graph_and_status_routes(orchestrator: OrchestratorFactory) -> None:
    async with orchestrator(echo_blueprint()) as orch:
        async with orch.session.get(f"{orch.url}/api/v1/blueprints/echo/graph", headers=orch.headers) as r:
            assert r.status == 200
            assert r.content_type == "text/vnd.graphviz"
            assert "digraph" in await r.text()
        async with orch.session.get(f"{orch.url}/_public/status") as r:
            assert await r.json() == {"status": "ok"}
            assert r.headers["X-RXON-Version"] == "1.0b7"


async def test_security_keys_a_worker_does_not_know_are_accepted_but_not_sent(
    orchestrator: OrchestratorFactory,
) -> None:
    """Once, such a key left the job pending for ever: placing its task raised."""
    security = {"signer_id": "client-a", "tenant": "acme"}
    async with orchestrator(echo_blueprint()) as orch:
        worker = WireWorker(orch.session, orch.url, "w1")
        await worker.register("echo")
        job_id = await orch.create_job("/api/v1/jobs/echo", security=security)
        task = await worker.poll_until_task()
        await worker.result(task, data={})
        doc = await orch.wait_for(job_id)
    assert task["security"]["signer_id"] == "client-a"
    assert "tenant" not in task["security"]
    assert doc["status"] == "finished"
