"""Redis-only regressions: several instances on one server, the wake-up channel, expiry,
compression, connection failures (lifecycle.md W-08, W-11, W-23, W-29), how commands reach
Redis (our multiplexed connections, redis-py clients) and jobs read along with claims.

Every test uses its own key prefix (``redis_storages``) and deletes its keys afterwards.
"""

import asyncio
import itertools
import os
import time
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any
from unittest.mock import Mock

import msgspec
import pytest
import redis.asyncio as aioredis
import uvloop
from redis.exceptions import AuthenticationError
from redis.exceptions import ConnectionError as RedisConnectionError

from avtomatika.core import clock
from avtomatika.core.effects import Effects
from avtomatika.core.records import HeartbeatUpdate, Job, TaskState
from avtomatika.protocol.constants import JobStatus
from avtomatika.protocol.models import Resources, ResourcesUsage, SkillInfo, WorkerCapabilities
from avtomatika.storage.redis.backend import RedisStorage
from avtomatika.storage.redis.connection import (
    ClientCommands,
    Commands,
    Multiplexed,
    RespProtocol,
    connection_options,
)
from avtomatika.storage.redis.keys import Keys
from tests.storage.conftest import (
    REDIS_URL,
    delete_redis_keys,
    redis_storages,
    started_redis,
    wait_for_server,
)
from tests.storage.test_conformance import claim, make_job, make_task, make_worker

pytestmark = pytest.mark.timeout(30)


@pytest.fixture
async def pair() -> AsyncIterator[tuple[RedisStorage, RedisStorage]]:
    """Two instances of one deployment: separate clients and listeners, same keys."""
    async with redis_storages(2) as (first, second):
        yield first, second


@pytest.fixture
async def raw() -> AsyncIterator[aioredis.Redis]:
    client = aioredis.Redis.from_url(REDIS_URL)
    yield client
    await client.aclose()


def keys_of(storage: RedisStorage) -> Keys:
    return storage._keys


def with_client_name(url: str, name: str) -> str:
    return f"{url}{'&' if '?' in url else '?'}client_name={name}"


async def connections_named(raw: aioredis.Redis, name: str) -> list[dict[str, str]]:
    return [c for c in await raw.client_list() if c.get("name") == name]


# --- several instances ----------------------------------------------------------------


async def test_task_pushed_by_another_instance_reaches_a_waiting_poll(
    pair: tuple[RedisStorage, RedisStorage],
) -> None:
    """W-08: a task pushed while a worker long-polls on another instance is delivered, not lost."""
    a, b = pair
    for attempt in range(5):
        waiter = asyncio.create_task(a.poll_task("w1", 30))
        await asyncio.sleep(0.05)
        assert not waiter.done()
        start = time.monotonic()
        assert await b.create_job(make_job(), Effects(push_tasks=[make_task(f"t{attempt}")]))
        polled = await waiter
        # Far sooner than the poll's 30 s timeout, after which it would look again anyway.
        assert time.monotonic() - start < 5, "the poll was not woken by the push"
        assert polled is not None
        assert (polled.task_id, polled.state) == (f"t{attempt}", TaskState.RUNNING)
        assert await b.get_tasks([f"t{attempt}"]) == [polled]


async def test_polls_on_two_instances_get_each_task_once(pair: tuple[RedisStorage, RedisStorage]) -> None:
    a, b = pair
    waiters = [asyncio.create_task(s.poll_task("w1", 3)) for s in (a, b) for _ in range(10)]
    await asyncio.sleep(0.05)
    await b.create_job(make_job(), Effects(push_tasks=[make_task(f"t{i}") for i in range(12)]))
    for index in range(12, 20):
        await a.create_job(make_job(), Effects(push_tasks=[make_task(f"t{index}")]))
    polled = await asyncio.gather(*waiters)
    assert sorted(t.task_id for t in polled if t is not None) == sorted(f"t{i}" for i in range(20))


async def test_run_enqueued_on_another_instance_wakes_a_claim(
    pair: tuple[RedisStorage, RedisStorage],
) -> None:
    a, b = pair
    waiter = asyncio.create_task(claim(a, "exec-a", 30, 30))
    await asyncio.sleep(0.05)
    start = time.monotonic()
    await b.enqueue_run("j1", clock.now())
    lease = await waiter
    assert lease is not None
    assert lease.job_id == "j1"
    assert time.monotonic() - start < 5, "woken, not timed out (30 s)"
    # A delayed entry from another instance re-arms the waiting claimant's timer.
    waiter = asyncio.create_task(claim(a, "exec-a", 30, 30))
    await asyncio.sleep(0.05)
    start = time.monotonic()
    await b.enqueue_run("j2", clock.now() + 0.3)
    lease = await waiter
    assert lease is not None
    assert lease.job_id == "j2"
    assert 0.25 <= time.monotonic() - start < 5, "at the entry's time, not at the 30 s timeout"


async def test_one_ready_run_goes_to_one_instance(pair: tuple[RedisStorage, RedisStorage]) -> None:
    a, b = pair
    waiters = [asyncio.create_task(claim(s, "exec", 30, 0.3)) for s in (a, b, a, b)]
    await asyncio.sleep(0.05)
    await a.enqueue_run("j1", clock.now())
    leases = await asyncio.gather(*waiters)
    assert [lease.job_id for lease in leases if lease is not None] == ["j1"]


async def test_concurrent_commits_on_two_instances_exactly_one_wins(
    pair: tuple[RedisStorage, RedisStorage],
) -> None:
    """W-23: writers holding the same version race; one commit applies, the others change nothing."""
    a, b = pair
    job = make_job()
    await a.create_job(job)
    copies = [await s.get_job(job.id) for s in (a, b) * 4]
    commits = []
    for index, copy in enumerate(copies):
        assert copy is not None
        copy.current_state = f"writer-{index}"
        effects = Effects(push_tasks=[make_task(f"t{index}")])
        commits.append((a, b)[index % 2].commit(copy, 1, effects))
    results = await asyncio.gather(*commits)
    assert results.count(True) == 1
    winner = results.index(True)
    stored = await b.get_job(job.id)
    assert stored is not None
    assert (stored.version, stored.current_state) == (2, f"writer-{winner}")
    tasks = await a.get_tasks([f"t{index}" for index in range(len(copies))])
    assert [t.task_id for t in tasks if t is not None] == [f"t{winner}"]


async def test_expired_lease_is_taken_over_by_another_instance(
    pair: tuple[RedisStorage, RedisStorage],
) -> None:
    a, b = pair
    job = make_job()
    await a.create_job(job)
    # A lease of a second: held for the next call even on a loaded machine, then it expires.
    lost = await claim(a, "exec-a", 1.0, 0)
    assert lost is not None
    assert await claim(b, "exec-b", 30, 0) is None
    start = time.monotonic()
    holder = await claim(b, "exec-b", 30, 10)
    assert holder is not None
    assert holder.job_id == job.id
    assert 0.5 <= time.monotonic() - start < 5
    assert not await a.renew_run(lost, 30)
    await a.release_run(lost)
    assert await a.commit(job, 1, Effects(release_lease=lost.token))
    assert await b.renew_run(holder, 30)


# --- records --------------------------------------------------------------------------


async def test_worker_with_empty_maps_and_floats_round_trips(pair: tuple[RedisStorage, RedisStorage]) -> None:
    """W-11: empty maps stay maps and floats stay floats through register and heartbeat."""
    a, b = pair
    record = make_worker(
        "w1",
        SkillInfo(name="resize", type="image", properties={}),
        capabilities=WorkerCapabilities(cost_per_skill={}, extra={}),
        resources=Resources(ram_gb=16.0, properties={}),
        installed_software={},
        metadata={"whole": 2.0, "empty": {}, "nested": {"list": [], "map": {}}},
    )
    assert await a.register_worker(record) == record
    now = clock.now()
    usage = ResourcesUsage(cpu_load_percent=0.0, ram_used_gb=3.0)
    update = HeartbeatUpdate(
        status="busy", expires_at=now + 60.5, last_heartbeat=now, usage=usage, hot_cache=[]
    )
    beat = await b.heartbeat_worker("w1", update)
    stored = await a.get_worker("w1")
    assert stored == beat
    assert stored is not None
    assert stored.capabilities.cost_per_skill == {}
    assert stored.metadata == {"whole": 2.0, "empty": {}, "nested": {"list": [], "map": {}}}
    assert stored.metadata is not None
    assert type(stored.metadata["whole"]) is float
    assert stored.usage == usage
    assert (stored.status, stored.expires_at, stored.hot_cache) == ("busy", now + 60.5, [])
    assert [w.worker_id for w in await b.find_workers("image", 10)] == ["w1"]


async def test_large_jobs_are_compressed_and_round_trip(
    pair: tuple[RedisStorage, RedisStorage], raw: aioredis.Redis
) -> None:
    a, b = pair
    compressible = make_job(initial_data={"text": "lorem ipsum " * 20_000, "items": list(range(5000))})
    # Over 1 MiB: compressed in a thread.
    huge = make_job(initial_data={"noise": os.urandom(700_000).hex()})
    for job in (compressible, huge):
        await a.create_job(job)
        stored = await raw.hget(keys_of(a).job(job.id), "d")
        assert isinstance(stored, bytes)
        assert stored[0] == 1, "a large blob is stored with the zstd marker"
        assert await b.get_job(job.id) == job
    small = make_job()
    await a.create_job(small)
    assert await raw.hget(keys_of(a).job(small.id), "d") == b"\x00" + msgspec.msgpack.encode(small)


# --- expiry (W-29) --------------------------------------------------------------------


async def test_terminal_jobs_and_cancelled_tasks_expire(
    pair: tuple[RedisStorage, RedisStorage], raw: aioredis.Redis
) -> None:
    a, _ = pair
    a.job_retention, a.task_retention = 60.0, 30.0
    keys = keys_of(a)
    index, expiring = f"{keys.prefix}:client-jobs:client-a", f"{keys.prefix}:client-expiring:client-a"
    job = make_job()
    await a.create_job(job, Effects(push_tasks=[make_task("t1")]))
    assert await raw.pttl(keys.job(job.id)) == -1
    job.status = JobStatus.FINISHED
    assert await a.commit(job, 1, Effects(cancel_tasks=["t1"]))
    assert 59_000 < await raw.pttl(keys.job(job.id)) <= 60_000
    assert 29_000 < await raw.pttl(keys.task("t1")) <= 30_000
    # Every job of the client is terminal: its index expires with the last one (an absolute
    # time from this process's clock, so allow for rounding to the millisecond).
    assert 59_000 < await raw.pttl(index) <= 60_002
    assert 59_000 < await raw.pttl(expiring) <= 60_002
    other = make_job()
    await a.create_job(other)
    assert await raw.pttl(index) == -1
    # A terminal job made live again stops expiring.
    job.status = JobStatus.RUNNING
    assert await a.commit(job, 2, Effects())
    assert await raw.pttl(keys.job(job.id)) == -1
    assert await a.acquire_lock("watcher", "me", 5)
    assert 4_000 < await raw.pttl(f"{keys.prefix}:lock:watcher") <= 5_000


async def test_expired_jobs_leave_the_client_index(
    pair: tuple[RedisStorage, RedisStorage], raw: aioredis.Redis
) -> None:
    a, b = pair
    a.job_retention = b.job_retention = 0.2
    jobs = [make_job() for _ in range(3)]
    for job in jobs:
        await a.create_job(job)
    for job in jobs[:2]:
        job.status = JobStatus.FAILED
        assert await b.commit(job, 1, Effects())
    await asyncio.sleep(0.3)
    assert [j.id for j in await a.list_jobs("client-a", 10, 0)] == [jobs[2].id]
    prefix = keys_of(a).prefix
    assert await raw.zcard(f"{prefix}:client-jobs:client-a") == 1
    jobs[2].status = JobStatus.CANCELLED
    assert await a.commit(jobs[2], 1, Effects())
    await asyncio.sleep(0.3)
    assert await raw.exists(f"{prefix}:client-jobs:client-a", f"{prefix}:client-expiring:client-a") == 0
    assert await a.list_jobs("client-a", 10, 0) == []


async def test_worker_records_expire_by_themselves_and_leave_the_indexes(
    pair: tuple[RedisStorage, RedisStorage], raw: aioredis.Redis
) -> None:
    a, _ = pair
    a.worker_retention = 600.0
    prefix = keys_of(a).prefix
    worker, skills = keys_of(a).worker("w1"), f"{prefix}:worker-skills:w1"
    record = await a.register_worker(make_worker("w1", ttl=60))
    # Expiry is absolute (PEXPIREAT at the liveness deadline plus the retention).
    for key in (worker, skills):
        assert 659_000 < await raw.pttl(key) <= 660_010
    now = clock.now()
    update = HeartbeatUpdate(status="idle", expires_at=now + 120, last_heartbeat=now, skills=record.skills)
    assert await a.heartbeat_worker("w1", update) is not None
    for key in (worker, skills):
        assert 719_000 < await raw.pttl(key) <= 720_010, "a heartbeat (even one that re-indexes) extends it"
    await a.adjust_reputation("w1", -0.1)
    assert await a.poll_task("w1", 0) is None
    assert await raw.pttl(worker) > 719_000, "other writes keep the expiry"
    # Once the record has expired (no watcher removed it), lookups drop what still names it.
    a.worker_retention = 0.0
    await a.register_worker(make_worker("w1", ttl=-1))
    assert await raw.exists(worker, skills) == 0
    assert await a.find_workers("resize", 10) == []
    assert await a.list_workers() == []
    assert await raw.exists(f"{prefix}:skill:resize", f"{prefix}:skill:image", f"{prefix}:workers") == 1
    assert await raw.zcard(f"{prefix}:skill:image") == 1, "trimmed when a lookup meets it"
    assert await a.find_workers("image", 10) == []
    assert await raw.exists(f"{prefix}:skill:resize", f"{prefix}:skill:image", f"{prefix}:workers") == 0


# --- waiting and connections ----------------------------------------------------------


@asynccontextmanager
async def named_pair(name: str) -> AsyncIterator[tuple[RedisStorage, RedisStorage]]:
    """Two instances; the first one's connections carry ``name`` in CLIENT LIST."""
    async with redis_storages(1, with_client_name(REDIS_URL, name)) as (first,):
        second = RedisStorage(url=REDIS_URL, prefix=keys_of(first).prefix)
        await second.initialize()
        try:
            yield first, second
        finally:
            await second.close()


async def test_many_waiting_polls_share_a_handful_of_connections(raw: aioredis.Redis) -> None:
    name = f"avt-test-{uuid.uuid4().hex[:8]}"
    async with named_pair(name) as (a, b):
        polls = [asyncio.create_task(a.poll_task(f"w{i % 150}", 30)) for i in range(200)]
        await asyncio.sleep(0.3)
        assert not any(p.done() for p in polls)
        # One multiplexed connection for commands, one for wake-ups.
        assert len(await connections_named(raw, name)) == 2
        start = time.monotonic()
        assert await a.get_job("none") is None
        # Far sooner than the polls' 30 s: a command does not queue behind waiting polls.
        assert time.monotonic() - start < 5, "waiting polls must not block other operations"
        await b.create_job(make_job(), Effects(push_tasks=[make_task("t1", worker_id="w7")]))
        polled = await asyncio.wait_for(polls[7], 1)
        assert polled is not None
        assert polled.task_id == "t1"
        for poll in polls:
            poll.cancel()
        await asyncio.gather(*polls, return_exceptions=True)
        assert len(await connections_named(raw, name)) == 2


async def test_cancelled_attempts_never_lose_work(pair: tuple[RedisStorage, RedisStorage]) -> None:
    """A poll or claim cancelled at any point, even with its attempt in flight, leaves the task
    queued and the run entry ready (whatever it took is given back)."""
    a, b = pair
    for spins in range(8):
        worker, job_id = f"w{spins}", f"j{spins}"
        await b.create_job(make_job(), Effects(push_tasks=[make_task(f"t{spins}", worker_id=worker)]))
        poll = asyncio.create_task(a.poll_task(worker, 3))
        claiming = asyncio.create_task(claim(a, "exec", 30, 3))
        await b.enqueue_run(job_id, clock.now())
        for _ in range(spins):
            await asyncio.sleep(0)
        poll.cancel()
        claiming.cancel()
        polled, lease = await asyncio.gather(poll, claiming, return_exceptions=True)
        if isinstance(polled, asyncio.CancelledError):
            again = await b.poll_task(worker, 1)
            assert again is not None
            assert again.task_id == f"t{spins}"
        if isinstance(lease, asyncio.CancelledError):
            start = time.monotonic()
            claimed = []
            while job_id not in claimed and (retaken := await claim(b, "exec", 30, 0.5)) is not None:
                claimed.append(retaken.job_id)
            assert job_id in claimed
            assert time.monotonic() - start < 0.5, "the cancelled claim kept its lease"


async def test_listener_recovers_when_its_connection_is_killed(raw: aioredis.Redis) -> None:
    name = f"avt-test-{uuid.uuid4().hex[:8]}"
    async with named_pair(name) as (a, b):

        async def kill_listener() -> None:
            (listener,) = [c for c in await connections_named(raw, name) if c.get("sub") == "1"]
            assert await raw.client_kill_filter(_id=listener["id"]) == 1

        # Pushed before the listener is back: the message is lost, the resubscription wakes the poll.
        waiter = asyncio.create_task(a.poll_task("w1", 30))
        await asyncio.sleep(0.05)
        await kill_listener()
        await b.create_job(make_job(), Effects(push_tasks=[make_task("t1")]))
        polled = await asyncio.wait_for(waiter, 10)
        assert polled is not None
        assert polled.task_id == "t1"
        # Pushed after it is back: delivered as usual.
        await kill_listener()
        await asyncio.sleep(0.3)
        waiter = asyncio.create_task(a.poll_task("w1", 30))
        await asyncio.sleep(0.05)
        start = time.monotonic()
        await b.create_job(make_job(), Effects(push_tasks=[make_task("t2")]))
        polled = await asyncio.wait_for(waiter, 10)
        assert polled is not None
        assert polled.task_id == "t2"
        assert time.monotonic() - start < 5, "woken by the push, not by its 30 s timeout"


# --- private servers ---------------------------------------------------------------------


async def test_own_connections_authenticate_select_the_database_and_use_unix_sockets() -> None:
    with started_redis("--requirepass", "s3cret", "--unixsocket", "{workdir}/redis.sock") as (
        server,
        workdir,
    ):
        tcp = f"redis://:s3cret@127.0.0.1:{server.port}/3"
        await wait_for_server(tcp)
        raw = aioredis.Redis.from_url(tcp)
        try:
            for url in (tcp, f"unix://:s3cret@{workdir}/redis.sock?db=3"):
                storage = RedisStorage.from_url(url, prefix="auth")
                await storage.initialize()
                try:
                    job = make_job()
                    assert await storage.create_job(job)
                    assert await raw.exists(keys_of(storage).job(job.id)) == 1
                finally:
                    await storage.close()
            wrong = RedisStorage.from_url(f"redis://:wrong@127.0.0.1:{server.port}/3")
            with pytest.raises(AuthenticationError):
                await wrong.initialize()
            await wrong.close()
        finally:
            await raw.aclose()


# --- how commands reach Redis ---------------------------------------------------------


async def test_redis_py_clients_and_our_connections_work_together() -> None:
    """A URL with options only redis-py implements, a client passed in, and our own
    connections: the three share one deployment, wake-ups included."""
    prefix = f"avtomatika-test-{uuid.uuid4().hex[:16]}"
    client = aioredis.Redis.from_url(REDIS_URL)
    by_url = RedisStorage(url=f"{REDIS_URL}?socket_timeout=5", prefix=prefix)
    passed = RedisStorage(client, prefix=prefix)
    own = RedisStorage(url=REDIS_URL, prefix=prefix)
    assert isinstance(by_url._redis.inner, ClientCommands)
    assert isinstance(own._redis.inner, Multiplexed)
    storages = (by_url, passed, own)
    try:
        for storage in storages:
            await storage.initialize()
        for index, (waiting, pushing) in enumerate(itertools.permutations(storages, 2)):
            waiter = asyncio.create_task(waiting.poll_task("w1", 3))
            await asyncio.sleep(0.05)
            await pushing.create_job(make_job(), Effects(push_tasks=[make_task(f"t{index}")]))
            polled = await asyncio.wait_for(waiter, 1)
            assert polled is not None
            assert polled.task_id == f"t{index}"
            lease = await claim(waiting, "exec", 30, 1)
            assert lease is not None
            assert await pushing.get_job(lease.job_id) == await waiting.get_job(lease.job_id)
        await own.register_worker(make_worker("w1"))
        assert await by_url.get_worker("w1") == await passed.get_worker("w1") == await own.get_worker("w1")
    finally:
        for storage in storages:
            await storage.close()
        await client.aclose()
        await delete_redis_keys(prefix)


def test_runs_on_uvloop() -> None:
    """The orchestrator runs on uvloop, whose transports are not asyncio's classes."""

    async def scenario() -> None:
        async with redis_storages(2) as (a, b):
            waiter = asyncio.create_task(a.poll_task("w1", 3))
            await asyncio.sleep(0.05)
            job = make_job()
            await b.create_job(job, Effects(push_tasks=[make_task("t1")]))
            polled = await asyncio.wait_for(waiter, 1)
            assert polled is not None
            lease = await claim(a, "exec", 30, 1)
            assert lease is not None
            assert await a.commit(job, 1, Effects(release_lease=lease.token))

    with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
        runner.run(scenario())


async def cancelled_take(commands: Commands, cancel_on: RespProtocol | None = None) -> list[Any]:
    """Take ECHO "item" and cancel the caller: at once, or (``cancel_on``) right after the
    protocol received the reply, before the caller resumed. What reached give_back."""
    given_back: list[Any] = []
    taker = asyncio.create_task(commands.take(("ECHO", "item"), given_back.append))
    if cancel_on is None:
        await asyncio.sleep(0)
        taker.cancel()
    else:
        receive = cancel_on.data_received

        def receive_then_cancel(data: bytes) -> None:
            receive(data)
            taker.cancel()

        cancel_on.data_received = receive_then_cancel  # type: ignore[method-assign]
    with pytest.raises(asyncio.CancelledError):
        await taker
    for _ in range(50):
        if given_back:
            break
        await asyncio.sleep(0.01)
    return given_back


async def test_a_taking_command_whose_caller_is_cancelled_gives_its_reply_back() -> None:
    options = connection_options(REDIS_URL)
    assert options is not None
    own = Multiplexed(options)
    client = aioredis.Redis.from_url(REDIS_URL)
    try:
        await own.execute("PING")  # connected: a take is sent in its caller's first step
        assert await cancelled_take(own) == [b"item"]
        assert await cancelled_take(ClientCommands(client, owned=False)) == [b"item"]
        assert own._protocol is not None
        assert await cancelled_take(own, cancel_on=own._protocol) == [b"item"]
    finally:
        await own.aclose()
        await client.aclose()


async def test_a_reply_nobody_asked_for_fails_the_connection() -> None:
    for data in (b"+OK\r\n", b"?garbage\r\n"):
        protocol = RespProtocol()
        transport = Mock(spec=asyncio.Transport)
        protocol.connection_made(transport)
        protocol.data_received(data)
        assert protocol.lost.done()
        transport.abort.assert_called_once()
        with pytest.raises(RedisConnectionError):
            protocol.send(b"")


# --- a job read along with a claim or a task --------------------------------------------


class Recorded:
    """The commands a storage sends outside its scripts (which keep the connection itself)."""

    def __init__(self, storage: RedisStorage) -> None:
        self.sent: list[tuple[Any, ...]] = []
        self._inner = storage._redis
        storage._redis = self

    async def execute(self, *args: Any) -> Any:
        self.sent.append(args)
        return await self._inner.execute(*args)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._inner, name)


async def test_a_claim_reads_its_job_in_the_claiming_script(pair: tuple[RedisStorage, RedisStorage]) -> None:
    a, _ = pair
    job = make_job()
    await a.create_job(job)
    reads = Recorded(a)
    claimed = await a.claim_run("exec", 30, 0)
    assert claimed is not None
    assert claimed.job == job
    assert not reads.sent
    # Nothing is left over for a later read: it reads what is stored.
    assert await a.get_job(job.id) == job
    assert len(reads.sent) == 1


async def test_a_job_read_with_its_task_is_not_offered_once_outdated_or_elsewhere(
    pair: tuple[RedisStorage, RedisStorage],
) -> None:
    a, b = pair
    jobs = {}
    for index in range(3):
        job = make_job()
        task = msgspec.structs.replace(make_task(f"t{index}"), job_id=job.id)
        await a.create_job(job, Effects(push_tasks=[task]))
        jobs[task.task_id] = job

    async def change_on_b(job_id: str) -> None:
        async def change() -> None:
            stored = await b.get_job(job_id)
            assert stored is not None
            assert await b.commit(stored, stored.version, Effects())

        await asyncio.create_task(change())  # not a read in this context

    async def read_task(task_id: str) -> str:
        (record,) = await a.get_tasks([task_id])
        assert record is not None
        return record.job_id

    # A commit of the job here voids it, from whichever task it comes.
    job = jobs["t0"]
    await read_task("t0")
    job.current_state = "committed here"
    assert await asyncio.create_task(a.commit(job, 1, Effects()))
    stored = await a.get_job(job.id)
    assert stored is not None
    assert (stored.version, stored.current_state) == (2, "committed here")
    # Only the very next read may take it: reading another job spends it.
    job_id = await read_task("t1")
    await a.get_job("another job")
    await change_on_b(job_id)
    stored = await a.get_job(job_id)
    assert stored is not None
    assert stored.version == 2
    # Code that does not descend from the reader (a task started before it) never sees it.
    read: asyncio.Future[str] = asyncio.get_running_loop().create_future()

    async def unrelated() -> Job | None:
        return await a.get_job(await read)

    reader = asyncio.create_task(unrelated())
    job_id = await read_task("t2")
    await change_on_b(job_id)
    read.set_result(job_id)
    stored = await reader
    assert stored is not None
    assert stored.version == 2


async def test_a_task_read_alone_comes_with_its_job(pair: tuple[RedisStorage, RedisStorage]) -> None:
    a, _ = pair
    job = make_job()
    await a.create_job(job, Effects(push_tasks=[msgspec.structs.replace(make_task("t1"), job_id=job.id)]))
    reads = Recorded(a)
    (record,) = await a.get_tasks(["t1"])
    assert record is not None
    assert await a.get_job(record.job_id) == job
    assert not reads.sent
