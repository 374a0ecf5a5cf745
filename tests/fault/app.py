"""Blueprints of the fault tests, and the engine ``avtomatika serve tests.fault.app:engine`` runs.

The engine is built from the environment on first access of ``engine`` (so that the test process
can import the blueprints without building one): ``REDIS_URL`` (required), ``FAULT_PREFIX`` (the
Redis key prefix shared by the instances of one test), plus any ``Config`` variable; the timings
below are defaults made short so that leases, deadlines and dead workers resolve in seconds.

``fault_pipeline``: start -> task ``prepare`` -> fan_out (5 ``part`` tasks) -> aggregator ``merge``
-> child (a ``fault_child`` job) -> done. ``merge`` counts its committed runs in
``state_history["merges"]``: a fan-in applied twice would show 2.
``fault_child``: child_start -> task ``finish_child`` -> child_done.
``fault_single``: start -> task ``slow`` (params and deadline from the job's initial data) -> done.
"""

import os
from collections.abc import Mapping
from typing import Any

from avtomatika import Blueprint, OrchestratorEngine
from avtomatika.config import Config
from avtomatika.context import ActionFactory

PIPELINE = "fault_pipeline"
CHILD = "fault_child"
SINGLE = "fault_single"
PIPELINE_PATH = f"/api/v1/jobs/{PIPELINE}"
SINGLE_PATH = f"/api/v1/jobs/{SINGLE}"
FAN_OUT = 5

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
    # Every kill costs some tasks an attempt; the budget must outlast a chaos run.
    "JOB_MAX_RETRIES": "50",
}


def pipeline_blueprint() -> Blueprint:
    bp = Blueprint(PIPELINE, api_version="v1", api_endpoint=f"/jobs/{PIPELINE}")

    @bp.handler(is_start=True)
    async def start(initial_data: dict[str, Any], actions: ActionFactory) -> None:
        actions.dispatch_task(
            task_type="prepare", params={"n": initial_data.get("n", 0)}, transitions={"success": "fan_out"}
        )

    @bp.handler
    async def fan_out(initial_data: dict[str, Any], actions: ActionFactory) -> None:
        n = initial_data.get("n", 0)
        actions.dispatch_parallel(
            tasks=[{"task_type": "part", "params": {"n": n, "part": i}} for i in range(FAN_OUT)],
            aggregate_into="merge",
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


def blueprints() -> list[Blueprint]:
    return [pipeline_blueprint(), child_blueprint(), single_blueprint()]


def build_engine(environ: Mapping[str, str]) -> OrchestratorEngine:
    """An engine on Redis ``REDIS_URL`` under key prefix ``FAULT_PREFIX``, with every blueprint."""
    from avtomatika.storage.redis import RedisStorage

    env = {**TIMING_DEFAULTS, **environ}
    config = Config(environ=env)
    storage = RedisStorage.from_url(env["REDIS_URL"], prefix=env.get("FAULT_PREFIX", "avtomatika-fault"))
    engine = OrchestratorEngine(storage, config)
    for bp in blueprints():
        engine.register_blueprint(bp)
    return engine


_engine: OrchestratorEngine | None = None


def __getattr__(name: str) -> Any:
    """``engine`` is built from ``os.environ`` on first access (``avtomatika serve`` asks for it)."""
    global _engine
    if name != "engine":
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    if _engine is None:
        _engine = build_engine(os.environ)
    return _engine
