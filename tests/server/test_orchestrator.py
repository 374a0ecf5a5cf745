"""Engine lifecycle, handler failures, loop protection and completion webhooks."""

import asyncio
from typing import Any

import aiohttp
import pytest
from aiohttp import web

from avtomatika import Blueprint, OrchestratorEngine
from avtomatika.blueprints.actions import ActionFactory
from avtomatika.errors import BlueprintError, ConfigError
from avtomatika.storage import MemoryStorage
from tests.conftest import OrchestratorFactory, make_config
from tests.sample_blueprints import echo_blueprint
from tests.webhook_receiver import Receiver


def flaky_handler_blueprint(failures: int) -> Blueprint:
    bp = Blueprint(name="flaky", api_version="v1", api_endpoint="/jobs/flaky")
    calls = {"n": 0}

    @bp.handler(is_start=True)
    async def start(state_history: dict[str, Any], actions: ActionFactory) -> None:
        calls["n"] += 1
        state_history["attempt"] = calls["n"]
        if calls["n"] <= failures:
            raise RuntimeError(f"boom {calls['n']}")
        actions.go_to("done")

    @bp.handler(is_end=True)
    async def done() -> None:
        return None

    return bp


async def test_failing_handler_is_retried_then_succeeds(orchestrator: OrchestratorFactory) -> None:
    async with orchestrator(flaky_handler_blueprint(2), JOB_MAX_RETRIES=3) as orch:
        doc = await orch.wait_for(await orch.create_job("/api/v1/jobs/flaky"))
    assert doc["status"] == "finished"
    # Changes made by failed attempts are discarded; only the successful attempt's write remains.
    assert doc["state_history"] == {"attempt": 3}


async def test_handler_failing_every_time_is_quarantined(orchestrator: OrchestratorFactory) -> None:
    async with orchestrator(flaky_handler_blueprint(99), JOB_MAX_RETRIES=2) as orch:
        doc = await orch.wait_for(await orch.create_job("/api/v1/jobs/flaky"))
    assert doc["status"] == "quarantined"
    assert "boom 3" in doc["error_message"]


async def test_cycling_blueprint_is_stopped(orchestrator: OrchestratorFactory) -> None:
    bp = Blueprint(name="loop", api_version="v1", api_endpoint="/jobs/loop")

    @bp.handler(is_start=True)
    async def ping(actions: ActionFactory) -> None:
        actions.go_to("pong")

    @bp.handler
    async def pong(actions: ActionFactory) -> None:
        actions.go_to("ping")

    @bp.handler(is_end=True)
    async def never() -> None:
        return None

    with pytest.raises(BlueprintError):
        bp.validate()  # 'never' is unreachable
    bp2 = Blueprint(name="loop2", api_version="v1", api_endpoint="/jobs/loop2")

    @bp2.handler(is_start=True)
    async def ping2(initial_data: dict[str, Any], actions: ActionFactory) -> None:
        actions.go_to("ping2" if initial_data.get("spin") else "end2")

    @bp2.handler(is_end=True)
    async def end2() -> None:
        return None

    async with orchestrator(bp2, MAX_TRANSITIONS_PER_JOB=20) as orch:
        doc = await orch.wait_for(await orch.create_job("/api/v1/jobs/loop2", {"spin": True}))
    assert doc["status"] == "failed"
    assert "MAX_TRANSITIONS_PER_JOB" in doc["error_message"]
    assert doc["transition_count"] == 21


async def test_webhook_is_delivered_on_completion(orchestrator: OrchestratorFactory) -> None:
    # The first delivery fails and must be retried.
    first_fails = Receiver(answer=lambda attempt: 503 if attempt == 1 else 204)
    async with (
        first_fails as hook,
        orchestrator(flaky_handler_blueprint(0), WEBHOOK_RETRY_BASE_DELAY_SECONDS=0.05) as orch,
    ):
        job_id = await orch.create_job("/api/v1/jobs/flaky", webhook_url=hook.url)
        await orch.wait_for(job_id)
        await hook.events(1)
    assert len(hook.attempts) == 2
    assert hook.received == [
        {
            "event": "job_finished",
            "job_id": job_id,
            "status": "finished",
            "result": {"attempt": 1},
            "error": None,
            "security": None,
            "metadata": None,
        }
    ]


async def test_register_after_start_and_duplicates_are_refused() -> None:
    engine = OrchestratorEngine(MemoryStorage(), make_config())
    engine.register_blueprint(echo_blueprint())
    with pytest.raises(ValueError, match="already registered"):
        engine.register_blueprint(echo_blueprint())
    await engine.start()
    try:
        with pytest.raises(RuntimeError, match="after the engine has started"):
            engine.register_blueprint(echo_blueprint("other"))
    finally:
        await engine.stop()


async def test_stop_lets_an_in_flight_handler_finish(orchestrator: OrchestratorFactory) -> None:
    bp = Blueprint(name="slow", api_version="v1", api_endpoint="/jobs/slow")
    started = asyncio.Event()

    @bp.handler(is_start=True)
    async def start(actions: ActionFactory) -> None:
        started.set()
        await asyncio.sleep(0.3)
        actions.go_to("done")

    @bp.handler(is_end=True)
    async def done() -> None:
        return None

    storage = MemoryStorage()
    async with orchestrator(bp, storage=storage) as orch:
        job_id = await orch.create_job("/api/v1/jobs/slow")
        await started.wait()
    job = await storage.get_job(job_id)
    assert job is not None
    assert job.current_state == "done"


async def test_background_jobs_and_cancel_from_code(orchestrator: OrchestratorFactory) -> None:
    async with orchestrator(echo_blueprint()) as orch:
        engine = orch.engine
        with pytest.raises(ValueError, match="not registered"):
            await engine.create_background_job("nope")
        job_id = await engine.create_background_job("echo", {"x": 1})
        assert await engine.cancel_job(job_id) is True
        assert await engine.cancel_job(job_id) is False
        assert await engine.cancel_job("missing") is False


def sleeping_blueprint(seconds: float, started: asyncio.Event, runs: list[str]) -> Blueprint:
    """``start`` sleeps ``seconds`` (a step in flight that long), counting its runs, then ``done``."""
    bp = Blueprint(name="sleepy", api_version="v1", api_endpoint="/jobs/sleepy")

    @bp.handler(is_start=True)
    async def start(job_id: str, actions: ActionFactory) -> None:
        runs.append(job_id)
        started.set()
        await asyncio.sleep(seconds)
        actions.go_to("done")

    @bp.handler(is_end=True)
    async def done() -> None:
        return None

    return bp


async def test_drain_hands_back_a_step_that_does_not_finish_in_time() -> None:
    from avtomatika.engine.executor import Drained, JobExecutor

    started, runs = asyncio.Event(), []
    engine = OrchestratorEngine(MemoryStorage(), make_config(EXECUTOR_LEASE_SECONDS=60))
    engine.register_blueprint(sleeping_blueprint(60, started, runs))
    executor = JobExecutor(engine.services)
    loop_task = asyncio.create_task(executor.run())
    job_id = await engine.create_background_job("sleepy")
    await started.wait()
    assert await executor.drain(0.1, 1.0) == Drained(finished=0, handed_back=1)
    await loop_task
    # Ready at once for another instance, not after the 60 s lease.
    claimed = await engine.storage.claim_run("another-instance", 30, timeout=0)
    assert claimed is not None
    assert claimed.lease.job_id == job_id


async def test_drain_renews_the_leases_of_steps_it_waits_for() -> None:
    from avtomatika.engine.executor import Drained, JobExecutor

    started, runs = asyncio.Event(), []
    storage = MemoryStorage()
    engine = OrchestratorEngine(storage, make_config(EXECUTOR_LEASE_SECONDS=1.0))
    engine.register_blueprint(sleeping_blueprint(2.5, started, runs))
    executor = JobExecutor(engine.services)
    loop_task = asyncio.create_task(executor.run())
    job_id = await engine.create_background_job("sleepy")
    await started.wait()
    drain = asyncio.create_task(executor.drain(5.0, 1.0))
    # Over two lease lengths pass while the step drains: nobody else may take it meanwhile (a
    # lease of a second, renewed every third of it, holds on a loaded machine too).
    assert await storage.claim_run("another-instance", 30, timeout=2.3) is None
    assert await drain == Drained(finished=1, handed_back=0)
    await loop_task
    job = await storage.get_job(job_id)
    assert job is not None
    assert (job.current_state, runs) == ("done", [job_id])


async def test_stop_answers_held_polls_and_closes_sockets_at_once(
    orchestrator: OrchestratorFactory,
) -> None:
    from tests.fault.harness import HeldLoad

    async with orchestrator(WORKER_POLL_TIMEOUT_SECONDS=60) as orch:
        held = HeldLoad(orch.session, orch.url)
        # Ids no worker registered, as a misconfigured or departed worker would poll with.
        held.hold_polls(["never-registered", "odd.id-ü", "x" * 100])
        await held.open_sockets(["socket-a", "socket-b"])
        loop = asyncio.get_running_loop()
        deadline = loop.time() + 10
        while len(orch.engine.services.polls) < 3:
            assert loop.time() < deadline, "the long-polls never reached the engine"
            await asyncio.sleep(0.01)
        started = loop.time()
        await orch.engine.stop()
        elapsed = loop.time() - started
        polls, sockets = await held.outcomes(5)
    assert (polls, sockets) == ([204, 204, 204], [1001, 1001])
    assert elapsed < 1.5


async def test_stop_cuts_off_steps_and_requests_at_the_shutdown_timeout(
    http: aiohttp.ClientSession,
) -> None:
    started, runs = asyncio.Event(), []
    storage = MemoryStorage()
    stuck = asyncio.Event()

    async def never_answers(request: web.Request) -> web.Response:
        stuck.set()
        await asyncio.sleep(60)
        return web.Response()

    engine = OrchestratorEngine(storage, make_config(SHUTDOWN_TIMEOUT_SECONDS=2.5))
    engine.register_blueprint(sleeping_blueprint(60, started, runs))
    engine.app.router.add_post("/never", never_answers)
    await engine.start()
    request = asyncio.create_task(http.post(f"http://127.0.0.1:{engine.port}/never"))
    job_id = await engine.create_background_job("sleepy")
    await started.wait()
    await stuck.wait()
    loop = asyncio.get_running_loop()
    begun = loop.time()
    await engine.stop()
    elapsed = loop.time() - begun
    with pytest.raises(aiohttp.ServerDisconnectedError):
        await request
    # Both got until 2 s before the end of the budget (0.5 s), neither made stop() overrun it.
    assert 0.4 <= elapsed < 2.5
    claimed = await storage.claim_run("another-instance", 30, timeout=0)
    assert claimed is not None
    assert claimed.lease.job_id == job_id


class FlakyStorage(MemoryStorage):
    """Memory storage whose worker lookup fails once, like Redis dropping a connection."""

    failures = 1

    async def find_workers(self, skill: str, limit: int) -> list[Any]:
        if self.failures:
            self.failures -= 1
            raise ConnectionError("storage connection reset")
        return await super().find_workers(skill, limit)


async def test_a_storage_error_is_not_a_handler_failure(orchestrator: OrchestratorFactory) -> None:
    from tests.wire import WireWorker

    storage = FlakyStorage()
    async with orchestrator(
        echo_blueprint(), storage=storage, EXECUTOR_LEASE_SECONDS=0.3, JOB_MAX_RETRIES=0
    ) as orch:
        worker = WireWorker(orch.session, orch.url, "w1")
        await worker.register("echo")
        job_id = await orch.create_job("/api/v1/jobs/echo")
        task = await worker.poll_until_task()  # placed once the step ran again after its lease expired
        await worker.result(task, data={"ok": True})
        doc = await orch.wait_for(job_id)
    assert storage.failures == 0
    assert (doc["status"], doc["retry_count"], doc["error_message"]) == ("finished", 0, None)


async def test_a_finished_job_forgotten_by_memory_storage_reads_as_unknown(
    orchestrator: OrchestratorFactory,
) -> None:
    async with orchestrator(flaky_handler_blueprint(0), MEMORY_MAX_FINISHED_JOBS=1) as orch:
        first = await orch.create_job("/api/v1/jobs/flaky")
        await orch.wait_for(first)
        second = await orch.create_job("/api/v1/jobs/flaky")
        assert (await orch.wait_for(second))["status"] == "finished"
        async with orch.session.get(f"{orch.url}/api/v1/jobs/{first}", headers=orch.headers) as r:
            assert r.status == 404
            assert (await r.json())["error"] == "not_found"
        async with orch.session.get(f"{orch.url}/api/v1/jobs", headers=orch.headers) as r:
            assert [doc["id"] for doc in await r.json()] == [second]


def test_the_engine_applies_the_retention_settings() -> None:
    storage = MemoryStorage()
    config = make_config(
        MEMORY_JOB_RETENTION_SECONDS=60.0, MEMORY_MAX_FINISHED_JOBS=5, WORKER_RECORD_RETENTION_SECONDS=120.0
    )
    OrchestratorEngine(storage, config).setup()
    assert (storage.job_retention, storage.max_finished_jobs, storage.worker_retention) == (60.0, 5, 120.0)
    config.MEMORY_MAX_FINISHED_JOBS = -1
    with pytest.raises(ConfigError, match="MEMORY_MAX_FINISHED_JOBS"):
        OrchestratorEngine(MemoryStorage(), config).setup()
