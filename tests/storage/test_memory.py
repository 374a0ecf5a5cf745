"""Memory-only: the bounds on what memory storage keeps, on a clock the test moves.

The conformance suite proves the retention rules on real time with small values; here the
clock is ``avtomatika.core.clock.now`` replaced by a hand-moved one, so hours pass instantly, and
the internal structures are checked to hold nothing for forgotten jobs and workers.
"""

import asyncio
from collections.abc import AsyncIterator

import pytest

from avtomatika.core import clock
from avtomatika.core.effects import Effects
from avtomatika.core.records import HeartbeatUpdate, Job, TaskState
from avtomatika.protocol.constants import JobStatus
from avtomatika.storage import MemoryStorage
from avtomatika.storage.base import worker_deadline_key
from tests.storage.test_conformance import make_job, make_task, make_worker

START = 1_800_000_000.0


class FakeClock:
    def __init__(self) -> None:
        self.now = START

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def fake_clock(monkeypatch: pytest.MonkeyPatch) -> FakeClock:
    fake = FakeClock()
    monkeypatch.setattr(clock, "now", fake)
    return fake


@pytest.fixture
async def storage() -> AsyncIterator[MemoryStorage]:
    storage = MemoryStorage()
    yield storage
    await storage.close()


async def finish(storage: MemoryStorage, job: Job, status: JobStatus = JobStatus.FINISHED) -> None:
    stored = await storage.get_job(job.id)
    assert stored is not None
    stored.status = status
    assert await storage.commit(stored, stored.version, Effects())


async def present(storage: MemoryStorage, jobs: list[Job]) -> list[bool]:
    return [await storage.get_job(job.id) is not None for job in jobs]


def held_jobs(storage: MemoryStorage) -> int:
    """Jobs held anywhere: records, client indexes, the terminal order, run-queue entries."""
    store = storage._jobs
    indexed = sum(len(ids) for ids in store._by_client.values())
    return len(store._jobs) + indexed + len(store._ended) + len(storage._runs._ready)


async def test_beyond_the_count_the_oldest_finished_jobs_go_first(
    storage: MemoryStorage, fake_clock: FakeClock
) -> None:
    storage.max_finished_jobs = 3
    running = make_job()
    await storage.create_job(running)
    jobs = [make_job() for _ in range(5)]
    for job in jobs:
        await storage.create_job(job)
    for job in jobs:
        fake_clock.now += 1
        await finish(storage, job)
    assert await present(storage, jobs) == [False, False, True, True, True]
    assert await storage.get_job(running.id) is not None, "live jobs never count"
    listed = [j.id for j in await storage.list_jobs("client-a", 10, 0)]
    assert listed == [job.id for job in reversed(jobs[2:])] + [running.id]
    # A commit on a finished job makes it the most recent one.
    await finish(storage, jobs[2], JobStatus.FAILED)
    await storage.create_job(newest := make_job(status=JobStatus.CANCELLED))
    assert await present(storage, [*jobs[2:], newest]) == [True, False, True, True]


async def test_finished_jobs_expire_after_the_retention(
    storage: MemoryStorage, fake_clock: FakeClock
) -> None:
    storage.job_retention = 3600
    done, later, running = make_job(), make_job(), make_job()
    for job in (done, later, running):
        await storage.create_job(job)
    await finish(storage, done)
    fake_clock.now += 1800
    await finish(storage, later)
    fake_clock.now += 1799
    assert await present(storage, [done, later, running]) == [True, True, True]
    fake_clock.now += 2
    assert await present(storage, [done, later, running]) == [False, True, True]
    fake_clock.now += 1800
    assert await present(storage, [done, later, running]) == [False, False, True]
    assert [j.id for j in await storage.list_jobs("client-a", 10, 0)] == [running.id]


async def test_a_forgotten_job_leaves_nothing_behind(storage: MemoryStorage, fake_clock: FakeClock) -> None:
    storage.job_retention = 60
    parent = make_job(client_id="alice")
    child = make_job(client_id="alice", parent_job_id=parent.id)
    await storage.create_job(parent, Effects(push_tasks=[make_task("t1")], create_jobs=[child]))
    assert await storage.poll_task("w1", 0) is not None
    child.status = JobStatus.FINISHED
    assert await storage.commit(child, 1, Effects(wake_jobs=[parent.id]))
    parent.status = JobStatus.CANCELLED
    assert await storage.commit(parent, 1, Effects(cancel_tasks=["t1"], wake_jobs=[child.id]))
    assert held_jobs(storage) == 2 * 4, "both have a record, an index entry, an end time and a run entry"
    fake_clock.now += 61
    assert await storage.list_jobs("alice", 10, 0) == []
    assert held_jobs(storage) == 0
    assert await storage.claim_run("exec-a", 30, 0) is None
    (tombstone,) = await storage.get_tasks(["t1"])
    assert tombstone is not None
    assert tombstone.state == TaskState.CANCELLED, "kept for its own retention, not its job's"
    fake_clock.now += storage.task_retention
    assert await storage.get_tasks(["t1"]) == [None]
    assert storage._tasks._tasks == {}
    assert storage._tasks._tombstones == {}


async def test_gone_workers_are_forgotten_after_the_retention(
    storage: MemoryStorage, fake_clock: FakeClock
) -> None:
    storage.worker_retention = 3600
    await storage.register_worker(make_worker("gone", ttl=60))
    await storage.register_worker(make_worker("beating", ttl=60))
    await storage.register_worker(make_worker("offline", ttl=60))
    await storage.create_job(make_job(), Effects(push_tasks=[make_task("q1", worker_id="gone")]))
    fake_clock.now += 30
    now = fake_clock.now
    beat = HeartbeatUpdate(status="idle", expires_at=now + 7200, last_heartbeat=now)
    assert await storage.heartbeat_worker("beating", beat) is not None
    sign_off = HeartbeatUpdate(status="offline", expires_at=now + 60, last_heartbeat=now)
    assert await storage.heartbeat_worker("offline", sign_off) is not None
    fake_clock.now = START + 60 + 3599
    assert len(await storage.list_workers()) == 3
    assert [w.worker_id for w in await storage.find_workers("resize", 10)] == ["beating"]
    fake_clock.now = START + 60 + 3601
    assert [w.worker_id for w in await storage.list_workers()] == ["beating", "offline"]
    fake_clock.now = START + 90 + 3601
    assert [w.worker_id for w in await storage.list_workers()] == ["beating"]
    assert set(storage._workers._by_skill) == {"resize", "image"}
    assert all(list(holders) == ["beating"] for holders in storage._workers._by_skill.values())
    # Its deadline and queue stay for the watcher, which hands the task to another worker.
    assert worker_deadline_key("gone") in await storage.claim_due(fake_clock.now, 10, 30)
    assert [t.task_id for t in await storage.remove_worker("gone")] == ["q1"]


async def test_a_worker_queue_lives_only_while_it_holds_tasks_and_its_signal_while_polled(
    storage: MemoryStorage,
) -> None:
    assert await storage.poll_task("stranger", 0) is None
    assert "stranger" not in storage._tasks._queues
    poller = asyncio.create_task(storage.poll_task("w1", 3))
    await asyncio.sleep(0.05)
    assert "w1" in storage._tasks._signals._signals, "a poller waits on it"
    assert "w1" not in storage._tasks._queues
    await storage.create_job(make_job(), Effects(push_tasks=[make_task("t1")]))
    assert await poller is not None
    assert "w1" not in storage._tasks._signals._signals
    assert "w1" in storage._tasks._queues, "it runs a task"
    assert await storage.requeue_task("t1")
    await storage.remove_worker("w1")
    assert "w1" not in storage._tasks._queues
