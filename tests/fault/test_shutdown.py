"""SIGTERM stops a busy instance within 10 s, and loses nothing (design.md §3 invariants 1, 2).

One orchestrator process on a private Redis holds, when it is told to stop: 50 long-polls for
worker ids no instance knows (held for up to 30 s each), 5 worker WebSocket channels, executor
steps in flight (handlers of 1 s, which finish during the drain, and of 8 s, which cannot), and
tasks running on a worker process that talks to it only. It must exit with status 0 in under 10 s,
answer every held poll 204 and close every socket with 1001. A second instance started after the
SIGTERM takes over the steps it handed back, and once the first is back (the worker's results,
refused meanwhile, are retried after 1, 2, 4, 8 s) every job finishes, each transition once.

``python -m benchmarks.shutdown`` runs the same load and reports the time to exit.
"""

import asyncio
import re
import signal
import time
from pathlib import Path

from tests.fault.app import SINGLE, SINGLE_PATH, SLOW_STEP, SLOW_STEP_PATH, successes
from tests.fault.harness import Cluster, HeldLoad

POLLS = 50
SOCKETS = 5
TASKS = 8
SHORT_STEPS = 6
LONG_STEPS = 3
# Long-polls held for 30 s; the worker, cut off while the instance is down, stays alive and owns
# its tasks meanwhile (the fault app's 2 s worker TTL and 5 s task deadline would hand them to a
# new attempt, and its retried results would be ignored rather than applied).
CONFIG = {
    "WORKER_POLL_TIMEOUT_SECONDS": "30",
    "WORKER_HEALTH_CHECK_INTERVAL_SECONDS": "15",
    "WORKER_TIMEOUT_SECONDS": "60",
}
STOPPING = re.compile(
    r"Stopping: answered (\d+) held long-polls, closed (\d+) worker sockets; "
    r"(\d+) steps finished and (\d+) handed back"
)


async def test_sigterm_under_load_exits_within_10_s_and_loses_nothing(tmp_path: Path) -> None:
    async with Cluster(tmp_path) as cluster:
        await cluster.start_redis()
        (first,) = await cluster.start_orchestrators(1, **CONFIG)
        cluster.add_worker("sd-worker", first, concurrency=4, FAULT_SLOW_SECONDS="1.5")
        await cluster.workers_registered(["sd-worker"])
        jobs = cluster.jobs
        tasks = [(await jobs.create(SINGLE_PATH, {"n": i}))[0] for i in range(TASKS)]
        steps = [(await jobs.create(SLOW_STEP_PATH, {"handler_seconds": 1}))[0] for _ in range(SHORT_STEPS)]
        steps += [(await jobs.create(SLOW_STEP_PATH, {"handler_seconds": 8}))[0] for _ in range(LONG_STEPS)]
        held = HeldLoad(cluster.http, first.url)
        held.hold_polls(f"odd-{i}.{'ü' * (i % 3)}" for i in range(POLLS))
        await held.open_sockets(f"socket-{i}" for i in range(SOCKETS))
        await asyncio.sleep(0.5)

        started = time.monotonic()
        first.send(signal.SIGTERM)
        assert await first.wait_exit(10), "the instance was still running 10 s after SIGTERM"
        elapsed = time.monotonic() - started
        assert first.returncode == 0
        polls, sockets = await held.outcomes(timeout=1)
        assert polls == [204] * POLLS
        assert sockets == [1001] * SOCKETS
        report = re.findall(STOPPING, first.log_text())
        assert len(report) == 1, first.log_tail()
        answered, closed, _, handed_back = map(int, report[0])
        # The worker's own poll and socket may be among them.
        assert (answered >= POLLS, closed >= SOCKETS, handed_back) == (True, True, LONG_STEPS), report
        print(f"SIGTERM to exit: {elapsed:.2f} s")

        await cluster.start_orchestrators(1, **CONFIG)
        await cluster.restart(first)
        docs = await jobs.wait_terminal([*tasks, *steps], timeout=60)
        problems = []
        for job_id, doc in docs.items():
            if doc is None or doc["status"] != "finished":
                problems.append(f"job {job_id}: {doc}")
            elif doc["blueprint_name"] == SINGLE and len(successes(doc, "slow")) != 1:
                problems.append(f"job {job_id}: results {doc['results']}")
            elif doc["blueprint_name"] == SLOW_STEP and doc["state_history"].get("step_runs") != 1:
                problems.append(f"job {job_id}: its step was committed {doc['state_history']} times")
        assert not problems, "\n".join(problems)
        assert len(await jobs.all_jobs()) == TASKS + SHORT_STEPS + LONG_STEPS
        worker_log = cluster.workers[0].log_text()
        assert "not delivered" in worker_log  # results were refused while the instance was down,
        assert "ignored the result" not in worker_log  # then retried and applied
        log = first.log_text()
        assert "Traceback" not in log, first.log_tail()
        assert "was destroyed but it is pending" not in log, first.log_tail()
