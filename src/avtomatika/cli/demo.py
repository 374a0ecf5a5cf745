"""``avtomatika demo``: a realistic pipeline end to end on the embedded default.

One process runs an orchestrator on memory storage (a free loopback port) and a few local
workers that talk to it over real HTTP. Jobs take a conditional lane, fan out to several
workers and back in, and survive a transient failure that is retried.
"""

import asyncio
import secrets
import socket
import statistics
from typing import Any

import aiohttp
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from avtomatika.blueprints.actions import ActionFactory
from avtomatika.blueprints.blueprint import Blueprint
from avtomatika.config import Config
from avtomatika.engine.runtime import run_async
from avtomatika.server.orchestrator import OrchestratorEngine
from avtomatika.storage.memory.backend import MemoryStorage
from avtomatika.worker import TransientError, Worker

SEGMENTS = 3
TERMINAL = {"finished", "failed", "quarantined", "cancelled"}


def media_pipeline() -> Blueprint:
    bp = Blueprint(name="media_pipeline", api_version="v1", api_endpoint="/jobs/media")

    @bp.handler("triage", is_start=True).when("context.initial_data.priority == 'urgent'")
    async def triage_urgent(state_history: dict[str, Any], actions: ActionFactory) -> None:
        state_history["lane"] = "urgent"
        actions.go_to("transcode_urgent")

    @bp.handler("triage", is_start=True)
    async def triage(state_history: dict[str, Any], actions: ActionFactory) -> None:
        state_history["lane"] = "standard"
        actions.go_to("transcode")

    @bp.handler
    async def transcode(initial_data: dict[str, Any], actions: ActionFactory) -> None:
        actions.dispatch_task(
            "transcode", {"video": initial_data["video"]}, transitions={"success": "analyze"}
        )

    @bp.handler
    async def transcode_urgent(initial_data: dict[str, Any], actions: ActionFactory) -> None:
        actions.dispatch_task(
            "transcode", {"video": initial_data["video"]}, transitions={"success": "analyze"}, priority=10.0
        )

    @bp.handler
    async def analyze(output: str, actions: ActionFactory) -> None:
        segments = [
            {"task_type": "detect_objects", "params": {"file": output, "segment": s}} for s in range(SEGMENTS)
        ]
        actions.dispatch_parallel(tasks=segments, aggregate_into="merge")

    @bp.aggregator
    async def merge(
        aggregation_results: dict[str, Any], state_history: dict[str, Any], actions: ActionFactory
    ) -> None:
        state_history["objects"] = sum(r["data"]["objects"] for r in aggregation_results.values())
        actions.go_to("publish")

    @bp.handler
    async def publish(job_id: str, objects: int, actions: ActionFactory) -> None:
        actions.dispatch_task(
            "publish", {"job": job_id, "objects": objects}, transitions={"success": "published"}
        )

    @bp.handler(is_end=True)
    async def published() -> None:
        return None

    return bp


def demo_workers(url: str, token: str) -> list[Worker]:
    gpu_a, gpu_b, cpu = (
        Worker(url, token, worker_id=name, max_concurrent_tasks=8, heartbeat_interval=2.0, poll_timeout=5.0)
        for name in ("gpu-a", "gpu-b", "cpu-c")
    )
    flaked: set[str] = set()

    async def transcode(params: dict[str, Any]) -> dict[str, Any]:
        await asyncio.sleep(0.02)
        return {"output": params["video"].replace(".mp4", ".webm")}

    async def detect(params: dict[str, Any]) -> dict[str, Any]:
        await asyncio.sleep(0.01 * (1 + params["segment"]))
        return {"objects": 2 + params["segment"]}

    async def publish(params: dict[str, Any], job_id: str) -> dict[str, Any]:
        # Every third job's first publish attempt hits a flaky CDN: a transient error, retried.
        if int(job_id[-2:], 16) % 3 == 0 and job_id not in flaked:
            flaked.add(job_id)
            raise TransientError("CDN timed out")
        await asyncio.sleep(0.005)
        return {"url": f"https://cdn.example/{params['job']}"}

    for worker in (gpu_a, gpu_b):
        worker.skill("transcode")(transcode)
        worker.skill("detect_objects")(detect)
    cpu.skill("detect_objects")(detect)
    cpu.skill("publish")(publish)
    return [gpu_a, gpu_b, cpu]


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


async def _run(job_count: int, worker_count: int, console: Console) -> int:
    config = Config()
    config.API_HOST, config.API_PORT = "127.0.0.1", _free_port()
    config.CLIENT_TOKEN, config.GLOBAL_WORKER_TOKEN = secrets.token_urlsafe(16), secrets.token_urlsafe(16)
    config.LOG_LEVEL = "ERROR"
    config.TASK_RETRY_BASE_DELAY_SECONDS = 0.2
    engine = OrchestratorEngine(MemoryStorage(), config)
    engine.register_blueprint(media_pipeline())
    await engine.start()
    url = f"http://127.0.0.1:{engine.port}"
    workers = demo_workers(url, config.GLOBAL_WORKER_TOKEN)[: max(worker_count, 3)]
    try:
        for worker in workers:
            await worker.start()
        async with aiohttp.ClientSession(headers={"X-Client-Token": config.CLIENT_TOKEN}) as http:
            docs = await _submit_and_follow(http, url, job_count, console)
    finally:
        for worker in workers:
            await worker.stop()
        await engine.stop()
    _summarise(docs, console)
    return 0 if all(d["status"] == "finished" for d in docs) else 1


async def _submit_and_follow(
    http: aiohttp.ClientSession, url: str, count: int, console: Console
) -> list[Any]:
    ids = []
    for i in range(count):
        body = {
            "initial_data": {"video": f"clip-{i:03d}.mp4", "priority": "urgent" if i % 4 == 0 else "normal"}
        }
        async with http.post(f"{url}/api/v1/jobs/media", json=body) as resp:
            resp.raise_for_status()
            ids.append((await resp.json())["job_id"])
    columns = (TextColumn("[bold]media_pipeline"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn())
    with Progress(*columns, console=console) as progress:
        bar = progress.add_task("jobs", total=count)
        while True:
            async with http.get(f"{url}/api/v1/jobs", params={"limit": str(count)}) as resp:
                docs = [d for d in await resp.json() if d["id"] in set(ids)]
            done = sum(d["status"] in TERMINAL for d in docs)
            progress.update(bar, completed=done)
            if done == count:
                return docs
            await asyncio.sleep(0.1)


def _summarise(docs: list[Any], console: Console) -> None:
    table = Table(title="Jobs by lane")
    for column in ("lane", "jobs", "finished", "retried", "p50 s", "max s"):
        table.add_column(column, justify="right" if column != "lane" else "left")
    for lane in ("urgent", "standard"):
        group = [d for d in docs if d["state_history"].get("lane") == lane]
        times = [d["finished_at"] - d["created_at"] for d in group if d["finished_at"]]
        retried = sum(any(r["status"] == "failure" for r in d["results"]) for d in group)
        finished = sum(d["status"] == "finished" for d in group)
        p50 = f"{statistics.median(times):.2f}" if times else "-"
        table.add_row(lane, str(len(group)), str(finished), str(retried), p50, f"{max(times, default=0):.2f}")
    console.print(table)
    states = Table(title="Where the jobs ended")
    states.add_column("status")
    states.add_column("state")
    states.add_column("jobs", justify="right")
    counts: dict[tuple[str, str], int] = {}
    for d in docs:
        counts[(d["status"], d["current_state"])] = counts.get((d["status"], d["current_state"]), 0) + 1
    for (status, state), n in sorted(counts.items()):
        states.add_row(status, state, str(n))
    console.print(states)


def run_demo(job_count: int = 36, worker_count: int = 3) -> int:
    """Run the demo; returns the process exit code (0 when every job finished)."""
    return run_async(_run(job_count, worker_count, Console()))
