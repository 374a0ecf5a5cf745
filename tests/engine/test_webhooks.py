"""Completion webhooks: one per way a job ends, with its payload; retried with exponential
backoff; given up after WEBHOOK_MAX_ATTEMPTS with a warning, and nothing else disturbed."""

import asyncio
import itertools
import logging
from typing import Any

import pytest

from tests.conftest import Orchestrator, OrchestratorFactory
from tests.sample_blueprints import echo_blueprint
from tests.webhook_receiver import Receiver
from tests.wire import WireWorker

SECURITY = {"signer_id": "client-a", "identity_chain": ["client-a"]}
METADATA = {"order": 1042}


async def end_job(orch: Orchestrator, worker: WireWorker, job_id: str, how: str) -> None:
    task = await worker.poll_until_task()
    if how == "finished":
        await worker.result(task, data={"out": 1})
    elif how == "failed":
        await worker.result(task, status="failure", error={"code": "INVALID_INPUT_ERROR", "message": "bad"})
    elif how == "quarantined":
        await worker.result(task, status="failure", error={"code": "PERMANENT_ERROR", "message": "broken"})
    else:
        async with orch.session.post(f"{orch.url}/api/v1/jobs/{job_id}/cancel", headers=orch.headers) as r:
            assert r.status == 200


@pytest.mark.parametrize(
    ("how", "result", "error"),
    [
        ("finished", {"out": 1}, None),
        ("failed", {}, "INVALID_INPUT_ERROR: bad"),
        ("quarantined", {}, "PERMANENT_ERROR: broken"),
        ("cancelled", {}, "Cancelled by client"),
    ],
)
async def test_each_way_a_job_ends_sends_its_webhook(
    orchestrator: OrchestratorFactory, backend: Any, how: str, result: dict[str, Any], error: str | None
) -> None:
    async with Receiver() as hook, orchestrator(echo_blueprint(), storage=backend) as orch:
        worker = WireWorker(orch.session, orch.url, "w1")
        await worker.register("echo")
        job_id = await orch.create_job(
            "/api/v1/jobs/echo", webhook_url=hook.url, security=SECURITY, metadata=METADATA
        )
        await end_job(orch, worker, job_id, how)
        doc = await orch.wait_for(job_id)
        [delivered] = await hook.events(1)
    assert doc["status"] == how
    assert delivered["event"] == f"job_{how}"
    assert (delivered["job_id"], delivered["status"], delivered["result"]) == (job_id, how, result)
    if error is None:
        assert delivered["error"] is None
    else:
        assert error in delivered["error"]
    assert (delivered["security"], delivered["metadata"]) == (SECURITY, METADATA)
    assert len(hook.attempts) == 1, "a delivery that succeeded is not repeated"


async def test_a_failing_webhook_backs_off_exponentially_then_gives_up_with_a_warning(
    orchestrator: OrchestratorFactory, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, logger="avtomatika.engine.webhooks")
    base, attempts = 0.1, 4
    async with (
        Receiver(answer=lambda attempt: 500) as broken,
        Receiver() as working,
        orchestrator(
            echo_blueprint(), WEBHOOK_MAX_ATTEMPTS=attempts, WEBHOOK_RETRY_BASE_DELAY_SECONDS=base
        ) as orch,
    ):
        worker = WireWorker(orch.session, orch.url, "w1")
        await worker.register("echo")
        job_id = await orch.create_job("/api/v1/jobs/echo", webhook_url=broken.url)
        await end_job(orch, worker, job_id, "finished")
        assert (await orch.wait_for(job_id))["status"] == "finished"
        loop = asyncio.get_running_loop()
        deadline = loop.time() + 10
        while not [r for r in caplog.records if "undelivered" in r.getMessage()]:
            assert loop.time() < deadline, f"no give-up warning after {len(broken.attempts)} attempts"
            await asyncio.sleep(0.02)
        tried = len(broken.attempts)
        # The sender still works: the next job's webhook is delivered at once.
        other = await orch.create_job("/api/v1/jobs/echo", webhook_url=working.url)
        await end_job(orch, worker, other, "finished")
        [delivered] = await working.events(1)
        assert (await orch.wait_for(other))["status"] == "finished"
    assert tried == len(broken.attempts) == attempts
    assert all(body == broken.attempts[0][1] for _, body in broken.attempts), "every attempt is the same"
    times = [at for at, _ in broken.attempts]
    gaps = [later - earlier for earlier, later in itertools.pairwise(times)]
    for retry, gap in enumerate(gaps):
        assert gap >= base * 2**retry * 0.9, gaps
    assert gaps[-1] > gaps[0], gaps
    [warning] = [r for r in caplog.records if "undelivered" in r.getMessage()]
    assert warning.levelno == logging.WARNING
    assert job_id in warning.getMessage()
    assert f"after {attempts} attempts" in warning.getMessage()
    assert "HTTP 500" in warning.getMessage()
    assert delivered["job_id"] == other
