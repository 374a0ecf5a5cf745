"""SIGTERM under load: how long a busy orchestrator instance takes to exit, and what it leaves.

    python -m benchmarks.shutdown --runs 3

Each run starts a private redis-server, one orchestrator process (``tests.fault.app``, long-polls
held for 30 s) and one worker process, then loads the instance: tasks running on the worker, executor
steps in flight (handlers of 2 s, which may finish, and of 20 s, which may not), long-polls for
worker ids no instance knows, and WebSocket command channels. It sends SIGTERM, measures the time
to exit, then restarts the instance and waits until every job has finished. Every process it
starts is stopped by PID at the end.
"""

import argparse
import asyncio
import collections
import signal
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

from tests.fault.app import SINGLE_PATH, SLOW_STEP_PATH
from tests.fault.harness import Cluster, HeldLoad

POLL_HOLD_SECONDS = "30"


async def load_and_stop(workdir: Path, polls: int, sockets: int, jobs: int, long: int) -> dict[str, Any]:
    async with Cluster(workdir) as cluster:
        await cluster.start_redis()
        (orch,) = await cluster.start_orchestrators(1, WORKER_POLL_TIMEOUT_SECONDS=POLL_HOLD_SECONDS)
        cluster.add_worker("shutdown-worker", orch, concurrency=4, FAULT_SLOW_SECONDS="2")
        await cluster.workers_registered(["shutdown-worker"])
        created = [await cluster.jobs.create(SINGLE_PATH, {"n": i}) for i in range(jobs)]
        created += [await cluster.jobs.create(SLOW_STEP_PATH, {"handler_seconds": 2}) for _ in range(jobs)]
        created += [await cluster.jobs.create(SLOW_STEP_PATH, {"handler_seconds": 20}) for _ in range(long)]
        held = HeldLoad(cluster.http, orch.url)
        held.hold_polls(f"odd-{i}.{'ü' * (i % 3)}" for i in range(polls))
        await held.open_sockets(f"socket-{i}" for i in range(sockets))
        await asyncio.sleep(1.0)
        started = time.monotonic()
        orch.send(signal.SIGTERM)
        exited = await orch.wait_exit(60)
        seconds = time.monotonic() - started
        status = orch.returncode
        poll_ends, socket_ends = await held.outcomes(5)
        await cluster.restart(orch)
        restarted = time.monotonic()
        docs = await cluster.jobs.wait_terminal([job_id for job_id, _ in created], timeout=120)
        return {
            "seconds": seconds if exited else None,
            "status": status,
            "polls": collections.Counter(poll_ends),
            "sockets": collections.Counter(socket_ends),
            "finished": sum(1 for doc in docs.values() if doc is not None and doc["status"] == "finished"),
            "jobs": len(created),
            "all_done_after": time.monotonic() - restarted,
        }


async def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--polls", type=int, default=50)
    parser.add_argument("--sockets", type=int, default=5)
    parser.add_argument("--jobs", type=int, default=8, help="jobs of each kind (worker task, 2 s step)")
    parser.add_argument("--long", type=int, default=2, help="steps of 20 s (cut off, handed back)")
    args = parser.parse_args()
    times = []
    for run in range(1, args.runs + 1):
        with tempfile.TemporaryDirectory(prefix="avtomatika-shutdown-") as tmp:
            row = await load_and_stop(Path(tmp), args.polls, args.sockets, args.jobs, args.long)
        times.append(row["seconds"] if row["seconds"] is not None else float("inf"))
        seconds = "did not exit in 60 s" if row["seconds"] is None else f"{row['seconds']:.2f} s"
        print(
            f"run {run}: SIGTERM to exit {seconds}, exit status {row['status']}; "
            f"polls {dict(row['polls'])}; sockets {dict(row['sockets'])}; "
            f"{row['finished']}/{row['jobs']} jobs finished {row['all_done_after']:.1f} s after the restart"
        )
    print(f"median SIGTERM to exit: {statistics.median(times):.2f} s, max {max(times):.2f} s")


if __name__ == "__main__":
    asyncio.run(main())
