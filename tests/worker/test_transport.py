import asyncio
import time
from collections.abc import AsyncIterator, Awaitable, Callable

import aiohttp
import pytest

from avtomatika.core.codec import decode
from avtomatika.protocol import signing
from avtomatika.protocol.models import (
    Heartbeat,
    SkillInfo,
    TaskError,
    TaskResult,
    WorkerEventPayload,
    WorkerRegistration,
)
from avtomatika.worker import backoff
from avtomatika.worker.errors import OrchestratorError, WorkerUnknownError
from avtomatika.worker.transport import EVENT_SIGNATURE_EXCLUDE, Transport, seal
from tests.conftest import free_port

from .fake_orchestrator import TOKEN, FakeOrchestrator

RESULT = TaskResult(job_id="job-1", task_id="task-1", worker_id="w-1", status="success", data={"x": 1.0})


@pytest.fixture
async def session() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as session:
        yield session


def make_transport(session: aiohttp.ClientSession, url: str, token: str = TOKEN) -> Transport:
    return Transport(session, url, token, "w-1", poll_timeout=1.0, result_attempts=3, result_retry_delay=0.01)


def event() -> WorkerEventPayload:
    return WorkerEventPayload(
        event_id="e-1",
        worker_id="w-1",
        origin_worker_id="w-1",
        event_type="progress",
        payload={"progress": 0.5, "message": ""},
        bubbling_chain=[],
        target_job_id="job-1",
        target_task_id="task-1",
    )


def test_sealed_messages_verify_with_the_protocol_signature() -> None:
    messages = [
        WorkerRegistration(worker_id="w-1", supported_skills=[SkillInfo(name="a")]),
        Heartbeat(worker_id="w-1", status="idle", current_tasks=["t"]),
        RESULT,
        TaskResult(job_id="j", task_id="t", status="failure", error=TaskError("TRANSIENT_ERROR", "x")),
    ]
    for message in messages:
        body = decode(seal(message, token=TOKEN, signer_id="w-1"))
        assert body["security"]["signer_id"] == "w-1"
        assert abs(body["timestamp"] - time.time()) < 5
        assert signing.verify(TOKEN, body, body["security"]["signature"])
        assert not signing.verify("other-token", body, body["security"]["signature"])


def test_event_signature_ignores_the_bubbling_chain() -> None:
    body = decode(seal(event(), token=TOKEN, signer_id="w-1", exclude=EVENT_SIGNATURE_EXCLUDE))
    body["bubbling_chain"] = ["relay-1"]  # appended by an intermediate hop
    assert signing.verify(TOKEN, body, body["security"]["signature"], exclude=EVENT_SIGNATURE_EXCLUDE)


def test_the_placeholder_token_does_not_sign() -> None:
    assert decode(seal(RESULT, token=signing.PLACEHOLDER_TOKEN, signer_id="w-1"))["security"] is None


async def test_every_route_is_authenticated_signed_and_accepted(
    fake_orchestrator: FakeOrchestrator, session: aiohttp.ClientSession
) -> None:
    transport = make_transport(session, fake_orchestrator.url)
    await transport.register(WorkerRegistration(worker_id="w-1"))
    reply = await transport.heartbeat(Heartbeat(worker_id="w-1", status="idle"))
    assert reply is not None
    assert reply.status == "ok"
    assert (await transport.send_result(RESULT)).status == "accepted"
    await transport.send_event(event())
    assert fake_orchestrator.rejections == []
    assert len(fake_orchestrator.registrations) == len(fake_orchestrator.heartbeats) == 1
    assert len(fake_orchestrator.results) == len(fake_orchestrator.events) == 1


async def test_poll_returns_a_task_or_none(
    fake_orchestrator: FakeOrchestrator, session: aiohttp.ClientSession
) -> None:
    fake_orchestrator.poll_hold = 0.05
    transport = make_transport(session, fake_orchestrator.url)
    assert await transport.poll() is None
    fake_orchestrator.queue_task("resize", {"width": 1}, task_id="t-1", priority=2.0)
    task = await transport.poll()
    assert task is not None
    assert (task.task_id, task.type, task.params, task.priority) == ("t-1", "resize", {"width": 1}, 2.0)


async def test_heartbeat_of_an_unknown_worker_raises_worker_unknown(
    fake_orchestrator: FakeOrchestrator, session: aiohttp.ClientSession
) -> None:
    transport = make_transport(session, fake_orchestrator.url)
    with pytest.raises(WorkerUnknownError):
        await transport.heartbeat(Heartbeat(worker_id="w-1", status="idle"))


async def test_a_wrong_token_is_refused(
    fake_orchestrator: FakeOrchestrator, session: aiohttp.ClientSession
) -> None:
    transport = make_transport(session, fake_orchestrator.url, token="wrong")
    with pytest.raises(OrchestratorError) as raised:
        await transport.register(WorkerRegistration(worker_id="w-1"))
    assert raised.value.status == 401
    assert "wrong" not in str(raised.value)


async def test_results_are_retried_on_5xx(
    fake_orchestrator: FakeOrchestrator, session: aiohttp.ClientSession
) -> None:
    fake_orchestrator.result_failures = [503, 500]
    reply = await make_transport(session, fake_orchestrator.url).send_result(RESULT)
    assert reply.status == "accepted"
    assert len(fake_orchestrator.results) == 1


async def test_results_give_up_after_the_last_attempt(
    fake_orchestrator: FakeOrchestrator, session: aiohttp.ClientSession
) -> None:
    fake_orchestrator.result_failures = [503, 503, 503, 503]
    with pytest.raises(OrchestratorError) as raised:
        await make_transport(session, fake_orchestrator.url).send_result(RESULT)
    assert raised.value.status == 503
    assert fake_orchestrator.result_failures == [503]


async def test_results_are_never_retried_on_4xx(
    fake_orchestrator: FakeOrchestrator, session: aiohttp.ClientSession
) -> None:
    fake_orchestrator.result_failures = [400, 400]
    with pytest.raises(OrchestratorError):
        await make_transport(session, fake_orchestrator.url).send_result(RESULT)
    assert fake_orchestrator.result_failures == [400]


async def test_results_are_retried_on_network_errors(
    session: aiohttp.ClientSession, worker_log: list[str]
) -> None:
    unused = FakeOrchestrator()
    await unused.start()
    url = unused.url
    await unused.stop()
    started = time.monotonic()
    with pytest.raises(aiohttp.ClientConnectionError):
        await make_transport(session, url).send_result(RESULT)
    assert time.monotonic() - started < 2
    assert [m.split(" (attempt")[1][:4] for m in worker_log if "not delivered" in m] == [
        " 1/3",
        " 2/3",
    ]


Sleeps = Callable[[Callable[[int], Awaitable[None]]], list[float]]


@pytest.fixture
def retry_sleeps(monkeypatch: pytest.MonkeyPatch) -> Sleeps:
    """Record the backoff's sleeps instead of sleeping (``asyncio.sleep`` is one module-wide
    function: zero-second yields of aiohttp still run), calling ``after(n)`` after the n-th."""
    real_sleep = asyncio.sleep

    def install(after: Callable[[int], Awaitable[None]]) -> list[float]:
        slept: list[float] = []

        async def record(seconds: float) -> None:
            if seconds <= 0:
                return await real_sleep(seconds)
            slept.append(seconds)
            await after(len(slept))

        monkeypatch.setattr(backoff.asyncio, "sleep", record)
        return slept

    return install


async def nothing(retry: int) -> None:
    return None


async def test_a_result_outlasts_an_orchestrator_restart(
    session: aiohttp.ClientSession, retry_sleeps: Sleeps
) -> None:
    """Posted while the instance is stopped (connection refused), delivered once it is back."""
    port = free_port()
    back = FakeOrchestrator()

    async def restart_on_the_third_retry(retry: int) -> None:
        if retry == 3:
            await back.start(port)

    delays = retry_sleeps(restart_on_the_third_retry)
    transport = Transport(session, f"http://127.0.0.1:{port}", TOKEN, "w-1", poll_timeout=1.0)
    try:
        reply = await transport.send_result(RESULT)
    finally:
        await back.stop()
    assert reply.status == "accepted"
    assert [r["task_id"] for r in back.results] == ["task-1"]
    assert delays == [pytest.approx(d, rel=0.11) for d in (1, 2, 4)]


async def test_a_result_is_retried_after_1_2_4_and_8_s_then_given_up(
    session: aiohttp.ClientSession, retry_sleeps: Sleeps
) -> None:
    delays = retry_sleeps(nothing)
    transport = Transport(session, f"http://127.0.0.1:{free_port()}", TOKEN, "w-1", poll_timeout=1.0)
    with pytest.raises(aiohttp.ClientConnectionError):
        await transport.send_result(RESULT)
    assert delays == [pytest.approx(d, rel=0.11) for d in (1, 2, 4, 8)]
