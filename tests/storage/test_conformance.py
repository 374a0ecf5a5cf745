"""The storage contract (``avtomatika.storage.base``), run against every backend in conftest.

Only the public ``StorageBackend`` API is used, so any backend can run this suite. Waits use
real time with small values and assert no tighter than about ±100 ms.
"""

import asyncio
import itertools
import time
import uuid
from collections.abc import Callable
from contextlib import AbstractAsyncContextManager
from typing import Any

import msgspec.inspect
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from avtomatika.core import clock
from avtomatika.core.effects import Effects
from avtomatika.core.records import HeartbeatUpdate, Job, TaskRecord, TaskState, WorkerRecord
from avtomatika.protocol.constants import JobStatus
from avtomatika.protocol.models import ResourcesUsage, SkillInfo, TaskPayload
from avtomatika.storage import RunLease, StorageBackend
from avtomatika.storage.base import IdempotencyClaim, KeyHolder, task_deadline_key, worker_deadline_key

OpenBackend = Callable[[], AbstractAsyncContextManager[StorageBackend]]
_created = itertools.count()


def make_job(job_id: str | None = None, client_id: str = "client-a", **fields: Any) -> Job:
    now = clock.now()
    defaults: dict[str, Any] = {
        "blueprint_name": "bp",
        "current_state": "start",
        "status": JobStatus.PENDING,
        # Strictly increasing, so "newest first" is unambiguous for every backend.
        "created_at": now + next(_created) * 1e-6,
        "updated_at": now,
        "initial_data": {"n": 1, "nested": {"items": [1, 2]}},
    }
    return Job(id=job_id or f"job-{uuid.uuid4().hex[:12]}", client_id=client_id, **(defaults | fields))


def make_task(task_id: str, worker_id: str = "w1", priority: float = 0.0, **fields: Any) -> TaskRecord:
    payload = TaskPayload(job_id="job-1", task_id=task_id, type="resize", params={"w": 512})
    return TaskRecord(
        task_id=task_id,
        job_id="job-1",
        worker_id=worker_id,
        skill="resize",
        payload=payload,
        priority=priority,
        enqueued_at=clock.now(),
        **fields,
    )


def make_worker(worker_id: str, *skills: SkillInfo, ttl: float = 60.0, **fields: Any) -> WorkerRecord:
    now = clock.now()
    return WorkerRecord(
        worker_id=worker_id,
        skills=list(skills) or [SkillInfo(name="resize", type="image")],
        registered_at=now,
        last_heartbeat=now,
        expires_at=now + ttl,
        **fields,
    )


async def push(storage: StorageBackend, *tasks: TaskRecord) -> None:
    """Push tasks the way the engine does: as effects of a job change."""
    assert await storage.create_job(make_job(), Effects(push_tasks=list(tasks)))


async def claim(storage: StorageBackend, owner: str, lease_seconds: float, timeout: float) -> RunLease | None:
    """The lease of a claim, for tests of the run queue itself (not of the job it comes with)."""
    claimed = await storage.claim_run(owner, lease_seconds, timeout)
    return None if claimed is None else claimed.lease


async def claim_now(storage: StorageBackend, owner: str = "exec-a", lease: float = 30.0) -> RunLease | None:
    return await claim(storage, owner, lease, 0)


async def drain_runs(storage: StorageBackend) -> list[str]:
    """Claim every ready entry (with long leases) and return the job ids in claim order."""
    claimed = []
    while (lease := await claim_now(storage)) is not None:
        claimed.append(lease.job_id)
    return claimed


async def is_due(storage: StorageBackend, key: str, at: float) -> bool:
    """Whether ``key``'s deadline is ≤ ``at``; a due key is re-armed at ``at`` (zero lease)."""
    return key in await storage.claim_due(at, 10_000, 0.0)


def elapsed_since(start: float) -> float:
    return time.monotonic() - start


# --- jobs ------------------------------------------------------------------------------


async def test_create_job_stores_version_one(storage: StorageBackend) -> None:
    job = make_job()
    assert await storage.create_job(job)
    assert job.version == 1
    stored = await storage.get_job(job.id)
    assert stored == job
    assert stored is not job


async def test_create_job_with_existing_id_changes_nothing(storage: StorageBackend) -> None:
    job = make_job(current_state="first")
    assert await storage.create_job(job)
    assert await drain_runs(storage) == [job.id]
    again = make_job(job.id, current_state="second")
    assert not await storage.create_job(again, Effects(push_tasks=[make_task("t1")]))
    stored = await storage.get_job(job.id)
    assert stored is not None
    assert stored.current_state == "first"
    assert await claim_now(storage) is None
    assert await storage.get_tasks(["t1"]) == [None]


async def test_get_job_unknown_is_none(storage: StorageBackend) -> None:
    assert await storage.get_job("no-such-job") is None


async def test_jobs_are_isolated_from_caller_objects(storage: StorageBackend) -> None:
    job = make_job()
    await storage.create_job(job)
    job.initial_data["n"] = 99
    first = await storage.get_job(job.id)
    assert first is not None
    assert first.initial_data["n"] == 1
    first.initial_data["nested"]["items"].append(3)
    first.current_state = "mutated"
    second = await storage.get_job(job.id)
    assert second is not None
    assert second.initial_data == {"n": 1, "nested": {"items": [1, 2]}}
    assert second.current_state == "start"
    second.state_history["s"] = {"ok": True}
    assert await storage.commit(second, 1, Effects())
    second.state_history["s"]["ok"] = False
    third = await storage.get_job(job.id)
    assert third is not None
    assert third.state_history == {"s": {"ok": True}}


async def test_commit_bumps_version_on_store_and_object(storage: StorageBackend) -> None:
    job = make_job()
    await storage.create_job(job)
    job.current_state = "next"
    assert await storage.commit(job, 1, Effects())
    assert job.version == 2
    stored = await storage.get_job(job.id)
    assert stored is not None
    assert (stored.version, stored.current_state) == (2, "next")
    assert await storage.commit(stored, 2, Effects())
    assert stored.version == 3


async def test_commit_conflict_changes_nothing(storage: StorageBackend) -> None:
    job = make_job()
    await storage.create_job(job)
    await drain_runs(storage)
    other = make_job()
    await storage.create_job(other)
    await drain_runs(storage)
    stale = await storage.get_job(job.id)
    assert stale is not None
    assert await storage.commit(job, 1, Effects())
    stale.current_state = "lost-update"
    child = make_job()
    effects = Effects(
        push_tasks=[make_task("t1")],
        create_jobs=[child],
        run_at=clock.now(),
        wake_jobs=[other.id],
        cancel_tasks=["t0"],
    )
    assert not await storage.commit(stale, 1, effects)
    assert stale.version == 1
    stored = await storage.get_job(job.id)
    assert stored is not None
    assert (stored.version, stored.current_state) == (2, "start")
    assert await storage.get_job(child.id) is None
    assert await storage.get_tasks(["t1"]) == [None]
    assert await storage.poll_task("w1", 0) is None
    assert await claim_now(storage) is None


async def test_commit_of_missing_job_returns_false(storage: StorageBackend) -> None:
    job = make_job()
    assert not await storage.commit(job, 0, Effects(push_tasks=[make_task("t1")]))
    assert await storage.get_job(job.id) is None
    assert await storage.get_tasks(["t1"]) == [None]


async def test_concurrent_commits_only_one_wins(storage: StorageBackend) -> None:
    job = make_job()
    await storage.create_job(job)
    copies = [await storage.get_job(job.id) for _ in range(5)]
    for index, copy in enumerate(copies):
        assert copy is not None
        copy.current_state = f"writer-{index}"
    results = await asyncio.gather(*(storage.commit(c, 1, Effects()) for c in copies if c is not None))
    assert sorted(results) == [False] * 4 + [True]
    stored = await storage.get_job(job.id)
    assert stored is not None
    assert stored.version == 2
    assert stored.current_state == f"writer-{results.index(True)}"


async def test_list_jobs_newest_first_per_client(storage: StorageBackend) -> None:
    mine = [make_job(client_id="alice") for _ in range(5)]
    for job in mine:
        await storage.create_job(job)
        await storage.create_job(make_job(client_id="bob"))
    newest_first = [job.id for job in reversed(mine)]
    assert [j.id for j in await storage.list_jobs("alice", 10, 0)] == newest_first
    assert [j.id for j in await storage.list_jobs("alice", 2, 0)] == newest_first[:2]
    assert [j.id for j in await storage.list_jobs("alice", 2, 3)] == newest_first[3:5]
    assert await storage.list_jobs("alice", 10, 5) == []
    assert await storage.list_jobs("alice", 0, 0) == []
    assert await storage.list_jobs("carol", 10, 0) == []
    assert all(j.client_id == "bob" for j in await storage.list_jobs("bob", 10, 0))


async def test_create_job_applies_effects_atomically(storage: StorageBackend) -> None:
    job = make_job()
    child = make_job(client_id="client-b")
    assert await storage.create_job(job, Effects(push_tasks=[make_task("t1")], create_jobs=[child]))
    assert [t.task_id for t in await storage.peek_tasks("w1", 10)] == ["t1"]
    assert await storage.get_job(child.id) is not None
    assert sorted(await drain_runs(storage)) == sorted([job.id, child.id])


# --- idempotency keys ------------------------------------------------------------------


def key_claim(key: str = "key-1", fingerprint: str = "fp-1", ttl: float = 3600.0) -> IdempotencyClaim:
    return IdempotencyClaim(key, fingerprint, ttl)


async def test_create_job_once_creates_the_job_and_claims_its_key(storage: StorageBackend) -> None:
    job = make_job()
    assert await storage.create_job_once(job, key_claim()) == KeyHolder(job.id, "fp-1")
    assert job.version == 1
    stored = await storage.get_job(job.id)
    assert stored == job
    assert await drain_runs(storage) == [job.id]


async def test_a_claimed_key_returns_its_holder_and_changes_nothing(storage: StorageBackend) -> None:
    first, second = make_job(), make_job()
    await storage.create_job_once(first, key_claim())
    assert await drain_runs(storage) == [first.id]
    for fingerprint in ("fp-1", "fp-2"):
        holder = await storage.create_job_once(second, key_claim(fingerprint=fingerprint))
        assert holder == KeyHolder(first.id, "fp-1")
    assert second.version == 0
    assert await storage.get_job(second.id) is None
    assert await claim_now(storage) is None
    assert [j.id for j in await storage.list_jobs("client-a", 10, 0)] == [first.id]


async def test_a_claimed_key_outlives_the_end_of_its_job(storage: StorageBackend) -> None:
    job = make_job()
    await storage.create_job_once(job, key_claim())
    job.status = JobStatus.FINISHED
    assert await storage.commit(job, 1, Effects())
    assert await storage.create_job_once(make_job(), key_claim()) == KeyHolder(job.id, "fp-1")


async def test_a_claimed_key_expires_after_its_ttl(storage: StorageBackend) -> None:
    first, second = make_job(), make_job()
    await storage.create_job_once(first, key_claim(ttl=0.2))
    await asyncio.sleep(0.3)
    assert await storage.create_job_once(second, key_claim(fingerprint="fp-2")) == KeyHolder(
        second.id, "fp-2"
    )
    assert await storage.create_job_once(make_job(), key_claim()) == KeyHolder(second.id, "fp-2")


async def test_each_key_is_claimed_on_its_own(storage: StorageBackend) -> None:
    first, second = make_job(), make_job()
    assert (await storage.create_job_once(first, key_claim("key-1"))).job_id == first.id
    assert (await storage.create_job_once(second, key_claim("key-2"))).job_id == second.id
    assert sorted(await drain_runs(storage)) == sorted([first.id, second.id])


async def test_concurrent_creations_with_one_key_make_one_job(storage: StorageBackend) -> None:
    attempts = [make_job() for _ in range(8)]
    holders = await asyncio.gather(*(storage.create_job_once(job, key_claim()) for job in attempts))
    assert len(set(holders)) == 1
    assert holders[0].job_id in {job.id for job in attempts}
    assert [j.id for j in await storage.list_jobs("client-a", 10, 0)] == [holders[0].job_id]


async def test_create_job_once_with_an_existing_id_claims_nothing(storage: StorageBackend) -> None:
    existing = make_job(current_state="first")
    assert await storage.create_job(existing)
    with pytest.raises(ValueError, match=existing.id):
        await storage.create_job_once(make_job(existing.id, current_state="second"), key_claim())
    stored = await storage.get_job(existing.id)
    assert stored is not None
    assert stored.current_state == "first"
    other = make_job()
    assert (await storage.create_job_once(other, key_claim())).job_id == other.id


# --- effects ---------------------------------------------------------------------------


async def test_create_jobs_effect_stores_and_enqueues_children(storage: StorageBackend) -> None:
    parent = make_job()
    await storage.create_job(parent)
    lease = await claim_now(storage)
    assert lease is not None
    children = [make_job(client_id="client-a", parent_job_id=parent.id) for _ in range(2)]
    assert await storage.commit(parent, 1, Effects(release_lease=lease.token, create_jobs=children))
    for child in children:
        assert child.version == 1
        stored = await storage.get_job(child.id)
        assert stored is not None
        assert stored.version == 1
        assert stored.parent_job_id == parent.id
    assert sorted(await drain_runs(storage)) == sorted(c.id for c in children)
    assert {j.id for j in await storage.list_jobs("client-a", 10, 0)} == {
        parent.id,
        *(c.id for c in children),
    }


async def test_create_jobs_effect_refuses_existing_ids(storage: StorageBackend) -> None:
    parent, existing = make_job(), make_job(current_state="untouched")
    await storage.create_job(parent)
    await storage.create_job(existing)
    clash = make_job(existing.id, current_state="overwritten")
    with pytest.raises(ValueError, match=existing.id):
        await storage.commit(
            parent, 1, Effects(create_jobs=[make_job(), clash], push_tasks=[make_task("t1")])
        )
    stored = await storage.get_job(existing.id)
    assert stored is not None
    assert stored.current_state == "untouched"
    current = await storage.get_job(parent.id)
    assert current is not None
    assert current.version == 1
    assert await storage.get_tasks(["t1"]) == [None]


async def test_wake_jobs_effect_enqueues_other_jobs_now(storage: StorageBackend) -> None:
    job, waiting = make_job(), make_job()
    await storage.create_job(job)
    await storage.create_job(waiting)
    await drain_runs(storage)
    assert await storage.commit(job, 1, Effects(wake_jobs=[waiting.id]))
    assert await drain_runs(storage) == [waiting.id]


async def test_release_lease_then_run_at_reenqueues(storage: StorageBackend) -> None:
    job = make_job()
    await storage.create_job(job)
    lease = await claim_now(storage)
    assert lease is not None
    assert await storage.commit(job, 1, Effects(release_lease=lease.token, run_at=clock.now()))
    again = await claim_now(storage, owner="exec-b")
    assert again is not None
    assert again.job_id == job.id
    assert again.token != lease.token


async def test_release_lease_alone_completes_the_step(storage: StorageBackend) -> None:
    job = make_job()
    await storage.create_job(job)
    lease = await claim_now(storage, lease=0.1)
    assert lease is not None
    assert await storage.commit(job, 1, Effects(release_lease=lease.token))
    assert await claim(storage, "exec-b", 30, 0.3) is None


async def test_release_lease_with_a_lost_token_keeps_the_new_holder(storage: StorageBackend) -> None:
    job = make_job()
    await storage.create_job(job)
    lost = await claim_now(storage, lease=0.1)
    assert lost is not None
    holder = await claim(storage, "exec-b", 30, 2)
    assert holder is not None
    assert holder.token != lost.token
    assert await storage.commit(job, 1, Effects(release_lease=lost.token))
    assert await storage.renew_run(holder, 30)


async def test_effects_apply_in_documented_order(storage: StorageBackend) -> None:
    job = make_job()
    await storage.create_job(job, Effects(push_tasks=[make_task("t1"), make_task("t2")]))
    # drop and cancel come before push: a task dropped or cancelled and pushed again is queued.
    effects = Effects(
        drop_tasks=["t1"],
        cancel_tasks=["t2"],
        push_tasks=[make_task("t1", priority=1), make_task("t2")],
    )
    assert await storage.commit(job, 1, effects)
    records = await storage.get_tasks(["t1", "t2"])
    assert [(r.task_id, r.state) for r in records if r is not None] == [
        ("t1", TaskState.QUEUED),
        ("t2", TaskState.QUEUED),
    ]
    assert [t.task_id for t in await storage.peek_tasks("w1", 10)] == ["t1", "t2"]
    assert await load_totals(storage, ["w1"]) == [2]


async def test_all_effects_visible_after_one_commit(storage: StorageBackend) -> None:
    other = make_job()
    await storage.create_job(other)
    await drain_runs(storage)
    job = make_job()
    await storage.create_job(job, Effects(push_tasks=[make_task("old1"), make_task("old2")]))
    lease = await claim_now(storage)
    assert lease is not None
    assert lease.job_id == job.id
    child = make_job()
    effects = Effects(
        release_lease=lease.token,
        drop_tasks=["old1"],
        cancel_tasks=["old2"],
        push_tasks=[make_task("new", worker_id="w2")],
        create_jobs=[child],
        run_at=clock.now() + 60,
        wake_jobs=[other.id],
    )
    assert await storage.commit(job, 1, effects)
    old1, old2, new = await storage.get_tasks(["old1", "old2", "new"])
    assert old1 is None
    assert old2 is not None
    assert old2.state == TaskState.CANCELLED
    assert new is not None
    assert new.state == TaskState.QUEUED
    assert await storage.get_job(child.id) is not None
    assert sorted(await drain_runs(storage)) == sorted([child.id, other.id])


# --- run queue -------------------------------------------------------------------------


async def test_claim_run_on_empty_queue_times_out(storage: StorageBackend) -> None:
    start = time.monotonic()
    assert await claim(storage, "exec-a", 30, 0) is None
    # No wait at all; generous, a loaded machine may delay the call itself.
    assert elapsed_since(start) < 2
    start = time.monotonic()
    assert await claim(storage, "exec-a", 30, 0.2) is None
    assert 0.15 <= elapsed_since(start) < 5


async def test_claim_run_takes_earliest_ready_first(storage: StorageBackend) -> None:
    now = clock.now()
    await storage.enqueue_run("later", now - 1)
    await storage.enqueue_run("earliest", now - 3)
    await storage.enqueue_run("future", now + 60)
    await storage.enqueue_run("middle", now - 2)
    assert await drain_runs(storage) == ["earliest", "middle", "later"]


async def test_claim_run_returns_the_job_as_stored_at_the_claim(storage: StorageBackend) -> None:
    job = make_job()
    await storage.create_job(job)
    claimed = await storage.claim_run("exec-a", 30, 0)
    assert claimed is not None
    assert claimed.lease.job_id == job.id
    assert claimed.job == job
    assert claimed.job is not None
    assert claimed.job.version == 1
    # A private copy: changing it changes nothing stored.
    claimed.job.current_state = "changed"
    assert await storage.get_job(job.id) == job


async def test_claim_run_of_an_entry_without_a_job_returns_no_job(storage: StorageBackend) -> None:
    await storage.enqueue_run("gone", clock.now())
    claimed = await storage.claim_run("exec-a", 30, 0)
    assert claimed is not None
    assert claimed.lease.job_id == "gone"
    assert claimed.job is None
    await storage.release_run(claimed.lease)
    assert await claim_now(storage) is None


async def test_a_reclaimed_entry_comes_with_the_job_as_committed_since(storage: StorageBackend) -> None:
    job = make_job()
    await storage.create_job(job)
    first = await storage.claim_run("exec-a", 30, 0)
    assert first is not None
    job.current_state = "moved"
    assert await storage.commit(job, 1, Effects(release_lease=first.lease.token, run_at=clock.now()))
    again = await storage.claim_run("exec-b", 30, 0)
    assert again is not None
    assert again.job is not None
    assert (again.job.version, again.job.current_state) == (2, "moved")


async def test_claim_run_is_woken_by_enqueue(storage: StorageBackend) -> None:
    start = time.monotonic()
    waiter = asyncio.create_task(claim(storage, "exec-a", 30, 3))
    await asyncio.sleep(0.05)
    assert not waiter.done()
    await storage.enqueue_run("j1", clock.now())
    lease = await waiter
    assert lease is not None
    assert lease.job_id == "j1"
    assert elapsed_since(start) < 1.0


async def test_claim_run_is_woken_by_commit_run_at(storage: StorageBackend) -> None:
    job = make_job()
    await storage.create_job(job)
    await drain_runs(storage)
    waiter = asyncio.create_task(claim(storage, "exec-a", 30, 3))
    await asyncio.sleep(0.05)
    start = time.monotonic()
    assert await storage.commit(job, 1, Effects(run_at=clock.now()))
    lease = await waiter
    assert lease is not None
    assert lease.job_id == job.id
    assert elapsed_since(start) < 1.0


async def test_concurrent_claims_get_distinct_jobs(storage: StorageBackend) -> None:
    waiters = [asyncio.create_task(claim(storage, f"exec-{i}", 30, 3)) for i in range(3)]
    await asyncio.sleep(0.05)
    now = clock.now()
    for job_id in ("j1", "j2", "j3"):
        await storage.enqueue_run(job_id, now)
    leases = await asyncio.gather(*waiters)
    assert sorted(lease.job_id for lease in leases if lease is not None) == ["j1", "j2", "j3"]


async def test_one_job_goes_to_one_of_two_claimants(storage: StorageBackend) -> None:
    waiters = [asyncio.create_task(claim(storage, f"exec-{i}", 30, 0.3)) for i in range(2)]
    await asyncio.sleep(0.05)
    await storage.enqueue_run("j1", clock.now())
    leases = await asyncio.gather(*waiters)
    assert sorted(lease is None for lease in leases) == [False, True]


async def test_claim_cancelled_just_after_an_enqueue_loses_no_entry(storage: StorageBackend) -> None:
    waiters = [asyncio.create_task(claim(storage, f"exec-{i}", 30, 3)) for i in range(2)]
    await asyncio.sleep(0.05)
    start = time.monotonic()
    await storage.enqueue_run("j1", clock.now())
    waiters[0].cancel()
    claimed = []
    for waiter in waiters:
        try:
            lease = await waiter
        except asyncio.CancelledError:
            continue
        if lease is not None:
            claimed.append(lease.job_id)
    if not claimed:
        claimed = await drain_runs(storage)
    assert claimed == ["j1"]
    assert elapsed_since(start) < 1.0, "the wake-up was lost with the cancelled claim"


async def test_delayed_entry_is_claimable_only_at_its_time(storage: StorageBackend) -> None:
    await storage.enqueue_run("j1", clock.now() + 0.3)
    assert await claim_now(storage) is None
    start = time.monotonic()
    lease = await claim(storage, "exec-a", 30, 3)
    assert lease is not None
    assert lease.job_id == "j1"
    assert 0.2 <= elapsed_since(start) < 1.5


async def test_expired_lease_is_reclaimed_by_another_owner(storage: StorageBackend) -> None:
    await storage.enqueue_run("j1", clock.now())
    # A lease of a second: held for the next call even on a loaded machine, then it expires.
    first = await claim(storage, "exec-a", 1.0, 0)
    assert first is not None
    assert await claim_now(storage, owner="exec-b") is None
    start = time.monotonic()
    second = await claim(storage, "exec-b", 30, 10)
    assert second is not None
    assert second.job_id == "j1"
    assert second.token != first.token
    assert 0.5 <= elapsed_since(start) < 5
    assert not await storage.renew_run(first, 30)


async def test_release_run_removes_the_entry(storage: StorageBackend) -> None:
    await storage.enqueue_run("j1", clock.now())
    lease = await claim(storage, "exec-a", 0.1, 0)
    assert lease is not None
    await storage.release_run(lease)
    assert await claim(storage, "exec-b", 30, 0.3) is None
    assert not await storage.renew_run(lease, 30)


async def test_release_run_with_stale_token_does_nothing(storage: StorageBackend) -> None:
    await storage.enqueue_run("j1", clock.now())
    stale = await claim(storage, "exec-a", 0.1, 0)
    assert stale is not None
    current = await claim(storage, "exec-b", 30, 2)
    assert current is not None
    await storage.release_run(stale)
    await storage.release_run(RunLease("j1", "not-a-token"))
    assert await storage.renew_run(current, 30)
    await storage.release_run(current)
    assert await claim_now(storage) is None


async def test_unclaim_run_makes_a_held_entry_claimable_now(storage: StorageBackend) -> None:
    await storage.enqueue_run("j1", clock.now())
    lease = await claim(storage, "stopping", 30, 0)
    assert lease is not None
    waiter = asyncio.create_task(claim(storage, "exec-b", 30, 30))
    await asyncio.sleep(0.05)
    start = time.monotonic()
    await storage.unclaim_run(lease)
    again = await waiter
    assert again is not None
    assert again.job_id == "j1"
    assert elapsed_since(start) < 5, "at once: not after the 30 s lease, nor the 30 s timeout"
    assert not await storage.renew_run(lease, 30)
    assert await storage.renew_run(again, 30)


async def test_unclaim_run_leaves_a_released_or_retaken_entry_alone(storage: StorageBackend) -> None:
    await storage.enqueue_run("j1", clock.now())
    released = await claim_now(storage)
    assert released is not None
    await storage.release_run(released)
    await storage.unclaim_run(released)
    assert await claim_now(storage) is None
    await storage.enqueue_run("j2", clock.now())
    lost = await claim(storage, "exec-a", 0.1, 0)
    assert lost is not None
    current = await claim(storage, "exec-b", 30, 2)
    assert current is not None
    await storage.unclaim_run(lost)
    assert await claim_now(storage) is None
    assert await storage.renew_run(current, 30)


async def test_renew_run_extends_only_a_held_lease(storage: StorageBackend) -> None:
    await storage.enqueue_run("j1", clock.now())
    # Renewed within its second (even on a loaded machine), it is not claimable past that second.
    lease = await claim(storage, "exec-a", 1.0, 0)
    assert lease is not None
    assert await storage.renew_run(lease, 30)
    assert await claim(storage, "exec-b", 30, 1.5) is None
    assert not await storage.renew_run(RunLease("j1", "forged"), 30)
    assert not await storage.renew_run(RunLease("unknown", lease.token), 30)


async def test_enqueue_run_replaces_a_leased_entry(storage: StorageBackend) -> None:
    await storage.enqueue_run("j1", clock.now())
    lease = await claim_now(storage)
    assert lease is not None
    await storage.enqueue_run("j1", clock.now())
    again = await claim_now(storage, owner="exec-b")
    assert again is not None
    assert again.job_id == "j1"
    assert not await storage.renew_run(lease, 30)
    await storage.release_run(lease)
    assert await storage.renew_run(again, 30)


async def test_enqueue_run_replaces_a_queued_entry(storage: StorageBackend) -> None:
    await storage.enqueue_run("j1", clock.now())
    await storage.enqueue_run("j1", clock.now() + 60)
    assert await claim_now(storage) is None
    await storage.enqueue_run("j1", clock.now() - 1)
    assert await drain_runs(storage) == ["j1"]


# --- worker task queues ----------------------------------------------------------------


async def test_poll_takes_highest_priority_then_fifo(storage: StorageBackend) -> None:
    await push(storage, make_task("low1", priority=0), make_task("high1", priority=5))
    await push(storage, make_task("low2", priority=0), make_task("high2", priority=5))
    await push(storage, make_task("mid", priority=2.5))
    order = [(await storage.poll_task("w1", 0)) for _ in range(5)]
    assert [t.task_id for t in order if t is not None] == ["high1", "high2", "mid", "low1", "low2"]
    assert await storage.poll_task("w1", 0) is None


async def test_poll_marks_task_running_and_moves_its_deadline(storage: StorageBackend) -> None:
    now = clock.now()
    task = make_task("t1", dispatch_deadline=now + 100, execution_timeout=1000)
    await push(storage, task)
    key = task_deadline_key("t1")
    assert not await is_due(storage, key, now + 99)
    before = clock.now()
    polled = await storage.poll_task("w1", 0)
    assert polled is not None
    assert polled.state == TaskState.RUNNING
    assert polled.picked_up_at is not None
    assert before <= polled.picked_up_at <= clock.now()
    (stored,) = await storage.get_tasks(["t1"])
    assert stored == polled
    assert not await is_due(storage, key, now + 500)
    assert await is_due(storage, key, now + 1001)


async def test_pushed_task_indexes_its_queued_deadline(storage: StorageBackend) -> None:
    now = clock.now()
    await push(
        storage,
        make_task("t1", dispatch_deadline=now + 50, result_deadline=now + 40),
        make_task("t2"),
    )
    assert not await is_due(storage, task_deadline_key("t1"), now + 39)
    due = await storage.claim_due(now + 10_000, 100, 0)
    assert task_deadline_key("t1") in due
    assert task_deadline_key("t2") not in due


async def test_poll_only_returns_the_workers_own_tasks(storage: StorageBackend) -> None:
    await push(storage, make_task("t1", worker_id="w2"))
    assert await storage.poll_task("w1", 0) is None
    polled = await storage.poll_task("w2", 0)
    assert polled is not None
    assert polled.task_id == "t1"


async def test_poll_times_out_empty(storage: StorageBackend) -> None:
    start = time.monotonic()
    assert await storage.poll_task("w1", 0.2) is None
    assert 0.1 <= elapsed_since(start) < 1.0


async def test_poll_is_woken_by_a_push_from_a_commit(storage: StorageBackend) -> None:
    job = make_job()
    await storage.create_job(job)
    waiter = asyncio.create_task(storage.poll_task("w1", 3))
    await asyncio.sleep(0.05)
    assert not waiter.done()
    start = time.monotonic()
    assert await storage.commit(job, 1, Effects(push_tasks=[make_task("t1")]))
    polled = await waiter
    assert polled is not None
    assert polled.task_id == "t1"
    assert elapsed_since(start) < 1.0


async def test_concurrent_polls_get_distinct_tasks(storage: StorageBackend) -> None:
    waiters = [asyncio.create_task(storage.poll_task("w1", 3)) for _ in range(3)]
    await asyncio.sleep(0.05)
    await push(storage, make_task("t1"), make_task("t2"), make_task("t3"))
    polled = await asyncio.gather(*waiters)
    assert sorted(t.task_id for t in polled if t is not None) == ["t1", "t2", "t3"]


async def test_cancelled_poll_loses_no_task(storage: StorageBackend) -> None:
    waiter = asyncio.create_task(storage.poll_task("w1", 3))
    await asyncio.sleep(0.05)
    waiter.cancel()
    with pytest.raises(asyncio.CancelledError):
        await waiter
    await push(storage, make_task("t1"))
    polled = await storage.poll_task("w1", 0)
    assert polled is not None
    assert polled.task_id == "t1"


async def test_poll_cancelled_just_after_a_push_loses_no_task(storage: StorageBackend) -> None:
    waiters = [asyncio.create_task(storage.poll_task("w1", 3)) for _ in range(2)]
    await asyncio.sleep(0.05)
    start = time.monotonic()
    await push(storage, make_task("t1"))
    waiters[0].cancel()
    delivered = []
    for waiter in waiters:
        try:
            record = await waiter
        except asyncio.CancelledError:
            continue
        if record is not None:
            delivered.append(record.task_id)
    if not delivered:
        leftover = await storage.poll_task("w1", 0)
        assert leftover is not None
        delivered.append(leftover.task_id)
    assert delivered == ["t1"]
    assert elapsed_since(start) < 1.0, "the wake-up was lost with the cancelled poll"


async def test_peek_tasks_in_pop_order_without_removing(storage: StorageBackend) -> None:
    await push(storage, make_task("a", priority=1), make_task("b", priority=3), make_task("c", priority=1))
    assert [t.task_id for t in await storage.peek_tasks("w1", 10)] == ["b", "a", "c"]
    assert [t.task_id for t in await storage.peek_tasks("w1", 2)] == ["b", "a"]
    assert await storage.peek_tasks("w1", 0) == []
    assert await storage.peek_tasks("nobody", 10) == []
    assert await load_totals(storage, ["w1"]) == [3]
    first = await storage.poll_task("w1", 0)
    assert first is not None
    assert first.task_id == "b"


async def test_requeue_puts_a_running_task_back_at_the_head(storage: StorageBackend) -> None:
    now = clock.now()
    await push(storage, make_task("t1", dispatch_deadline=now + 100), make_task("t2"))
    polled = await storage.poll_task("w1", 0)
    assert polled is not None
    assert polled.task_id == "t1"
    assert await storage.requeue_task("t1")
    (record,) = await storage.get_tasks(["t1"])
    assert record is not None
    assert (record.state, record.picked_up_at) == (TaskState.QUEUED, None)
    assert [t.task_id for t in await storage.peek_tasks("w1", 10)] == ["t1", "t2"]
    assert await load_totals(storage, ["w1"]) == [2]
    assert await is_due(storage, task_deadline_key("t1"), now + 101)
    assert not await storage.requeue_task("t1")
    assert not await storage.requeue_task("unknown")


async def test_requeue_wakes_a_waiting_poll(storage: StorageBackend) -> None:
    await push(storage, make_task("t1"))
    assert await storage.poll_task("w1", 0) is not None
    waiter = asyncio.create_task(storage.poll_task("w1", 3))
    await asyncio.sleep(0.05)
    assert await storage.requeue_task("t1")
    polled = await waiter
    assert polled is not None
    assert polled.task_id == "t1"


async def test_steal_reassigns_a_queued_task(storage: StorageBackend) -> None:
    await push(storage, make_task("t1", execution_timeout=1000), make_task("t2"))
    stolen = await storage.steal_task("t1", "w1", "w2")
    assert stolen is not None
    assert (stolen.task_id, stolen.worker_id, stolen.state) == ("t1", "w2", TaskState.RUNNING)
    assert stolen.picked_up_at is not None
    (record,) = await storage.get_tasks(["t1"])
    assert record == stolen
    assert [t.task_id for t in await storage.peek_tasks("w1", 10)] == ["t2"]
    assert await load_totals(storage, ["w1", "w2"]) == [1, 1]
    assert await is_due(storage, task_deadline_key("t1"), stolen.picked_up_at + 1001)


async def test_steal_only_if_still_queued_on_that_worker(storage: StorageBackend) -> None:
    await push(storage, make_task("t1"), make_task("t2"))
    assert await storage.steal_task("t1", "w3", "w2") is None
    assert await storage.steal_task("unknown", "w1", "w2") is None
    assert await storage.poll_task("w1", 0) is not None
    assert await storage.steal_task("t1", "w1", "w2") is None
    assert await storage.steal_task("t2", "w1", "w2") is not None
    assert await storage.steal_task("t2", "w1", "w3") is None
    (record,) = await storage.get_tasks(["t2"])
    assert record is not None
    assert record.worker_id == "w2"


async def test_cancel_tasks_keeps_a_cancelled_record_for_retention(storage: StorageBackend) -> None:
    storage.task_retention = 100.0
    job = make_job()
    await storage.create_job(job, Effects(push_tasks=[make_task("queued"), make_task("running")]))
    assert await storage.poll_task("w1", 0) is not None
    now = clock.now()
    assert await storage.commit(job, 1, Effects(cancel_tasks=["queued", "running", "unknown"]))
    records = await storage.get_tasks(["queued", "running", "unknown"])
    assert [r.state if r else None for r in records] == [TaskState.CANCELLED, TaskState.CANCELLED, None]
    assert await storage.peek_tasks("w1", 10) == []
    assert await storage.poll_task("w1", 0) is None
    assert await load_totals(storage, ["w1"]) == [0]
    assert not await is_due(storage, task_deadline_key("queued"), now + 90)
    assert await is_due(storage, task_deadline_key("queued"), clock.now() + 101)


async def test_drop_tasks_removes_record_queue_entry_and_deadline(storage: StorageBackend) -> None:
    now = clock.now()
    job = make_job()
    tasks = [make_task("queued", dispatch_deadline=now + 10), make_task("running", execution_timeout=10)]
    await storage.create_job(job, Effects(push_tasks=tasks))
    assert await storage.poll_task("w1", 0) is not None
    assert await storage.commit(job, 1, Effects(drop_tasks=["queued", "running", "unknown"]))
    assert await storage.get_tasks(["queued", "running"]) == [None, None]
    assert await storage.peek_tasks("w1", 10) == []
    assert await load_totals(storage, ["w1"]) == [0]
    due = await storage.claim_due(now + 10_000, 100, 0)
    assert not {task_deadline_key("queued"), task_deadline_key("running")} & set(due)


async def test_get_tasks_in_order_with_none_for_unknown_and_copies(storage: StorageBackend) -> None:
    await push(storage, make_task("t1"), make_task("t2"))
    records = await storage.get_tasks(["t2", "nope", "t1"])
    assert [r.task_id if r else None for r in records] == ["t2", None, "t1"]
    assert records[0] is not None
    records[0].payload.params["w"] = 1
    records[0].worker_id = "thief"
    (again,) = await storage.get_tasks(["t2"])
    assert again is not None
    assert (again.payload.params["w"], again.worker_id) == (512, "w1")


async def test_pushed_task_is_a_copy(storage: StorageBackend) -> None:
    task = make_task("t1")
    await push(storage, task)
    task.payload.params["w"] = 1
    task.priority = 99
    polled = await storage.poll_task("w1", 0)
    assert polled is not None
    assert (polled.payload.params["w"], polled.priority) == (512, 0.0)


async def test_pushing_an_existing_task_id_replaces_it(storage: StorageBackend) -> None:
    await push(storage, make_task("t1", priority=1))
    await push(storage, make_task("t1", worker_id="w2"))
    assert await load_totals(storage, ["w1", "w2"]) == [0, 1]
    assert await storage.poll_task("w1", 0) is None
    polled = await storage.poll_task("w2", 0)
    assert polled is not None
    assert polled.task_id == "t1"


async def test_worker_loads_count_queued_and_running(storage: StorageBackend) -> None:
    await push(storage, make_task("a"), make_task("b"), make_task("c", worker_id="w2"))
    assert await storage.poll_task("w1", 0) is not None
    loads = await storage.worker_loads(["w2", "w1", "idle"])
    assert [(load.queued, load.running) for load in loads] == [(1, 0), (1, 1), (0, 0)]
    assert [load.total for load in loads] == [1, 2, 0]


async def test_a_poll_stamps_a_registered_worker_only(storage: StorageBackend) -> None:
    await storage.register_worker(make_worker("w1"))
    before = clock.now()
    assert await storage.poll_task("w1", 0) is None
    assert await storage.poll_task("stranger", 0) is None
    worker = await storage.get_worker("w1")
    assert worker is not None
    assert worker.last_poll >= before
    assert await storage.get_worker("stranger") is None, "a poll registers no one"
    found = await storage.find_workers("resize", 10)
    assert [w.last_poll for w in found] == [worker.last_poll]
    await storage.register_worker(make_worker("w1"))
    again = await storage.get_worker("w1")
    assert again is not None
    assert again.last_poll == 0.0, "a registration starts the worker afresh"


async def load_totals(storage: StorageBackend, worker_ids: list[str]) -> list[int]:
    return [load.total for load in await storage.worker_loads(worker_ids)]


# --- deadlines -------------------------------------------------------------------------


async def test_claim_due_earliest_first_with_limit(storage: StorageBackend) -> None:
    now = clock.now()
    for key, offset in [("c", -1.0), ("a", -3.0), ("future", 60.0), ("b", -2.0)]:
        await storage.set_deadline(key, now + offset)
    assert await storage.claim_due(now, 2, 30) == ["a", "b"]
    assert await storage.claim_due(now, 10, 30) == ["c"]
    assert await storage.claim_due(now, 10, 30) == []
    assert await storage.claim_due(now, 0, 30) == []


async def test_claimed_deadline_becomes_due_again_after_its_lease(storage: StorageBackend) -> None:
    now = clock.now()
    await storage.set_deadline("k", now - 1)
    assert await storage.claim_due(now, 10, 30) == ["k"]
    assert await storage.claim_due(now + 29, 10, 30) == []
    assert await storage.claim_due(now + 31, 10, 30) == ["k"]


async def test_set_deadline_replaces_and_clear_removes(storage: StorageBackend) -> None:
    now = clock.now()
    await storage.set_deadline("k", now - 10)
    await storage.set_deadline("k", now + 10)
    await storage.set_deadline("gone", now - 5)
    await storage.clear_deadline("gone")
    await storage.clear_deadline("never-set")
    assert await storage.claim_due(now, 10, 30) == []
    assert await storage.claim_due(now + 11, 10, 30) == ["k"]


# --- workers ---------------------------------------------------------------------------


async def test_register_and_get_worker(storage: StorageBackend) -> None:
    record = make_worker("w1", metadata={"zone": "eu"})
    stored = await storage.register_worker(record)
    assert stored == record
    fetched = await storage.get_worker("w1")
    assert fetched == record
    assert fetched is not None
    fetched.skills.clear()
    record.hot_cache.append("model")
    assert await storage.get_worker("w1") == stored
    assert await storage.get_worker("unknown") is None


async def test_register_sets_the_liveness_deadline(storage: StorageBackend) -> None:
    record = await storage.register_worker(make_worker("w1", ttl=60))
    key = worker_deadline_key("w1")
    assert not await is_due(storage, key, record.expires_at - 1)
    assert await is_due(storage, key, record.expires_at + 1)


async def test_find_workers_by_skill_name_or_type(storage: StorageBackend) -> None:
    await storage.register_worker(make_worker("w1", SkillInfo(name="resize", type="image")))
    await storage.register_worker(make_worker("w2", SkillInfo(name="crop", type="image")))
    await storage.register_worker(make_worker("w3", SkillInfo(name="transcribe")))

    async def ids(skill: str) -> set[str]:
        return {w.worker_id for w in await storage.find_workers(skill, 10)}

    assert await ids("resize") == {"w1"}
    assert await ids("image") == {"w1", "w2"}
    assert await ids("transcribe") == {"w3"}
    assert await ids("unknown") == set()


async def test_find_workers_respects_limit(storage: StorageBackend) -> None:
    for index in range(5):
        await storage.register_worker(make_worker(f"w{index}"))
    assert len(await storage.find_workers("resize", 3)) == 3
    assert len(await storage.find_workers("resize", 10)) == 5
    assert await storage.find_workers("resize", 0) == []


async def test_find_workers_skips_expired(storage: StorageBackend) -> None:
    await storage.register_worker(make_worker("live", ttl=60))
    await storage.register_worker(make_worker("dead", ttl=-1))
    assert [w.worker_id for w in await storage.find_workers("resize", 10)] == ["live"]
    assert {w.worker_id for w in await storage.list_workers()} == {"live", "dead"}


async def test_heartbeat_of_unknown_worker_stores_nothing(storage: StorageBackend) -> None:
    now = clock.now()
    update = HeartbeatUpdate(status="idle", expires_at=now + 60, last_heartbeat=now)
    assert await storage.heartbeat_worker("ghost", update) is None
    assert await storage.get_worker("ghost") is None
    assert worker_deadline_key("ghost") not in await storage.claim_due(now + 10_000, 100, 0)


async def test_heartbeat_applies_only_the_fields_sent(storage: StorageBackend) -> None:
    registered = await storage.register_worker(
        make_worker("w1", hot_cache=["m1"], hot_skills=["resize"], skills_hash="h1", ttl=60)
    )
    now = clock.now()
    usage = ResourcesUsage(cpu_load_percent=50.0)
    update = HeartbeatUpdate(status="busy", expires_at=now + 120, last_heartbeat=now, usage=usage)
    stored = await storage.heartbeat_worker("w1", update)
    assert stored is not None
    assert (stored.status, stored.expires_at, stored.last_heartbeat) == ("busy", now + 120, now)
    assert stored.usage == usage
    assert (stored.hot_cache, stored.hot_skills, stored.skills_hash) == (["m1"], ["resize"], "h1")
    assert stored.skills == registered.skills
    assert await storage.get_worker("w1") == stored
    key = worker_deadline_key("w1")
    assert not await is_due(storage, key, now + 119)
    assert await is_due(storage, key, now + 121)
    update = HeartbeatUpdate(
        status="idle", expires_at=now + 60, last_heartbeat=now, hot_cache=[], skills_hash="h2"
    )
    stored = await storage.heartbeat_worker("w1", update)
    assert stored is not None
    assert (stored.hot_cache, stored.skills_hash, stored.usage) == ([], "h2", usage)


def sample(kind: msgspec.inspect.Type, tag: str) -> Any:
    """A value of ``kind`` unlike any default (not None, not empty), built from the type alone."""
    match kind:
        case msgspec.inspect.UnionType(types=types):
            return sample(next(t for t in types if not isinstance(t, msgspec.inspect.NoneType)), tag)
        case msgspec.inspect.StrType() | msgspec.inspect.AnyType():
            return f"sent-{tag}"
        case msgspec.inspect.BoolType():
            return True
        case msgspec.inspect.IntType():
            return 7
        case msgspec.inspect.FloatType():
            return 7.5
        case msgspec.inspect.ListType(item_type=item):
            return [sample(item, tag)]
        case msgspec.inspect.DictType(key_type=key, value_type=value):
            return {sample(key, tag): sample(value, tag)}
        case msgspec.inspect.StructType(cls=cls, fields=fields):
            return cls(**{field.name: sample(field.type, f"{tag}-{field.name}") for field in fields})
    pytest.fail(f"No sample for {kind!r}: teach sample() this type")


async def test_every_heartbeat_field_sent_reaches_the_stored_worker(storage: StorageBackend) -> None:
    registered = await storage.register_worker(make_worker("w1"))
    now = clock.now()
    kinds = msgspec.inspect.type_info(HeartbeatUpdate)
    assert isinstance(kinds, msgspec.inspect.StructType)
    sent = {field.name: sample(field.type, field.name) for field in kinds.fields}
    # Liveness stays plausible (an expired worker is not looked up), but differs from registration.
    update = HeartbeatUpdate(**(sent | {"expires_at": now + 120, "last_heartbeat": now + 1}))
    stored = await storage.heartbeat_worker("w1", update)
    read = await storage.get_worker("w1")
    assert stored is not None
    assert read is not None
    for name in update.__struct_fields__:
        value = getattr(update, name)
        assert getattr(registered, name) != value, f"the sample for {name} does not change it"
        assert (getattr(stored, name), getattr(read, name)) == (value, value), name


async def test_heartbeat_with_skills_reindexes(storage: StorageBackend) -> None:
    await storage.register_worker(make_worker("w1", SkillInfo(name="resize", type="image")))
    now = clock.now()
    update = HeartbeatUpdate(
        status="idle", expires_at=now + 60, last_heartbeat=now, skills=[SkillInfo(name="transcribe")]
    )
    assert await storage.heartbeat_worker("w1", update) is not None
    assert await storage.find_workers("resize", 10) == []
    assert await storage.find_workers("image", 10) == []
    assert [w.worker_id for w in await storage.find_workers("transcribe", 10)] == ["w1"]


async def test_reregistration_keeps_reputation_and_reindexes(storage: StorageBackend) -> None:
    await storage.register_worker(make_worker("w1", SkillInfo(name="resize")))
    await storage.adjust_reputation("w1", -0.3)
    again = await storage.register_worker(make_worker("w1", SkillInfo(name="crop"), reputation=1.0))
    assert again.reputation == pytest.approx(0.7)
    stored = await storage.get_worker("w1")
    assert stored is not None
    assert stored.reputation == pytest.approx(0.7)
    assert await storage.find_workers("resize", 10) == []
    assert [w.worker_id for w in await storage.find_workers("crop", 10)] == ["w1"]


async def test_adjust_reputation_clamps_to_unit_interval(storage: StorageBackend) -> None:
    await storage.register_worker(make_worker("w1"))

    async def reputation() -> float:
        stored = await storage.get_worker("w1")
        assert stored is not None
        return stored.reputation

    await storage.adjust_reputation("w1", 0.5)
    assert await reputation() == 1.0
    await storage.adjust_reputation("w1", -0.25)
    assert await reputation() == pytest.approx(0.75)
    await storage.adjust_reputation("w1", -5)
    assert await reputation() == 0.0
    await storage.adjust_reputation("ghost", 0.1)
    assert await storage.get_worker("ghost") is None


async def test_remove_worker_returns_its_tasks_and_forgets_it(storage: StorageBackend) -> None:
    now = clock.now()
    await storage.register_worker(make_worker("w1"))
    await storage.register_worker(make_worker("w2"))
    tasks = [make_task("q1", dispatch_deadline=now + 5), make_task("r1"), make_task("other", worker_id="w2")]
    await push(storage, *tasks)
    started = await storage.poll_task("w1", 0)
    assert started is not None
    assert started.task_id == "q1"
    removed = await storage.remove_worker("w1")
    assert sorted(t.task_id for t in removed) == ["q1", "r1"]
    assert await storage.get_worker("w1") is None
    assert [w.worker_id for w in await storage.find_workers("resize", 10)] == ["w2"]
    running, queued, other = await storage.get_tasks(["q1", "r1", "other"])
    assert queued is None
    # The running task is a tombstone: a worker that comes back is told to cancel it.
    assert running is not None
    assert running.state == TaskState.CANCELLED
    assert other is not None
    assert other.task_id == "other"
    assert await load_totals(storage, ["w1", "w2"]) == [0, 1]
    assert not set(await storage.claim_due(now + 10, 100, 0)) & {
        worker_deadline_key("w1"),
        task_deadline_key("q1"),
        task_deadline_key("r1"),
    }
    assert task_deadline_key("q1") in await storage.claim_due(now + storage.task_retention + 10, 100, 0)
    assert await storage.remove_worker("w1") == []


async def test_list_workers_returns_every_worker(storage: StorageBackend) -> None:
    assert await storage.list_workers() == []
    for worker_id in ("a", "b"):
        await storage.register_worker(make_worker(worker_id))
    assert sorted(w.worker_id for w in await storage.list_workers()) == ["a", "b"]


# --- retention -------------------------------------------------------------------------


async def test_terminal_jobs_are_gone_after_the_retention(storage: StorageBackend) -> None:
    storage.job_retention = 0.3
    ended, revived, running = make_job(), make_job(), make_job()
    for job in (ended, revived, running):
        await storage.create_job(job)
    for job in (ended, revived):
        job.status = JobStatus.FINISHED
        assert await storage.commit(job, 1, Effects())
    revived.status = JobStatus.RUNNING
    assert await storage.commit(revived, 2, Effects())
    assert await storage.get_job(ended.id) is not None
    await asyncio.sleep(0.5)
    assert await storage.get_job(ended.id) is None
    assert [j.id for j in await storage.list_jobs("client-a", 10, 0)] == [running.id, revived.id]
    ended.status = JobStatus.RUNNING
    assert not await storage.commit(ended, 2, Effects()), "a gone job is missing"


async def test_a_commit_restarts_a_terminal_jobs_retention(storage: StorageBackend) -> None:
    storage.job_retention = 0.4
    job = make_job(status=JobStatus.FAILED)
    await storage.create_job(job)
    await asyncio.sleep(0.25)
    assert await storage.commit(job, 1, Effects())
    await asyncio.sleep(0.25)
    assert await storage.get_job(job.id) is not None
    await asyncio.sleep(0.3)
    assert await storage.get_job(job.id) is None


async def test_cancelled_tasks_are_gone_after_the_retention_with_or_without_their_job(
    storage: StorageBackend,
) -> None:
    storage.job_retention, storage.task_retention = 0.1, 0.3
    job = make_job()
    await storage.create_job(job, Effects(push_tasks=[make_task("t1"), make_task("t2")]))
    assert await storage.poll_task("w1", 0) is not None
    job.status = JobStatus.CANCELLED
    assert await storage.commit(job, 1, Effects(cancel_tasks=["t1", "t2"]))
    await asyncio.sleep(0.2)
    assert await storage.get_job(job.id) is None
    assert [r.state if r else None for r in await storage.get_tasks(["t1", "t2"])] == [
        TaskState.CANCELLED
    ] * 2
    await asyncio.sleep(0.2)
    assert await storage.get_tasks(["t1", "t2"]) == [None, None]
    assert await load_totals(storage, ["w1"]) == [0]


async def test_gone_worker_records_expire_with_their_index_entries(storage: StorageBackend) -> None:
    storage.worker_retention = 0.3
    now = clock.now()
    await storage.register_worker(make_worker("live", ttl=60))
    await storage.register_worker(make_worker("gone", ttl=0.05))
    await storage.register_worker(make_worker("beating", ttl=0.05))
    await push(storage, make_task("q1", worker_id="gone"))
    update = HeartbeatUpdate(status="idle", expires_at=clock.now() + 60, last_heartbeat=clock.now())
    assert await storage.heartbeat_worker("beating", update) is not None
    await asyncio.sleep(0.2)
    assert await storage.get_worker("gone") is not None, "kept for the retention after going"
    await asyncio.sleep(0.3)
    assert await storage.get_worker("gone") is None
    assert sorted(w.worker_id for w in await storage.list_workers()) == ["beating", "live"]
    assert sorted(w.worker_id for w in await storage.find_workers("resize", 10)) == ["beating", "live"]
    assert await storage.heartbeat_worker("gone", update) is None, "it must register again"
    # The liveness deadline and the queue outlive the record: the watcher re-dispatches its tasks.
    assert await is_due(storage, worker_deadline_key("gone"), now + 1)
    assert [t.task_id for t in await storage.remove_worker("gone")] == ["q1"]


async def test_an_offline_worker_expires_like_a_dead_one(storage: StorageBackend) -> None:
    storage.worker_retention = 0.2
    await storage.register_worker(make_worker("w1", ttl=60))
    now = clock.now()
    update = HeartbeatUpdate(status="offline", expires_at=now + 0.05, last_heartbeat=now)
    assert await storage.heartbeat_worker("w1", update) is not None
    await asyncio.sleep(0.4)
    assert await storage.get_worker("w1") is None
    assert await storage.list_workers() == []


# --- locks -----------------------------------------------------------------------------


async def test_lock_is_exclusive_and_reentrant(storage: StorageBackend) -> None:
    assert await storage.acquire_lock("watcher", "a", 0.2)
    assert not await storage.acquire_lock("watcher", "b", 30)
    assert await storage.acquire_lock("watcher", "a", 30)
    await asyncio.sleep(0.3)
    assert not await storage.acquire_lock("watcher", "b", 30)
    assert await storage.acquire_lock("other", "b", 30)


async def test_lock_expires(storage: StorageBackend) -> None:
    assert await storage.acquire_lock("watcher", "a", 0.1)
    await asyncio.sleep(0.2)
    assert await storage.acquire_lock("watcher", "b", 30)
    assert not await storage.release_lock("watcher", "a")
    assert not await storage.acquire_lock("watcher", "a", 30)


async def test_release_lock_is_compare_and_delete(storage: StorageBackend) -> None:
    assert not await storage.release_lock("watcher", "a")
    assert await storage.acquire_lock("watcher", "a", 30)
    assert not await storage.release_lock("watcher", "b")
    assert not await storage.acquire_lock("watcher", "b", 30)
    assert await storage.release_lock("watcher", "a")
    assert not await storage.release_lock("watcher", "a")
    assert await storage.acquire_lock("watcher", "b", 30)


async def test_a_silence_between_watch_stamps_pauses_every_deadline(storage: StorageBackend) -> None:
    t = 1_800_000_000.0
    await storage.set_deadline("worker:w1", t + 1)
    await storage.set_deadline("task:t1", t + 30.5)
    assert await storage.stamp_watch(t, silence=2, grace=5) == 0.0  # the first stamp
    assert await storage.stamp_watch(t + 1.5, silence=2, grace=5) == 0.0
    assert await storage.claim_due(t + 1.5, 10, 0) == ["worker:w1"]
    await storage.set_deadline("worker:w1", t + 3)
    # Nobody stamped for 60 s: every deadline moves 60 s (the gap) + 5 s (the grace) later.
    assert await storage.stamp_watch(t + 61.5, silence=2, grace=5) == 60.0
    assert await storage.claim_due(t + 67.9, 10, 0) == []
    assert await storage.claim_due(t + 68, 10, 100) == ["worker:w1"]
    assert await storage.claim_due(t + 95.5, 10, 30) == ["task:t1"]
    # A stamp from a clock behind the last one is no silence.
    assert await storage.stamp_watch(t + 61, silence=2, grace=5) == 0.0


# --- properties ------------------------------------------------------------------------

_PROPERTY_SETTINGS = settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)

_queue_ops = st.lists(
    st.one_of(
        st.tuples(st.just("push"), st.sampled_from([0.0, 1.0, 2.0])),
        st.tuples(st.just("poll"), st.just(0.0)),
        st.tuples(st.just("requeue"), st.just(0.0)),
        st.tuples(st.just("cancel"), st.integers(0, 5)),
        st.tuples(st.just("steal"), st.integers(0, 5)),
    ),
    max_size=40,
)


class _QueueModel:
    """The reference behaviour of one worker's queue.

    Order is (-priority, push order); a requeued task goes ahead of every task of its priority,
    the latest requeue first.
    """

    def __init__(self) -> None:
        self.priority: dict[str, float] = {}
        self.queued: dict[str, tuple[float, int]] = {}
        self.running: list[str] = []
        self.pushes = itertools.count()
        self.requeues = itertools.count(-1, -1)

    def order(self) -> list[str]:
        return sorted(self.queued, key=self.queued.__getitem__)

    def enqueue(self, task_id: str, seq: int) -> None:
        self.queued[task_id] = (-self.priority[task_id], seq)


async def _apply_queue_op(storage: StorageBackend, model: _QueueModel, op: str, arg: float) -> None:
    if op == "push":
        seq = next(model.pushes)
        task_id = f"t{seq}"
        model.priority[task_id] = arg
        model.enqueue(task_id, seq)
        await push(storage, make_task(task_id, priority=arg))
    elif op == "poll":
        expected = model.order()[:1]
        polled = await storage.poll_task("w1", 0)
        assert ([polled.task_id] if polled else []) == expected
        for task_id in expected:
            del model.queued[task_id]
            model.running.append(task_id)
    elif op == "requeue" and model.running:
        task_id = model.running.pop()
        assert await storage.requeue_task(task_id)
        model.enqueue(task_id, next(model.requeues))
    elif op == "cancel" and model.queued:
        task_id = model.order()[int(arg) % len(model.queued)]
        del model.queued[task_id]
        assert await storage.create_job(make_job(), Effects(cancel_tasks=[task_id]))
    elif op == "steal" and model.queued:
        task_id = model.order()[int(arg) % len(model.queued)]
        del model.queued[task_id]
        assert await storage.steal_task(task_id, "w1", "w2") is not None


@_PROPERTY_SETTINGS
@given(ops=_queue_ops)
async def test_property_task_queue_keeps_priority_order_and_loses_nothing(
    open_backend: OpenBackend, ops: list[tuple[str, float]]
) -> None:
    async with open_backend() as storage:
        model = _QueueModel()
        for op, arg in ops:
            await _apply_queue_op(storage, model, op, arg)
        assert [t.task_id for t in await storage.peek_tasks("w1", 100)] == model.order()
        assert await load_totals(storage, ["w1"]) == [len(model.queued) + len(model.running)]
        drained = []
        while (polled := await storage.poll_task("w1", 0)) is not None:
            drained.append(polled.task_id)
        assert drained == model.order()


@_PROPERTY_SETTINGS
@given(
    deadlines=st.dictionaries(st.sampled_from("abcdefgh"), st.integers(-50, 50), max_size=8),
    cleared=st.sets(st.sampled_from("abcdefgh")),
    limit=st.integers(1, 10),
)
async def test_property_claim_due_returns_due_keys_earliest_first(
    open_backend: OpenBackend, deadlines: dict[str, int], cleared: set[str], limit: int
) -> None:
    async with open_backend() as storage:
        now = clock.now()
        for key, offset in deadlines.items():
            await storage.set_deadline(key, now + offset)
        for key in cleared:
            await storage.clear_deadline(key)
        live = {k: v for k, v in deadlines.items() if k not in cleared}
        due = {k for k, v in live.items() if v <= 0}
        # Keys due at the same instant may come back in any order.
        claimed = await storage.claim_due(now, limit, 1000)
        assert [live[k] for k in claimed] == sorted(live[k] for k in due)[:limit]
        rest = await storage.claim_due(now, 100, 1000)
        assert sorted(claimed + rest) == sorted(due)


@_PROPERTY_SETTINGS
@given(offsets=st.dictionaries(st.sampled_from("abcdefgh"), st.integers(-100, 100).filter(bool), max_size=8))
async def test_property_claims_ready_runs_once_each_in_time_order(
    open_backend: OpenBackend, offsets: dict[str, int]
) -> None:
    async with open_backend() as storage:
        now = clock.now()
        for job_id, offset in offsets.items():
            await storage.enqueue_run(job_id, now + offset)
        ready = {job_id for job_id, offset in offsets.items() if offset < 0}
        claimed = await drain_runs(storage)
        assert [offsets[j] for j in claimed] == sorted(offsets[j] for j in ready)
        assert sorted(claimed) == sorted(ready)
