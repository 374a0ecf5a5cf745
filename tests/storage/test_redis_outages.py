"""Riding out Redis outages (``_redis_retry``): a private redis-server killed, restarted and
frozen (SIGSTOP) under the backend. Calls wait out short outages, give up with
StorageUnavailable after their budget, nothing taken for a caller that gave up is lost, a
creation sent twice (with or without an idempotency key) is not refused, and each outage is
logged once at its start and end."""

import asyncio
import contextlib
import logging
import time

import pytest
from redis.exceptions import ConnectionError as RedisConnectionError

from avtomatika.core.effects import Effects
from avtomatika.errors import StorageUnavailable
from avtomatika.storage.base import IdempotencyClaim, KeyHolder
from avtomatika.storage.redis import connection as _redis_connection
from avtomatika.storage.redis.backend import RedisStorage
from avtomatika.storage.redis.connection import connect, connection_options
from tests.storage.conftest import PrivateRedis, wait_for_server
from tests.storage.test_conformance import make_job, make_task

OUTAGE_LOGGER = "avtomatika.storage.redis.backend"


async def started(url: str, retry_seconds: float) -> RedisStorage:
    await wait_for_server(url)
    storage = RedisStorage.from_url(url, retry_seconds=retry_seconds)
    await storage.initialize()
    return storage


def outage_lines(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.name == OUTAGE_LOGGER]


async def test_calls_made_while_redis_is_down_succeed_once_it_is_back(
    private_redis: PrivateRedis, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, OUTAGE_LOGGER)
    storage = await started(private_redis.url, retry_seconds=10)
    try:
        private_redis.kill()
        job = make_job()
        creating = asyncio.create_task(storage.create_job(job))
        reading = asyncio.create_task(storage.get_job("no-such-job"))
        await asyncio.sleep(0.5)
        assert not creating.done()
        assert not reading.done()
        private_redis.start()
        # The new server has no scripts: they are loaded again on first use.
        assert await asyncio.wait_for(creating, 8) is True
        assert await reading is None
        stored = await storage.get_job(job.id)
        assert stored is not None
        assert stored.version == 1
        lines = outage_lines(caplog)
        assert len(lines) == 2, lines
        assert "unreachable" in lines[0]
        assert "reachable again" in lines[1]
    finally:
        await storage.close()


async def test_calls_give_up_with_storage_unavailable_after_their_budget(
    private_redis: PrivateRedis, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, OUTAGE_LOGGER)
    storage = await started(private_redis.url, retry_seconds=0.3)
    try:
        private_redis.kill()
        began = time.monotonic()
        for _ in range(5):
            with pytest.raises(StorageUnavailable) as raised:
                await storage.get_job("any")
        assert raised.value.retry_after >= 1
        assert time.monotonic() - began < 5
        assert len(outage_lines(caplog)) == 1, "one line when the outage starts, not one per call"
        private_redis.start()
        await wait_for_server(private_redis.url)
        for _ in range(30):  # until the storage's probe has seen it back
            with contextlib.suppress(StorageUnavailable):
                assert await storage.create_job(make_job())
                break
            await asyncio.sleep(0.1)
        assert "reachable again" in outage_lines(caplog)[-1]
    finally:
        await storage.close()


async def test_a_frozen_server_is_waited_for_within_the_budget(private_redis: PrivateRedis) -> None:
    storage = await started(private_redis.url, retry_seconds=10)
    other = await started(private_redis.url, retry_seconds=10)
    try:
        job = make_job()
        assert await storage.create_job(job)
        private_redis.pause()
        # Longer than one attempt may wait: the attempt is retried, and the creation sent twice.
        second = make_job()
        creating = asyncio.create_task(storage.create_job(second))
        committing = asyncio.create_task(storage.commit(job, 1, Effects(push_tasks=[make_task("t1")])))
        await asyncio.sleep(3)
        private_redis.resume()
        assert await asyncio.wait_for(creating, 8) is True, "a creation sent again is its own, not a clash"
        assert await committing is True
        polled = await other.poll_task("w1", 2)
        assert polled is not None
        assert polled.task_id == "t1"
    finally:
        await storage.close()
        await other.close()


async def test_a_creation_with_an_idempotency_key_sent_again_is_its_own(private_redis: PrivateRedis) -> None:
    storage = await started(private_redis.url, retry_seconds=10)
    try:
        private_redis.pause()
        job = make_job()
        creating = asyncio.create_task(storage.create_job_once(job, IdempotencyClaim("k-1", "fp-1", 60)))
        await asyncio.sleep(3)  # longer than one attempt may wait: the creation is sent twice
        private_redis.resume()
        assert await asyncio.wait_for(creating, 8) == KeyHolder(job.id, "fp-1")
        assert await storage.create_job_once(make_job(), IdempotencyClaim("k-1", "fp-1", 60)) == KeyHolder(
            job.id, "fp-1"
        )
    finally:
        await storage.close()


async def test_work_taken_for_a_caller_that_gave_up_is_given_back(private_redis: PrivateRedis) -> None:
    storage = await started(private_redis.url, retry_seconds=0.5)
    try:
        job = make_job()
        assert await storage.create_job(job)
        assert await storage.commit(job, 1, Effects(push_tasks=[make_task("t1")]))
        private_redis.pause()
        # The poll reaches the frozen server and gives up; the server runs it when it resumes.
        with pytest.raises(StorageUnavailable):
            await storage.poll_task("w1", 5)
        private_redis.resume()
        polled = await storage.poll_task("w1", 5)
        assert polled is not None, "the popped task came back to its queue"
        assert polled.task_id == "t1"
    finally:
        await storage.close()


async def test_a_connection_that_stops_answering_is_dropped(
    private_redis: PrivateRedis, monkeypatch: pytest.MonkeyPatch
) -> None:
    await wait_for_server(private_redis.url)
    monkeypatch.setattr(_redis_connection, "STALL_SECONDS", 0.3)
    options = connection_options(private_redis.url)
    assert options is not None
    protocol = await connect(options)
    try:
        private_redis.pause()
        began = time.monotonic()
        with pytest.raises(RedisConnectionError, match="no reply"):
            await asyncio.wait_for(protocol.call("PING"), 5)
        assert time.monotonic() - began < 2
        assert protocol.lost.done()
    finally:
        private_redis.resume()
        protocol.close()
