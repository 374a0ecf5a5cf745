"""Blueprints of the fault tests, and the engine ``avtomatika serve tests.fault.app:engine`` runs.

The engine is built from the environment on first access of ``engine`` (so that the test process
can import the blueprints without building one): ``REDIS_URL`` (required), ``FAULT_PREFIX`` (the
Redis key prefix shared by the instances of one test), plus any ``Config`` variable; the timings
below are defaults made short so that leases, deadlines and dead workers resolve in seconds.

``fault_pipeline``: start -> task ``prepare`` -> fan_out (5 ``part`` tasks) -> aggregator ``merge``
-> child (a ``fault_child`` job) -> done. ``merge`` counts its committed runs in
``state_history["merges"]``: a fan-in applied twice would show 2. ``FAULT_STEP_LOG`` (below) makes
``fan_out`` slow and logged.
``fault_child``: child_start -> task ``finish_child`` -> child_done.
``fault_single``: start -> task ``slow`` (params and deadline from the job's initial data) -> done.
``fault_slow_step``: a ``start`` handler that sleeps ``handler_seconds`` (an executor step in flight
for that long) -> done; ``state_history["step_runs"]`` counts its committed runs. With
``run_log`` (a path) each run first appends ``<instance id> <epoch time>`` to it, so a test sees
every run, committed or not; with ``wait_for`` (a path) a run blocks until that file exists.

``pipeline_problems`` and ``path_problems`` say what is wrong with a job document (as the API
returns it) compared with a correct, exactly-once run of these blueprints.
"""

import asyncio
import functools
import itertools
import os
import time
from collections.abc import Mapping
from typing import Any

from avtomatika import Blueprint, OrchestratorEngine
from avtomatika.blueprints.actions import ActionFactory
from avtomatika.config import Config

PIPELINE = "fault_pipeline"
CHILD = "fault_child"
SINGLE = "fault_single"
PIPELINE_PATH = f"/api/v1/jobs/{PIPELINE}"
SINGLE_PATH = f"/api/v1/jobs/{SINGLE}"
SLOW_STEP = "fault_slow_step"
SLOW_STEP_PATH = f"/api/v1/jobs/{SLOW_STEP}"
FAN_OUT = 5
PIPELINE_PATH_TAKEN = ["start", "fan_out", "merge", "child", "done"]
CHILD_PATH_TAKEN = ["child_start", "child_done"]

TIMING_DEFAULTS: dict[str, str] = {
    "STORAGE_BACKEND": "redis",
    "API_HOST": "127.0.0.1",
    "LOG_LEVEL": "INFO",
    "LOG_FORMAT": "text",
    "WATCHER_INTERVAL_SECONDS": "0.2",
    "EXECUTOR_LEASE_SECONDS": "2",
    "WORKER_HEALTH_CHECK_INTERVAL_SECONDS": "1",
    "WORKER_POLL_TIMEOUT_SECONDS": "2",
    # A task whose worker or result vanished (a killed instance's unanswered long-poll, a result
    # lost with a Redis rollback) comes back after this long.
    "WORKER_TIMEOUT_SECONDS": "5",
    "TASK_RETRY_BASE_DELAY_SECONDS": "0.1",
    "TASK_RETRY_MAX_DELAY_SECONDS": "1",
}
# Set in an orchestrator's environment: its ``fan_out`` handler logs ``begin``/``end <instance id>
# <pid> <job id> <epoch time>`` lines to this file (O_APPEND) around a ``FAULT_FAN_OUT_SECONDS`` sleep, so a
# test can kill an instance while it runs handlers and see which ones the kill interrupted.
STEP_LOG = os.environ.get("FAULT_STEP_LOG", "")
FAN_OUT_SECONDS = float(os.environ.get("FAULT_FAN_OUT_SECONDS", "0.3"))
INSTANCE = os.environ.get("INSTANCE_ID", "")


def pipeline_blueprint() -> Blueprint:
    bp = Blueprint(PIPELINE, api_version="v1", api_endpoint=f"/jobs/{PIPELINE}")

    @bp.handler(is_start=True)
    async def start(initial_data: dict[str, Any], actions: ActionFactory) -> None:
        actions.dispatch_task(
            task_type="prepare", params={"n": initial_data.get("n", 0)}, transitions={"success": "fan_out"}
        )

    @bp.handler
    async def fan_out(job_id: str, initial_data: dict[str, Any], actions: ActionFactory) -> None:
        if STEP_LOG:
            await asyncio.to_thread(
                append_line, STEP_LOG, f"begin {INSTANCE} {os.getpid()} {job_id} {time.time()!r}\n"
            )
            await asyncio.sleep(FAN_OUT_SECONDS)
        n = initial_data.get("n", 0)
        actions.dispatch_parallel(
            tasks=[{"task_type": "part", "params": {"n": n, "part": i}} for i in range(FAN_OUT)],
            aggregate_into="merge",
        )
        if STEP_LOG:
            await asyncio.to_thread(
                append_line, STEP_LOG, f"end {INSTANCE} {os.getpid()} {job_id} {time.time()!r}\n"
            )

    @bp.aggregator
    async def merge(
        aggregation_results: dict[str, Any], state_history: dict[str, Any], actions: ActionFactory
    ) -> None:
        state_history["merges"] = state_history.get("merges", 0) + 1
        state_history["branches"] = len(aggregation_results)
        state_history["parts"] = sorted(
            r["data"]["part"] for r in aggregation_results.values() if r["status"] == "success"
        )
        actions.go_to("child")

    @bp.handler
    async def child(initial_data: dict[str, Any], actions: ActionFactory) -> None:
        actions.run_blueprint(
            CHILD,
            initial_data={"n": initial_data.get("n", 0)},
            transitions={"success": "done", "failure": "child_failed"},
        )

    @bp.handler(is_end=True)
    async def done() -> None:
        return None

    @bp.handler(is_end=True)
    async def child_failed() -> None:
        return None

    return bp


def child_blueprint() -> Blueprint:
    bp = Blueprint(CHILD)

    @bp.handler(is_start=True)
    async def child_start(initial_data: dict[str, Any], actions: ActionFactory) -> None:
        actions.dispatch_task(
            task_type="finish_child", params=initial_data, transitions={"success": "child_done"}
        )

    @bp.handler(is_end=True)
    async def child_done() -> None:
        return None

    return bp


def single_blueprint() -> Blueprint:
    bp = Blueprint(SINGLE, api_version="v1", api_endpoint=f"/jobs/{SINGLE}")

    @bp.handler(is_start=True)
    async def start(initial_data: dict[str, Any], actions: ActionFactory) -> None:
        actions.dispatch_task(
            task_type="slow",
            params=initial_data,
            transitions={"success": "done"},
            timeout_seconds=initial_data.get("timeout_seconds"),
        )

    @bp.handler(is_end=True)
    async def done() -> None:
        return None

    return bp


def slow_step_blueprint() -> Blueprint:
    bp = Blueprint(SLOW_STEP, api_version="v1", api_endpoint=f"/jobs/{SLOW_STEP}")

    @bp.handler(is_start=True)
    async def start(
        initial_data: dict[str, Any], state_history: dict[str, Any], actions: ActionFactory
    ) -> None:
        if "run_log" in initial_data:
            line = f"{os.environ.get('INSTANCE_ID', '')} {time.time()!r}\n"
            await asyncio.to_thread(append_line, initial_data["run_log"], line)
        if "wait_for" in initial_data:
            await file_created(initial_data["wait_for"])
        await asyncio.sleep(initial_data.get("handler_seconds", 0))
        state_history["step_runs"] = state_history.get("step_runs", 0) + 1
        actions.go_to("done")

    @bp.handler(is_end=True)
    async def done() -> None:
        return None

    return bp


def append_line(path: str, line: str) -> None:
    """One ``write`` with ``O_APPEND``: lines of concurrent writers (several processes) never mix."""
    fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    try:
        os.write(fd, line.encode())
    finally:
        os.close(fd)


async def file_created(path: str) -> None:
    """Until another process (the test) creates ``path``: polled, no event crosses processes."""
    while True:
        if await asyncio.to_thread(os.path.exists, path):
            return
        await asyncio.sleep(0.05)


def blueprints() -> list[Blueprint]:
    return [pipeline_blueprint(), child_blueprint(), single_blueprint(), slow_step_blueprint()]


def build_engine(environ: Mapping[str, str]) -> OrchestratorEngine:
    """An engine on Redis ``REDIS_URL`` under key prefix ``FAULT_PREFIX``, with every blueprint."""
    from avtomatika.storage.redis.backend import RedisStorage

    env = {**TIMING_DEFAULTS, **environ}
    config = Config(environ=env)
    storage = RedisStorage.from_url(env["REDIS_URL"], prefix=env.get("FAULT_PREFIX", "avtomatika-fault"))
    engine = OrchestratorEngine(storage, config)
    for bp in blueprints():
        engine.register_blueprint(bp)
    return engine


# --- what a correct run of these blueprints looks like (job documents as the API returns them) ---


def path_problems(doc: dict[str, Any], start: str, edges: dict[str, set[str]], ends: set[str]) -> list[str]:
    """Why ``doc["path"]`` is not a legal run of the blueprint (empty if it is)."""
    path: list[str] = doc["path"]
    problems = []
    if not path or path[0] != start:
        problems.append(f"path does not begin at {start!r}")
    for source, target in itertools.pairwise(path):
        if target not in edges.get(source, set()):
            problems.append(f"illegal transition {source!r} -> {target!r}")
    if len(set(path)) != len(path):
        problems.append("a state was entered twice (the blueprint is a DAG)")
    if not path or path[-1] not in ends or path[-1] != doc["current_state"]:
        problems.append(f"path does not end in the end state the job is in ({doc['current_state']!r})")
    return [f"job {doc['id']}: {p}: {path}" for p in problems]


def successes(doc: dict[str, Any], task_type: str) -> list[dict[str, Any]]:
    return [r for r in doc["results"] if r["task_type"] == task_type and r["status"] == "success"]


@functools.cache
def graph(name: str) -> tuple[str, dict[str, set[str]], set[str]]:
    """A blueprint's start state, edges (``Blueprint.transitions()``) and end states."""
    bp = next(bp for bp in blueprints() if bp.name == name)
    return bp.start_state, bp.transitions(), set(bp.end_states)


def pipeline_problems(
    doc: dict[str, Any], child: dict[str, Any] | None, *, storage_errors: bool = False
) -> list[str]:
    """Everything that must hold for one finished ``fault_pipeline`` job and its child.

    ``transition_count`` counts committed handler attempts, failed ones included; a handler only
    fails here when storage does (then the attempt is retried), so with ``storage_errors`` (Redis
    went away) it may exceed the number of states entered, and must otherwise equal it.
    """
    problems = path_problems(doc, *graph(PIPELINE))
    job = f"job {doc['id']}"
    history = doc["state_history"]
    if doc["status"] != "finished" or doc["path"] != PIPELINE_PATH_TAKEN:
        problems.append(f"{job}: {doc['status']} at {doc['current_state']}: {doc['error_message']}")
    steps = doc["transition_count"]
    if steps < len(doc["path"]) or (steps > len(doc["path"]) and not storage_errors):
        problems.append(f"{job}: {doc['transition_count']} handler steps for path {doc['path']}")
    if history.get("merges") != 1:
        problems.append(f"{job}: the aggregator was committed {history.get('merges')} times")
    if history.get("branches") != FAN_OUT or history.get("parts") != list(range(FAN_OUT)):
        seen = f"{history.get('branches')} branches {history.get('parts')}"
        problems.append(f"{job}: the aggregator saw {seen}")
    if len(successes(doc, "prepare")) != 1:
        problems.append(f"{job}: {len(successes(doc, 'prepare'))} 'prepare' results applied")
    sub_results = [key for key in history if key.startswith("sub_job_")]
    if len(sub_results) != 1:
        problems.append(f"{job}: {len(sub_results)} child outcomes recorded: {sub_results}")
    if child is None:
        problems.append(f"{job}: its child job is missing")
        return problems
    problems += path_problems(child, *graph(CHILD))
    if sub_results and sub_results[0] != f"sub_job_{child['id']}_result":
        problems.append(f"{job}: child {child['id']} is not the one it recorded ({sub_results[0]})")
    if child["status"] != "finished" or child["path"] != CHILD_PATH_TAKEN:
        problems.append(f"child {child['id']}: {child['status']} along {child['path']}")
    if child["parent_job_id"] != doc["id"] or len(successes(child, "finish_child")) != 1:
        problems.append(f"child {child['id']}: parent {child['parent_job_id']}, results {child['results']}")
    return problems


_engine: OrchestratorEngine | None = None


def __getattr__(name: str) -> Any:
    """``engine`` is built from ``os.environ`` on first access (``avtomatika serve`` asks for it)."""
    global _engine
    if name != "engine":
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    if _engine is None:
        _engine = build_engine(os.environ)
    return _engine
