"""Each dispatch strategy picks the worker its rule names, among workers that pass the filters
(requirements, ``max_cost``, reputation), on both backends: workers are stored and loaded
through the storage, so costs, hot caches and reputations survive its encoding."""

import itertools
from collections.abc import AsyncIterator
from typing import Any

import pytest

from avtomatika.core import clock
from avtomatika.core.effects import Effects
from avtomatika.core.records import HeartbeatUpdate, Job, TaskRecord, TaskSpec, WorkerRecord
from avtomatika.engine.dispatcher import Dispatcher
from avtomatika.protocol.constants import JobStatus
from avtomatika.protocol.models import Resources, SkillInfo, TaskPayload, WorkerCapabilities
from avtomatika.storage import MemoryStorage, StorageBackend
from tests.conftest import make_config
from tests.storage.conftest import redis_storages

_ids = itertools.count()


@pytest.fixture(params=["memory", "redis"])
async def storage(request: pytest.FixtureRequest) -> AsyncIterator[StorageBackend]:
    if request.param == "memory":
        memory = MemoryStorage()
        await memory.initialize()
        yield memory
        await memory.close()
        return
    async with redis_storages(1) as (redis,):
        yield redis


async def add_worker(
    storage: StorageBackend,
    worker_id: str,
    *,
    capacity: int = 1,
    cost: float | None = None,
    load: int = 0,
    reputation: float = 1.0,
    **resources: Any,
) -> None:
    """A live ``render`` worker with ``load`` tasks queued for it."""
    now = clock.now()
    await storage.register_worker(
        WorkerRecord(
            worker_id=worker_id,
            skills=[SkillInfo(name="render")],
            resources=Resources(max_concurrent_tasks=capacity, **resources),
            capabilities=WorkerCapabilities(cost_per_skill=None if cost is None else {"render": cost}),
            registered_at=now,
            last_heartbeat=now,
            expires_at=now + 60,
        )
    )
    if reputation != 1.0:
        await storage.adjust_reputation(worker_id, reputation - 1.0)
    if load:
        await add_load(storage, worker_id, load)


async def add_load(storage: StorageBackend, worker_id: str, tasks: int) -> None:
    """Queue ``tasks`` more tasks for the worker (as effects of a job, the way the engine does)."""
    now = clock.now()
    job = Job(
        id=f"job-{next(_ids)}",
        blueprint_name="bp",
        current_state="s",
        status=JobStatus.RUNNING,
        client_id="c",
        created_at=now,
        updated_at=now,
    )
    assert await storage.create_job(job, Effects(push_tasks=[_task(worker_id) for _ in range(tasks)]))


def _task(worker_id: str) -> TaskRecord:
    task_id = f"t-{next(_ids)}"
    payload = TaskPayload(job_id="job", task_id=task_id, type="render")
    return TaskRecord(task_id=task_id, job_id="job", worker_id=worker_id, skill="render", payload=payload)


async def pick(storage: StorageBackend, strategy: str = "default", **spec: Any) -> str | None:
    """The worker a fresh dispatcher (no cached candidates) picks for a ``render`` task."""
    chosen = await Dispatcher(storage, make_config()).select(
        TaskSpec(type="render", dispatch_strategy=strategy, **spec)
    )
    return None if chosen is None else chosen.worker_id


async def test_default_prefers_the_least_loaded_relative_to_capacity(storage: StorageBackend) -> None:
    await add_worker(storage, "big", capacity=4, load=2)
    await add_worker(storage, "small", capacity=1, load=1)
    assert await pick(storage) == "big"


async def test_default_breaks_ties_by_cost_then_reputation(storage: StorageBackend) -> None:
    await add_worker(storage, "dear", cost=3.0)
    await add_worker(storage, "cheap-doubtful", cost=1.0, reputation=0.5)
    await add_worker(storage, "cheap-trusted", cost=1.0)
    assert await pick(storage) == "cheap-trusted"


async def test_default_prefers_a_hot_worker_even_when_busier(storage: StorageBackend) -> None:
    await add_worker(storage, "cold")
    await add_worker(storage, "warm-skill", capacity=1, load=3)
    await add_worker(storage, "warm-model", capacity=1, load=2)
    now = clock.now()
    beat = {"status": "idle", "expires_at": now + 60, "last_heartbeat": now}
    assert await storage.heartbeat_worker("warm-skill", HeartbeatUpdate(**beat, hot_skills=["render"]))
    assert await storage.heartbeat_worker("warm-model", HeartbeatUpdate(**beat, hot_cache=["sdxl"]))
    assert await pick(storage) == "warm-skill"
    assert await pick(storage, params={"model_name": "sdxl"}) == "warm-model"
    assert await pick(storage, params={"resource_hint": "sdxl"}) == "warm-model"
    assert await pick(storage, params={"model_name": "flux"}) == "warm-skill"


async def test_least_connections_counts_tasks_not_capacity(storage: StorageBackend) -> None:
    await add_worker(storage, "big", capacity=4, load=2)
    await add_worker(storage, "small", capacity=1, load=1)
    assert await pick(storage, "least_connections") == "small"


async def test_cheapest_ignores_load(storage: StorageBackend) -> None:
    await add_worker(storage, "cheap", cost=1.0, load=3)
    await add_worker(storage, "dear", cost=5.0)
    assert await pick(storage, "cheapest") == "cheap"


async def test_best_value_weighs_cost_by_reputation(storage: StorageBackend) -> None:
    await add_worker(storage, "cheap-doubtful", cost=1.0, reputation=0.4)  # 1.0 / 0.4 = 2.5
    await add_worker(storage, "fair-trusted", cost=2.0)  # 2.0 / 1.0 = 2.0
    assert await pick(storage, "cheapest") == "cheap-doubtful"
    assert await pick(storage, "best_value") == "fair-trusted"


async def test_overflow_fills_the_cheap_worker_up_to_the_soft_limit(storage: StorageBackend) -> None:
    soft_limit = make_config().DISPATCHER_SOFT_LIMIT
    await add_worker(storage, "cheap", cost=1.0, load=soft_limit)  # backlog beyond capacity: limit - 1
    await add_worker(storage, "dear", cost=2.0, load=soft_limit + 2)
    await add_worker(storage, "dearest", cost=9.0)
    assert await pick(storage, "overflow") == "cheap"
    await add_load(storage, "cheap", 1)  # backlog: limit
    assert await pick(storage, "overflow") == "dearest"


async def test_overflow_takes_the_shortest_backlog_when_all_are_over(storage: StorageBackend) -> None:
    soft_limit = make_config().DISPATCHER_SOFT_LIMIT
    await add_worker(storage, "cheap", cost=1.0, load=soft_limit + 5)
    await add_worker(storage, "dear", cost=2.0, capacity=2, load=soft_limit + 3)
    assert await pick(storage, "overflow") == "dear"


async def test_round_robin_cycles_through_every_worker(storage: StorageBackend) -> None:
    for worker_id in ("a", "b", "c"):
        await add_worker(storage, worker_id, load=5 if worker_id == "a" else 0)
    dispatcher = Dispatcher(storage, make_config())
    spec = TaskSpec(type="render", dispatch_strategy="round_robin")
    picks = [(w.worker_id if (w := await dispatcher.select(spec)) else None) for _ in range(6)]
    assert sorted(picks) == ["a", "a", "b", "b", "c", "c"]
    assert picks[:3] == picks[3:]


async def test_max_cost_leaves_out_dear_and_unpriced_workers(storage: StorageBackend) -> None:
    await add_worker(storage, "unpriced")
    await add_worker(storage, "dear", cost=5.0)
    await add_worker(storage, "fair", cost=2.0, load=3)
    assert await pick(storage, max_cost=2.0) == "fair"
    assert await pick(storage, "least_connections", max_cost=2.0) == "fair"
    assert await pick(storage, max_cost=1.0) is None


async def test_a_worker_below_the_reputation_threshold_gets_nothing(storage: StorageBackend) -> None:
    threshold = make_config().REPUTATION_MIN_THRESHOLD
    await add_worker(storage, "shunned", cost=0.5, reputation=threshold - 0.05)
    assert await pick(storage, "cheapest") is None
    await add_worker(storage, "trusted", cost=5.0, load=3)
    for strategy in ("default", "cheapest", "best_value", "least_connections", "overflow"):
        assert await pick(storage, strategy) == "trusted", strategy


async def test_requirements_filter_before_any_strategy(storage: StorageBackend) -> None:
    await add_worker(storage, "laptop", cost=0.1, cpu_cores=4, ram_gb=16)
    await add_worker(storage, "server", cost=3.0, cpu_cores=32, ram_gb=256, load=4)
    requirements = {"resources": {"cpu_cores": 16, "ram_gb": 128}}
    for strategy in ("default", "cheapest", "best_value", "least_connections", "overflow", "round_robin"):
        assert await pick(storage, strategy, resource_requirements=requirements) == "server", strategy
    assert await pick(storage, resource_requirements={"resources": {"cpu_cores": 64}}) is None
