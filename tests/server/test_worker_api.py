"""Worker API: authentication, signatures and malformed messages get 4xx JSON errors."""

import time
from typing import Any

import pytest

from avtomatika.protocol import signing
from tests.conftest import WORKER_TOKEN, OrchestratorFactory
from tests.sample_blueprints import echo_blueprint
from tests.wire import WireWorker


def _registration(worker_id: str = "w1") -> dict[str, Any]:
    return {"worker_id": worker_id, "supported_skills": [{"name": "echo"}], "timestamp": time.time()}


async def test_register_requires_a_valid_token(orchestrator: OrchestratorFactory) -> None:
    async with orchestrator(echo_blueprint()) as orch:
        url = f"{orch.url}/_worker/workers/register"
        async with orch.session.post(url, json=_registration()) as r:
            assert r.status == 401
        async with orch.session.post(url, json=_registration(), headers={"X-Worker-Token": "bad"}) as r:
            assert r.status == 401
            assert (await r.json())["error"] == "unauthorized"


@pytest.mark.parametrize(
    ("mutate", "fragment"),
    [
        (lambda m: m.pop("security"), "Missing required cryptographic signature"),
        (lambda m: m["security"].update(signature="00" * 32), "Invalid cryptographic signature"),
        (lambda m: m.update(timestamp=time.time() - 3600), "expired"),
        (lambda m: m["security"].update(signer_id="someone-else"), "does not match"),
        (lambda m: m.update(worker_type="changed after signing"), "Invalid cryptographic signature"),
    ],
)
async def test_signature_checks(orchestrator: OrchestratorFactory, mutate: Any, fragment: str) -> None:
    async with orchestrator(echo_blueprint()) as orch:
        message = WireWorker(orch.session, orch.url, "w1").sign(_registration())
        mutate(message)
        headers = {"X-Worker-Token": WORKER_TOKEN}
        async with orch.session.post(
            f"{orch.url}/_worker/workers/register", json=message, headers=headers
        ) as r:
            body = await r.json()
            assert r.status == 403
    assert fragment in body["message"]


async def test_unsigned_messages_accepted_when_policy_is_verify(orchestrator: OrchestratorFactory) -> None:
    async with orchestrator(echo_blueprint(), WORKER_SIGNATURE_POLICY="verify") as orch:
        headers = {"X-Worker-Token": WORKER_TOKEN}
        async with orch.session.post(
            f"{orch.url}/_worker/workers/register", json=_registration(), headers=headers
        ) as r:
            assert r.status == 200


@pytest.mark.parametrize(
    ("body", "fragment"),
    [
        ({"worker_id": 5}, "worker_id"),
        ({"worker_id": "bad id!"}, "must match"),
        ({"worker_id": "w1", "supported_skills": "echo"}, "supported_skills"),
        ({"worker_id": "w1", "resources": {"max_concurrent_tasks": "many"}}, "max_concurrent_tasks"),
    ],
)
async def test_malformed_registration(
    orchestrator: OrchestratorFactory, body: dict[str, Any], fragment: str
) -> None:
    async with orchestrator(echo_blueprint()) as orch:
        worker_id = body["worker_id"] if isinstance(body["worker_id"], str) else "w1"
        signed = WireWorker(orch.session, orch.url, worker_id).sign(body)
        headers = {"X-Worker-Token": WORKER_TOKEN}
        async with orch.session.post(
            f"{orch.url}/_worker/workers/register", json=signed, headers=headers
        ) as r:
            payload = await r.json()
            assert r.status == 400
    assert fragment in payload["message"]


async def test_unknown_worker_heartbeat_is_404_so_it_registers_again(
    orchestrator: OrchestratorFactory,
) -> None:
    async with orchestrator(echo_blueprint()) as orch:
        worker = WireWorker(orch.session, orch.url, "ghost")
        status, body = await worker.heartbeat()
        assert status == 404
        assert "not found" in body["message"]
        await worker.register("echo")
        status, body = await worker.heartbeat()
        assert (status, body["status"]) == (200, "ok")


@pytest.mark.parametrize(("interval", "bound"), [(60, 2000), (5, 500), (2, 200)])
async def test_heartbeat_jitter_stays_within_a_tenth_of_the_health_check_interval(
    orchestrator: OrchestratorFactory, interval: float, bound: int
) -> None:
    """A worker heartbeating every interval plus the jitter still lands inside its TTL."""
    async with orchestrator(echo_blueprint(), WORKER_HEALTH_CHECK_INTERVAL_SECONDS=interval) as orch:
        worker = WireWorker(orch.session, orch.url, "w1")
        await worker.register("echo")
        replies = [await worker.heartbeat() for _ in range(40)]
    assert {status for status, _ in replies} == {200}, replies
    jitters = [body.get("next_heartbeat_jitter_ms", 0) for _, body in replies]  # 0 is left out
    assert all(-bound <= j <= bound for j in jitters), jitters
    assert max(jitters) - min(jitters) > bound / 2, "the jitter spreads heartbeats"


async def test_offline_heartbeat_may_be_unsigned(orchestrator: OrchestratorFactory) -> None:
    async with orchestrator(echo_blueprint()) as orch:
        worker = WireWorker(orch.session, orch.url, "w1")
        await worker.register("echo")
        async with orch.session.patch(
            f"{orch.url}/_worker/workers/w1",
            json={"worker_id": "w1", "status": "offline"},
            headers=worker.headers,
        ) as r:
            assert r.status == 200
        async with orch.session.patch(
            f"{orch.url}/_worker/workers/w1",
            json={"worker_id": "w1", "status": "idle"},
            headers=worker.headers,
        ) as r:
            assert r.status == 403


async def test_result_body_errors(orchestrator: OrchestratorFactory) -> None:
    async with orchestrator(echo_blueprint()) as orch:
        headers = {"X-Worker-Token": WORKER_TOKEN}
        url = f"{orch.url}/_worker/tasks/result"
        async with orch.session.post(url, data=b"nope", headers=headers) as r:
            assert r.status == 400
        worker = WireWorker(orch.session, orch.url, "w1")
        async with orch.session.post(
            url, json=worker.sign({"worker_id": "w1", "task_id": "t"}), headers=headers
        ) as r:
            assert r.status == 400
            assert "job_id" in (await r.json())["message"]


def test_canonical_form_matches_the_sdk_signature() -> None:
    message = {"b": 1.0, "a": [None, 1e16, {"z": None, "y": "ü"}], "security": {"signature": "x"}}
    assert signing.canonical_bytes(message) == '{"a":[1e16,{"y":"ü"}],"b":1.0}'.encode()
