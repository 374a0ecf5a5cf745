"""Fault tests with real processes on a real (private) Redis: design.md §3 invariants 1, 2, 4, 5.

- Two orchestrator instances and four workers run a stream of ``fault_pipeline`` jobs (a dispatch,
  a fan-out of 5 with an aggregator, a child blueprint) while one instance or the other is
  ``kill -9``-ed at random moments and restarted on the same port: every job must finish, along a
  legal path of its blueprint with no state entered twice, one committed aggregator run, one
  applied result per task, and one finished child.
- A worker ``kill -9``-ed mid-task: the task is re-dispatched after the worker's liveness deadline
  and completes elsewhere; a worker killed and restarted under the same id (so it looks alive): the
  task comes back after the task's own deadline.
- A worker SIGSTOPped past its heartbeat TTL, then SIGCONTed: its late result is refused and the
  job, finished by another worker meanwhile, is left exactly as it was.
- Redis itself restarted under load (SIGTERM, then ``kill -9`` with AOF everysec): the instances
  reconnect, and every job whose creation was acknowledged finishes.

The default run keeps each scenario small (about two minutes in all on two cores). A longer crash
run, with more jobs and more kills, is marked ``chaos`` and excluded by default::

    pytest -m chaos tests/fault                      # the long variant only
    FAULT_SEED=1234 pytest -m chaos tests/fault      # replay the random kill schedule of a run

Each test prints its random seed; process logs are printed when a test fails.
"""

import asyncio
import os
import random
import signal
import time
from pathlib import Path
from typing import Any

import pytest

from tests.fault.app import (
    CHILD,
    FAN_OUT,
    PIPELINE,
    PIPELINE_PATH,
    SINGLE_PATH,
    child_blueprint,
    pipeline_blueprint,
)
from tests.fault.harness import Cluster, JobClient, OrchestratorProcess

PIPELINE_PATH_TAKEN = ["start", "fan_out", "merge", "child", "done"]
CHILD_PATH_TAKEN = ["child_start", "child_done"]


def _seed() -> int:
    seed = int(os.environ.get("FAULT_SEED") or random.randrange(1 << 30))
    print(f"FAULT_SEED={seed}")
    return seed


# --- what a correct run looks like ---------------------------------------------------------


def path_problems(doc: dict[str, Any], start: str, edges: dict[str, set[str]], ends: set[str]) -> list[str]:
    """Why ``doc["path"]`` is not a legal run of the blueprint (empty if it is)."""
    path: list[str] = doc["path"]
    problems = []
    if not path or path[0] != start:
        problems.append(f"path does not begin at {start!r}")
    for source, target in zip(path, path[1:], strict=False):
        if target not in edges.get(source, set()):
            problems.append(f"illegal transition {source!r} -> {target!r}")
    if len(set(path)) != len(path):
        problems.append("a state was entered twice (the blueprint is a DAG)")
    if not path or path[-1] not in ends or path[-1] != doc["current_state"]:
        problems.append(f"path does not end in the end state the job is in ({doc['current_state']!r})")
    return [f"job {doc['id']}: {p}: {path}" for p in problems]


def successes(doc: dict[str, Any], task_type: str) -> list[dict[str, Any]]:
    return [r for r in doc["results"] if r["task_type"] == task_type and r["status"] == "success"]


def pipeline_problems(doc: dict[str, Any], child: dict[str, Any] | None) -> list[str]:
    """Everything that must hold for one finished ``fault_pipeline`` job and its child."""
    bp, child_bp = pipeline_blueprint(), child_blueprint()
    problems = path_problems(doc, bp.start_state, bp.transitions(), bp.end_states)
    job = f"job {doc['id']}"
    history = doc["state_history"]
    if doc["status"] != "finished" or doc["path"] != PIPELINE_PATH_TAKEN:
        problems.append(f"{job}: {doc['status']} at {doc['current_state']}: {doc['error_message']}")
    # One committed handler step per state: a step committed twice would count twice.
    if doc["transition_count"] != len(doc["path"]):
        problems.append(f"{job}: {doc['transition_count']} handler steps for path {doc['path']}")
    if history.get("merges") != 1:
        problems.append(f"{job}: the aggregator was committed {history.get('merges')} times")
    if history.get("branches") != FAN_OUT or history.get("parts") != list(range(FAN_OUT)):
        problems.append(f"{job}: the aggregator saw {history.get('branches')} branches {history.get('parts')}")
    if len(successes(doc, "prepare")) != 1:
        problems.append(f"{job}: {len(successes(doc, 'prepare'))} 'prepare' results applied")
    sub_results = [key for key in history if key.startswith("sub_job_")]
    if len(sub_results) != 1:
        problems.append(f"{job}: {len(sub_results)} child outcomes recorded: {sub_results}")
    if child is None:
        problems.append(f"{job}: its child job is missing")
        return problems
    problems += path_problems(child, child_bp.start_state, child_bp.transitions(), child_bp.end_states)
    if sub_results and sub_results[0] != f"sub_job_{child['id']}_result":
        problems.append(f"{job}: child {child['id']} is not the one it recorded ({sub_results[0]})")
    if child["status"] != "finished" or child["path"] != CHILD_PATH_TAKEN:
        problems.append(f"child {child['id']}: {child['status']} along {child['path']}")
    if child["parent_job_id"] != doc["id"] or len(successes(child, "finish_child")) != 1:
        problems.append(f"child {child['id']}: parent {child['parent_job_id']}, results {child['results']}")
    return problems


async def verify_pipeline_jobs(client: JobClient, acknowledged: list[str]) -> int:
    """Check every job in storage: each acknowledged job finished correctly, every parent has
    exactly one child, and nothing else exists (no job or child created twice). Returns the
    number of parents (acknowledged plus those whose acknowledgement a kill swallowed)."""
    everything = {doc["id"]: doc for doc in await client.all_jobs()}
    parents = {i: d for i, d in everything.items() if d["blueprint_name"] == PIPELINE}
    children = {i: d for i, d in everything.items() if d["blueprint_name"] == CHILD}
    problems = [f"acknowledged job {job_id} is missing" for job_id in acknowledged if job_id not in parents]
    by_parent: dict[str, list[dict[str, Any]]] = {}
    for child in children.values():
        by_parent.setdefault(child["parent_job_id"], []).append(child)
    for job_id, doc in parents.items():
        kids = by_parent.get(job_id, [])
        if len(kids) > 1:
            problems.append(f"job {job_id} has {len(kids)} child jobs: {[k['id'] for k in kids]}")
        problems += pipeline_problems(doc, kids[0] if kids else None)
    orphans = set(by_parent) - set(parents)
    if orphans:
        problems.append(f"child jobs of unknown parents: {sorted(orphans)}")
    assert not problems, f"{len(problems)} problem(s):\n" + "\n".join(problems[:30])
    return len(parents)


# --- orchestrator instances killed under load ----------------------------------------------


async def submit_stream(client: JobClient, count: int, seconds: float) -> list[str]:
    """Create ``count`` pipeline jobs spread over about ``seconds``, alternating instances."""
    acknowledged: list[str] = []
    gate = asyncio.Semaphore(16)
    interval = seconds / count

    async def one(n: int) -> None:
        async with gate:
            job_id, _ = await client.create(PIPELINE_PATH, {"n": n}, prefer=n)
        acknowledged.append(job_id)

    tasks = []
    for n in range(count):
        tasks.append(asyncio.create_task(one(n)))
        await asyncio.sleep(interval)
    await asyncio.gather(*tasks)
    return acknowledged


async def kill_and_restart(
    cluster: Cluster, rng: random.Random, kills: int, first: float, spacing: float
) -> list[str]:
    """``kill -9`` an instance at random moments, restarting it on the same port each time.
    Each instance is among the victims (the one holding the watcher lock included)."""
    victims = [*cluster.orchestrators, *(rng.choice(cluster.orchestrators) for _ in range(kills - 2))]
    rng.shuffle(victims)
    log = []
    await asyncio.sleep(first)
    for victim in victims:
        await asyncio.sleep(rng.uniform(0.2, spacing))
        started = time.monotonic()
        await victim.kill()
        await asyncio.sleep(rng.uniform(0.0, 1.0))
        await cluster.restart(victim)
        log.append(f"{victim.name} killed and back in {time.monotonic() - started:.1f}s")
    return log


async def run_crash_scenario(workdir: Path, jobs: int, kills: int, submit_seconds: float) -> None:
    rng = random.Random(_seed())
    async with Cluster(workdir) as cluster:
        await cluster.start_redis()
        a, b = await cluster.start_orchestrators(2)
        worker_ids = [f"w{i}" for i in range(4)]
        for i, worker_id in enumerate(worker_ids):
            cluster.add_worker(worker_id, (a, b)[i % 2])
        await cluster.workers_registered(worker_ids)
        started = time.monotonic()
        chaos = asyncio.create_task(
            kill_and_restart(cluster, rng, kills, first=0.5, spacing=submit_seconds / kills)
        )
        acknowledged = await submit_stream(cluster.jobs, jobs, submit_seconds)
        kill_log = await chaos
        docs = await cluster.jobs.wait_terminal(acknowledged, timeout=120)
        elapsed = time.monotonic() - started
        print(f"{len(acknowledged)} jobs terminal after {elapsed:.1f}s; " + "; ".join(kill_log))
        assert all(doc is not None for doc in docs.values())
        parents = await verify_pipeline_jobs(cluster.jobs, acknowledged)
        assert parents >= jobs
        assert len(kill_log) == kills
        assert a.running and b.running
        assert a.starts + b.starts == 2 + kills


@pytest.mark.timeout(240)
async def test_instances_killed_at_random_moments_lose_and_repeat_nothing(tmp_path: Path) -> None:
    await run_crash_scenario(tmp_path, jobs=300, kills=4, submit_seconds=12)


@pytest.mark.chaos
@pytest.mark.timeout(900)
async def test_chaos_many_kills_over_a_long_stream(tmp_path: Path) -> None:
    await run_crash_scenario(tmp_path, jobs=1500, kills=12, submit_seconds=60)
