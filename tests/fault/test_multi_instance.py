"""Several orchestrator instances on one Redis act as one (design.md §3 invariants 1, 2 and 5).

In-process engines share one key prefix on the test Redis, each with its own connections,
wake-up listener, executor and watcher, as separate instances of one deployment would. A
hand-rolled RXON worker (``tests/wire.py``) decides exactly which instance hears each message.

The last test pins down a job the crash tests' ``chaos`` run found stranded: an executor step that
lost its compare-and-set to a change that queued no step (a progress event, a branch result)
released its run-queue entry, leaving a fan-out's unplaced tasks with no step to place them.
"""

import asyncio
import collections
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import aiohttp

from avtomatika import OrchestratorEngine
from avtomatika.core.effects import Effects
from avtomatika.core.records import Job
from avtomatika.server.app_keys import POLLS_KEY
from avtomatika.storage import StorageBackend
from tests.conftest import WORKER_TOKEN, Orchestrator, make_config
from tests.fault.app import PIPELINE_PATH, SINGLE_PATH, blueprints, pipeline_problems
from tests.storage.conftest import redis_storages
from tests.wire import WireWorker

DUPLICATES = 20
APPLIED_ONCE = {"success_transition": 1, "already_applied": DUPLICATES - 1}


@asynccontextmanager
async def instances(count: int = 3, **overrides: Any) -> AsyncIterator[list[Orchestrator]]:
    """``count`` started engines sharing one fresh Redis prefix, each with its own instance id."""
    async with redis_storages(count) as storages, aiohttp.ClientSession() as session:
        engines: list[OrchestratorEngine] = []
        try:
            for i, storage in enumerate(storages):
                engine = OrchestratorEngine(storage, make_config(INSTANCE_ID=f"instance-{i}", **overrides))
                for bp in blueprints():
                    engine.register_blueprint(bp)
                await engine.start()
                engines.append(engine)
            yield [Orchestrator(engine, session) for engine in engines]
        finally:
            for engine in engines:
                await engine.stop()


async def parked(orch: Orchestrator, timeout: float = 10.0) -> None:
    """Until a worker's long-poll waits on ``orch``."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while not orch.engine.app[POLLS_KEY]:
        assert loop.time() < deadline, "the long-poll never reached the instance"
        await asyncio.sleep(0.01)


async def test_any_instance_answers_any_request() -> None:
    """Registered on C, heartbeating to A, long-polling B before the job exists; the job is
    created on A, its result posted to C, and every instance then shows the same document."""
    async with instances(WORKER_POLL_TIMEOUT_SECONDS=10.0) as (a, b, c):
        on_a, on_b, on_c = (WireWorker(o.session, o.url, "roaming") for o in (a, b, c))
        await on_c.register("slow")
        assert (await on_a.heartbeat())[0] == 200
        poll = asyncio.create_task(on_b.poll())
        await parked(b)
        job_id = await a.create_job(SINGLE_PATH, {"seconds": 0})
        task = await poll
        assert task is not None
        assert task["job_id"] == job_id
        assert await on_c.result(task, data={"ran_on": "roaming"}) == (
            200,
            {"status": "accepted", "transition": "success_transition"},
        )
        doc = await a.wait_for(job_id)
        assert doc["status"] == "finished"
        assert doc["path"] == ["start", "done"]
        assert [(r["worker_id"], r["data"]) for r in doc["results"]] == [("roaming", {"ran_on": "roaming"})]
        assert await b.job(job_id) == doc
        assert await c.job(job_id) == doc


async def post_copies(session: aiohttp.ClientSession, urls: list[str], body: dict[str, Any]) -> list[str]:
    """Post one signed result ``DUPLICATES`` times at once, spread over ``urls``; the transitions."""

    async def post(url: str) -> str:
        async with session.post(
            f"{url}/_worker/tasks/result", json=body, headers={"X-Worker-Token": WORKER_TOKEN}
        ) as resp:
            assert resp.status == 200, await resp.text()
            reply = await resp.json()
        assert reply["status"] == "accepted", reply
        return str(reply["transition"])

    return list(await asyncio.gather(*(post(urls[i % len(urls)]) for i in range(DUPLICATES))))


def signed_result(wire: WireWorker, task: dict[str, Any], data: dict[str, Any]) -> dict[str, Any]:
    return wire.sign(
        {
            "job_id": task["job_id"],
            "task_id": task["task_id"],
            "worker_id": wire.worker_id,
            "status": "success",
            "data": data,
        }
    )


async def test_the_same_result_posted_20_times_to_3_instances_is_applied_once() -> None:
    async with instances() as orchs:
        a, b, _ = orchs
        urls = [o.url for o in orchs]
        wire = WireWorker(a.session, a.url, "dup")
        await wire.register("slow")
        job_id = await b.create_job(SINGLE_PATH)
        task = await WireWorker(a.session, orchs[2].url, "dup").poll_until_task(attempts=40)
        transitions = await post_copies(a.session, urls, signed_result(wire, task, {"ran_on": "dup"}))
        assert collections.Counter(transitions) == APPLIED_ONCE
        doc = await a.wait_for(job_id)
        assert doc["status"] == "finished"
        assert doc["path"] == ["start", "done"]
        assert len(doc["results"]) == 1
        assert doc["transition_count"] == 2


async def test_fan_in_results_duplicated_across_instances_run_the_aggregator_once() -> None:
    """Every result of a pipeline job, fan-out branches included, posted 20 times at once over
    three instances: each is applied once, and the aggregator is committed once."""
    async with instances() as orchs:
        a, b, c = orchs
        urls = [o.url for o in orchs]
        wire = WireWorker(a.session, c.url, "dup")
        await wire.register("prepare", "part", "finish_child")
        job_id = await b.create_job(PIPELINE_PATH, {"n": 7})

        prepare = await wire.poll_until_task(attempts=40)
        replies = await post_copies(a.session, urls, signed_result(wire, prepare, {"prepared": 7}))
        assert collections.Counter(replies) == APPLIED_ONCE

        parts = [await wire.poll_until_task(attempts=40) for _ in range(5)]
        branch_replies = await asyncio.gather(
            *(
                post_copies(a.session, urls, signed_result(wire, task, {"part": task["params"]["part"]}))
                for task in parts
            )
        )
        for branch in branch_replies:
            assert collections.Counter(branch) == {
                "parallel_branch_accepted": 1,
                "already_applied": DUPLICATES - 1,
            }

        finish = await wire.poll_until_task(attempts=40)
        replies = await post_copies(a.session, urls, signed_result(wire, finish, {"child_of": 7}))
        assert collections.Counter(replies) == APPLIED_ONCE

        doc = await a.wait_for(job_id)
        child = await c.job(finish["job_id"])
        assert pipeline_problems(doc, child) == []
        assert len(doc["aggregation_results"]) == 5


async def test_a_placement_step_that_loses_a_race_still_places_its_tasks() -> None:
    """The executor places a fan-out's tasks (no worker could take them before) while another
    instance commits an unrelated change to the job (as a progress event does, without queueing
    a step): the placement loses the compare-and-set, and must be decided again, not dropped."""
    async with instances(2) as (a, b):
        wire = WireWorker(a.session, a.url, "late")
        await wire.register("prepare")
        job_id = await a.create_job(PIPELINE_PATH, {"n": 3})
        prepare = await wire.poll_until_task(attempts=40)
        assert (await wire.result(prepare, data={"prepared": 3}))[0] == 200
        raced: list[int] = []
        for orch in (a, b):
            racing_commit(orch.engine.storage, b.engine.storage, raced)
        await parts_waiting_for_a_worker(a, job_id)
        # Now a worker can take the parts: the next placement step meets the competing change.
        await wire.register("prepare", "part", "finish_child")
        parts = [await wire.poll_until_task(attempts=40) for _ in range(5)]
        assert raced, "the placement step never met the competing change"
        for task in parts:
            assert (await wire.result(task, data={"part": task["params"]["part"]}))[0] == 200
        finish = await wire.poll_until_task(attempts=40)
        assert (await wire.result(finish, data={"child_of": 3}))[0] == 200
        doc = await a.wait_for(job_id)
        assert pipeline_problems(doc, await a.job(finish["job_id"])) == []


def racing_commit(storage: StorageBackend, other: StorageBackend, raced: list[int]) -> None:
    """Make ``storage``'s first commit that places tasks under a run lease (an executor's placement
    step) lose its compare-and-set: just before it, ``other`` commits a progress change."""
    commit = storage.commit

    async def racing(job: Job, expected_version: int, effects: Effects) -> bool:
        if not raced and effects.push_tasks and effects.release_lease is not None:
            raced.append(expected_version)
            current = await other.get_job(job.id)
            assert current is not None
            current.progress = 0.5
            assert await other.commit(current, current.version, Effects())
        return await commit(job, expected_version, effects)

    storage.commit = racing  # type: ignore[method-assign]


async def parts_waiting_for_a_worker(orch: Orchestrator, job_id: str, timeout: float = 10.0) -> None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while True:
        doc = await orch.job(job_id)
        if doc["status"] == "waiting_for_parallel_tasks" and len(doc["tasks"]) == 5:
            assert all(task["worker_id"] is None for task in doc["tasks"])
            return
        assert loop.time() < deadline, f"the fan-out never waited for a worker: {doc}"
        await asyncio.sleep(0.02)
