"""An instance ``kill -9``-ed while a handler runs: another instance runs the handler again once
the step's lease expires, and the job moves once (README "Handlers are at-least-once").

Two orchestrator instances on a private Redis (memory storage cannot be shared by processes). The
``fault_slow_step`` handler logs each run to a file (``O_APPEND``) and then blocks until a release
file appears, so the test knows which instance holds the step and that the handler is in flight
when that instance is killed. The release file is created right after the kill: the second run
on the surviving instance goes through, and the job document shows one committed transition.
"""

import asyncio
import time
from pathlib import Path

from tests.fault.app import SLOW_STEP_PATH, TIMING_DEFAULTS
from tests.fault.harness import Cluster

LEASE_SECONDS = float(TIMING_DEFAULTS["EXECUTOR_LEASE_SECONDS"])


async def handler_runs(run_log: Path, count: int, timeout: float = 30) -> list[tuple[str, float]]:
    """Wait until the handler has logged ``count`` runs; each run's instance and start time."""
    deadline = time.monotonic() + timeout
    while True:
        text = await asyncio.to_thread(lambda: run_log.read_text() if run_log.exists() else "")
        runs = [(name, float(at)) for name, at in (line.split() for line in text.splitlines())]
        if len(runs) >= count:
            return runs
        if time.monotonic() > deadline:
            raise AssertionError(f"{count} handler run(s) expected, {runs} logged after {timeout}s")
        await asyncio.sleep(0.05)


async def test_handler_interrupted_by_kill_9_runs_again_elsewhere_and_the_job_moves_once(
    tmp_path: Path,
) -> None:
    run_log, release = tmp_path / "runs.log", tmp_path / "release"
    async with Cluster(tmp_path) as cluster:
        await cluster.start_redis()
        orchestrators = await cluster.start_orchestrators(2)
        job_id, _ = await cluster.jobs.create(
            SLOW_STEP_PATH, {"run_log": str(run_log), "wait_for": str(release)}
        )
        [(holder, _)] = await handler_runs(run_log, 1)
        victim = next(o for o in orchestrators if o.name == holder)
        (survivor,) = (o for o in orchestrators if o is not victim)
        before = await cluster.jobs.get(job_id)
        assert before is not None
        assert (before["current_state"], before["transition_count"]) == ("start", 0), "not moved yet"
        killed_at = time.time()
        await victim.kill()
        await asyncio.to_thread(release.touch)

        doc = (await cluster.jobs.wait_terminal([job_id], timeout=60))[job_id]
        runs = await handler_runs(run_log, 2)
        assert doc is not None
        assert (doc["status"], doc["path"]) == ("finished", ["start", "done"]), doc
        assert doc["state_history"]["step_runs"] == 1, "the step was committed once"
        assert doc["transition_count"] == 2, "start's step and done's, each once"
        assert [name for name, _ in runs] == [victim.name, survivor.name], "two runs, one per instance"
        # Not before the lease the victim last renewed (every lease/3 seconds) expired.
        assert runs[1][1] - killed_at > LEASE_SECONDS * 2 / 3 - 0.1
        assert victim.returncode == -9
        assert survivor.running
