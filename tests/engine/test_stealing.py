"""Work stealing: an idle worker takes a task queued for a busier peer, and the job follows the
task to its new owner (results and events from the thief apply, the victim's are refused)."""

from typing import Any

from tests.conftest import Orchestrator, OrchestratorFactory
from tests.engine.placed import placed_on
from tests.sample_blueprints import echo_blueprint
from tests.wire import WireWorker


def priced(cost: float) -> dict[str, Any]:
    return {"capabilities": {"hostname": "test", "cost_per_skill": {"echo": cost}}}


async def _backlog_on_victim(orch: Orchestrator, jobs: int) -> tuple[WireWorker, list[str]]:
    """A victim with room for one task that never polls, holding ``jobs`` queued tasks."""
    victim = WireWorker(orch.session, orch.url, "victim")
    await victim.register("echo", capacity=1, **priced(1.0))
    job_ids = [await orch.create_job("/api/v1/jobs/echo", {"n": n}) for n in range(jobs)]
    assert [await placed_on(orch, job_id) for job_id in job_ids] == ["victim"] * jobs
    return victim, job_ids


async def test_a_stolen_task_belongs_to_the_thief(orchestrator: OrchestratorFactory, backend: Any) -> None:
    async with orchestrator(echo_blueprint(), storage=backend) as orch:
        victim, job_ids = await _backlog_on_victim(orch, 2)
        thief = WireWorker(orch.session, orch.url, "thief")
        await thief.register("echo", capacity=1)
        task = await thief.poll()
        assert task is not None, "the idle thief stole nothing from the victim's backlog"
        stolen_job = task["job_id"]
        assert await placed_on(orch, stolen_job) == "thief"

        assert await victim.event(task, "progress", {"progress": 0.9, "message": "victim"}) == (
            200,
            {"status": "event_accepted"},
        )
        assert (await orch.job(stolen_job))["progress"] is None
        assert await thief.event(task, "progress", {"progress": 0.5, "message": "half"}) == (
            200,
            {"status": "event_accepted"},
        )
        doc = await orch.job(stolen_job)
        assert (doc["progress"], doc["progress_message"]) == (0.5, "half")

        _, refused = await victim.result(task, data={"by": "victim"})
        assert (refused["status"], refused["reason"]) == ("ignored", "worker_mismatch")
        _, accepted = await thief.result(task, data={"by": "thief"})
        assert accepted["status"] == "accepted"
        finished = await orch.wait_for(stolen_job)
        _, duplicate = await thief.result(task, data={"by": "thief"})

        (other_job,) = set(job_ids) - {stolen_job}
        assert await placed_on(orch, other_job) == "victim"
    assert finished["status"] == "finished"
    assert finished["state_history"] == {"by": "thief"}
    assert duplicate["status"] == "accepted"


async def test_no_steal_when_disabled(orchestrator: OrchestratorFactory) -> None:
    async with orchestrator(
        echo_blueprint(), WORK_STEALING_ENABLED=False, WORKER_POLL_TIMEOUT_SECONDS=0.1
    ) as orch:
        _, job_ids = await _backlog_on_victim(orch, 2)
        thief = WireWorker(orch.session, orch.url, "thief")
        await thief.register("echo", capacity=1)
        assert await thief.poll() is None
        assert [await placed_on(orch, job_id) for job_id in job_ids] == ["victim", "victim"]


async def test_a_thief_dispatch_would_refuse_steals_nothing(
    orchestrator: OrchestratorFactory, backend: Any
) -> None:
    bp = echo_blueprint(max_cost=2.0)
    async with orchestrator(bp, storage=backend, WORKER_POLL_TIMEOUT_SECONDS=0.1) as orch:
        _, job_ids = await _backlog_on_victim(orch, 2)
        unpriced = WireWorker(orch.session, orch.url, "unpriced")
        await unpriced.register("echo", capacity=1)
        dear = WireWorker(orch.session, orch.url, "dear")
        await dear.register("echo", capacity=1, **priced(2.5))
        shunned = WireWorker(orch.session, orch.url, "shunned")
        await shunned.register("echo", capacity=1, **priced(0.5))
        await orch.engine.storage.adjust_reputation("shunned", -0.9)
        for thief in (unpriced, dear, shunned):
            assert await thief.poll() is None, thief.worker_id
        fair = WireWorker(orch.session, orch.url, "fair")
        await fair.register("echo", capacity=1, **priced(2.0))
        task = await fair.poll()
        assert task is not None
        placed = [await placed_on(orch, job_id) for job_id in job_ids]
    assert sorted(placed) == ["fair", "victim"]
