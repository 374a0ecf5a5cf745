"""Memory-storage soak: does the orchestrator's RSS stay flat once the finished-job bound is reached?

    python -m benchmarks.soak_memory --jobs 200000 --in-flight 200 --max-finished 5000

Starts the orchestrator on memory storage (``MEMORY_MAX_FINISHED_JOBS`` from ``--max-finished``)
and W published-SDK echo workers, keeps ``--in-flight`` jobs outstanding until ``--jobs`` have
finished, and samples the orchestrator's RSS every ``--jobs / --samples`` finished jobs. At the end
it reads the first job (evicted long ago: expect 404) and the last one (expect 200). Every process
it starts is stopped by PID at the end. ``--src`` runs the orchestrator from another source tree
(e.g. a checkout of main, to compare).
"""

import argparse
import asyncio
import time
from pathlib import Path
from typing import Any

import aiohttp
import psutil

from benchmarks.run_echo import (
    CLIENT_TOKEN,
    SRC,
    free_port,
    start_orchestrator,
    start_worker,
    stop,
    wait_until,
)

HEADERS = {"X-Client-Token": CLIENT_TOKEN}


class Load:
    """Keeps ``in_flight`` jobs outstanding, learning completions from the ``/bench/finished`` count."""

    def __init__(self, session: aiohttp.ClientSession, url: str, in_flight: int) -> None:
        self.session = session
        self.url = url
        self.in_flight = in_flight
        self.created = 0
        self.finished = 0
        self.first_id = ""
        self.last_id = ""

    async def create(self) -> None:
        body = {"initial_data": {"i": self.created}}
        self.created += 1
        async with self.session.post(f"{self.url}/api/v1/jobs/echo", json=body, headers=HEADERS) as r:
            assert r.status == 202, await r.text()
            job_id = str((await r.json())["job_id"])
        self.first_id = self.first_id or job_id
        self.last_id = job_id

    async def refresh(self) -> None:
        async with self.session.get(f"{self.url}/bench/finished") as resp:
            self.finished = int((await resp.json())["count"])

    async def run_until(self, total: int, target: int, deadline: float) -> None:
        """Submit (never more than ``total`` jobs) until ``target`` have finished."""
        while self.finished < target:
            if time.monotonic() > deadline:
                raise SystemExit(f"timed out: {self.finished} of {target} jobs finished")
            room = min(self.in_flight - (self.created - self.finished), total - self.created)
            if room > 0:
                await asyncio.gather(*(self.create() for _ in range(room)))
            else:
                await asyncio.sleep(0.01)
            await self.refresh()

    async def status_of(self, job_id: str) -> int:
        async with self.session.get(f"{self.url}/api/v1/jobs/{job_id}", headers=HEADERS) as resp:
            return resp.status


def rss_mb(proc: psutil.Process) -> float:
    return float(proc.memory_info().rss) / 2**20


async def soak(url: str, orch: psutil.Process, args: argparse.Namespace) -> list[dict[str, Any]]:
    connector = aiohttp.TCPConnector(limit=args.in_flight)
    async with aiohttp.ClientSession(connector=connector) as session:

        async def ready() -> bool:
            async with session.get(f"{url}/api/v1/workers", headers=HEADERS) as resp:
                return resp.status == 200 and len(await resp.json()) >= args.workers

        await wait_until(ready, 60, "workers to register")
        load = Load(session, url, args.in_flight)
        rows = [{"finished": 0, "seconds": 0.0, "jobs_per_s": None, "rss_mb": rss_mb(orch)}]
        started = last = time.monotonic()
        deadline = started + args.timeout
        step = max(args.jobs // args.samples, 1)
        for target in range(step, args.jobs + 1, step):
            await load.run_until(args.jobs, target, deadline)
            now = time.monotonic()
            done = load.finished - int(rows[-1]["finished"])
            rows.append(
                {
                    "finished": load.finished,
                    "seconds": round(now - started, 1),
                    "jobs_per_s": round(done / max(now - last, 1e-9)),
                    "rss_mb": rss_mb(orch),
                }
            )
            last = now
        print(f"first job {load.first_id}: HTTP {await load.status_of(load.first_id)}")
        print(f"last job {load.last_id}: HTTP {await load.status_of(load.last_id)}")
    return rows


def print_table(rows: list[dict[str, Any]]) -> None:
    print("| finished jobs | seconds | jobs/s | orchestrator RSS |")
    print("|---:|---:|---:|---:|")
    for row in rows:
        rate = "" if row["jobs_per_s"] is None else row["jobs_per_s"]
        print(f"| {row['finished']} | {row['seconds']} | {rate} | {row['rss_mb']:.1f} MB |")


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--jobs", type=int, default=200_000)
    parser.add_argument("--in-flight", type=int, default=200)
    parser.add_argument("--max-finished", type=int, default=5000, help="MEMORY_MAX_FINISHED_JOBS")
    parser.add_argument("--samples", type=int, default=20)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--concurrency", type=int, default=16)
    parser.add_argument("--timeout", type=float, default=3600.0)
    parser.add_argument("--src", type=Path, default=SRC, help="source tree the orchestrator runs from")
    args = parser.parse_args()
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    env = {"MEMORY_MAX_FINISHED_JOBS": str(args.max_finished)}
    orch = start_orchestrator(port, "memory", None, env, args.src)
    procs = [orch]
    try:

        async def up() -> bool:
            async with aiohttp.ClientSession() as s, s.get(f"{url}/_public/status") as r:
                return r.status == 200

        asyncio.run(wait_until(up, 30, "the orchestrator"))
        procs += [start_worker("sdk", url, i, args.concurrency) for i in range(args.workers)]
        rows = asyncio.run(soak(url, psutil.Process(orch.pid), args))
    finally:
        for proc in reversed(procs):
            stop(proc)
    print(f"MEMORY_MAX_FINISHED_JOBS={args.max_finished}, {args.in_flight} in flight, src {args.src}")
    print_table(rows)


if __name__ == "__main__":
    main()
