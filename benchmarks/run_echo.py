"""End-to-end echo benchmark: create -> dispatch -> worker -> result -> finished, over real HTTP.

    python -m benchmarks.run_echo --jobs 2000 --workers 2 --concurrency 16 --worker sdk

Starts the orchestrator and W worker processes, submits N jobs at once, and reports
jobs/s, p50/p99 latency (job created_at -> finished_at), orchestrator CPU-seconds per
1000 jobs and its peak RSS. Every process it starts is stopped by PID at the end.
"""

import argparse
import asyncio
import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import aiohttp
import psutil

ROOT = Path(__file__).resolve().parent.parent
SRC = ROOT / "src"
CLIENT_TOKEN = "bench-client-token"
WORKER_TOKEN = "bench-worker-token"
WORKERS = {
    "sdk": [sys.executable, str(ROOT / "benchmarks" / "sdk_echo_worker.py")],
    "ours": [sys.executable, "-m", "avtomatika", "worker", "benchmarks.our_echo_worker:worker"],
}


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def python_path(src: Path = SRC) -> str:
    """This checkout's code first, whatever copy of the package is installed."""
    return f"{src}{os.pathsep}{ROOT}"


def start_orchestrator(
    port: int,
    storage: str,
    cprofile: str | None,
    extra_env: dict[str, str] | None = None,
    src: Path = SRC,
) -> subprocess.Popen[bytes]:
    env = {
        **os.environ,
        "CLIENT_TOKEN": CLIENT_TOKEN,
        "GLOBAL_WORKER_TOKEN": WORKER_TOKEN,
        "BENCH_STORAGE": storage,
        "PYTHONPATH": python_path(src),
        **(extra_env or {}),
    }
    profiler = ["-m", "cProfile", "-o", cprofile] if cprofile else []
    cmd = [
        sys.executable,
        *profiler,
        "-m",
        "avtomatika",
        "serve",
        "benchmarks.echo_server:engine",
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
    ]
    return subprocess.Popen(cmd, env=env, cwd=ROOT)


def start_worker(kind: str, url: str, index: int, concurrency: int) -> subprocess.Popen[bytes]:
    env = {
        **os.environ,
        "PYTHONPATH": python_path(),
        # The published SDK's variables ...
        "ORCHESTRATOR_URL": url,
        "WORKER_ID": f"bench-{kind}-{index}",
        "WORKER_TOKEN": WORKER_TOKEN,
        "MAX_CONCURRENT_TASKS": str(concurrency),
        "LOG_LEVEL": "WARNING",
        # ... and ours.
        "AVTOMATIKA_URL": url,
        "AVTOMATIKA_WORKER_ID": f"bench-{kind}-{index}",
        "AVTOMATIKA_WORKER_TOKEN": WORKER_TOKEN,
        "AVTOMATIKA_MAX_CONCURRENT_TASKS": str(concurrency),
    }
    return subprocess.Popen(WORKERS[kind], env=env, cwd=ROOT, stdout=subprocess.DEVNULL)


async def wait_until(check: Any, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if await check():
                return
        except aiohttp.ClientError:
            pass
        await asyncio.sleep(0.1)
    raise SystemExit(f"timed out waiting for {what}")


def peak_rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return psutil.Process(pid).memory_info().rss / 2**20


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


async def redis_calls(storage: str) -> int:
    """Commands Redis has executed so far (INFO commandstats counts commands run inside scripts)."""
    if storage != "redis":
        return 0
    import redis.asyncio as aioredis

    client = aioredis.Redis.from_url(os.environ.get("REDIS_URL", "redis://127.0.0.1:6379/0"))
    try:
        stats = await client.info("commandstats")
    finally:
        await client.aclose()
    return sum(int(v["calls"]) for k, v in stats.items() if k != "cmdstat_info")


async def delete_keys(prefix: str) -> None:
    """Remove what the benchmark left in Redis (SCAN is fine here: this is not a hot path)."""
    import redis.asyncio as aioredis

    client = aioredis.Redis.from_url(os.environ.get("REDIS_URL", "redis://127.0.0.1:6379/0"))
    try:
        async for key in client.scan_iter(match=f"{prefix}:*", count=1000):
            await client.unlink(key)
    finally:
        await client.aclose()


def cpu_seconds(procs: list[psutil.Process]) -> float:
    return sum(t.user + t.system for t in (p.cpu_times() for p in procs))


async def measure(
    url: str,
    orch: psutil.Process,
    worker_procs: list[psutil.Process],
    jobs: int,
    timeout: float,
    storage: str,
) -> dict[str, Any]:
    workers = len(worker_procs)
    headers = {"X-Client-Token": CLIENT_TOKEN}
    connector = aiohttp.TCPConnector(limit=100)
    async with aiohttp.ClientSession(connector=connector) as session:

        async def ready() -> bool:
            async with session.get(f"{url}/api/v1/workers", headers=headers) as resp:
                return resp.status == 200 and len(await resp.json()) >= workers

        await wait_until(ready, 60, "workers to register")
        calls0 = await redis_calls(storage)
        cpu0, wcpu0 = cpu_seconds([orch]), cpu_seconds(worker_procs)
        started = time.time()

        async def create(i: int) -> str:
            async with session.post(
                f"{url}/api/v1/jobs/echo", json={"initial_data": {"i": i}}, headers=headers
            ) as r:
                assert r.status == 202, await r.text()
                return str((await r.json())["job_id"])

        ids = await asyncio.gather(*(create(i) for i in range(jobs)))
        submitted = time.time()
        deadline = time.monotonic() + timeout
        finished = 0
        while finished < jobs and time.monotonic() < deadline:
            await asyncio.sleep(0.05)
            async with session.get(f"{url}/bench/finished") as resp:
                finished = (await resp.json())["count"]
        cpu1, wcpu1 = cpu_seconds([orch]), cpu_seconds(worker_procs)
        calls1 = await redis_calls(storage)
        docs = []
        for job_id in ids:
            async with session.get(
                f"{url}/api/v1/jobs/{job_id}?fields=status,created_at,finished_at", headers=headers
            ) as resp:
                docs.append(await resp.json())
    done = [d for d in docs if d["status"] == "finished"]
    latencies = [d["finished_at"] - d["created_at"] for d in done]
    last = max((d["finished_at"] for d in done), default=time.time())
    cpu = cpu1 - cpu0
    return {
        "jobs": jobs,
        "finished": len(done),
        "lost_or_failed": jobs - len(done),
        "submit_seconds": round(submitted - started, 3),
        "jobs_per_second": round(len(done) / max(last - started, 1e-9), 1),
        "p50_latency_s": round(percentile(latencies, 0.50), 3) if latencies else None,
        "p99_latency_s": round(percentile(latencies, 0.99), 3) if latencies else None,
        "orchestrator_cpu_s_per_1000_jobs": round(cpu / jobs * 1000, 3),
        "orchestrator_peak_rss_mb": round(peak_rss_mb(orch.pid), 1),
        "workers_cpu_s_per_1000_jobs": round((wcpu1 - wcpu0) / jobs * 1000, 3),
        "redis_commands_per_job": round((calls1 - calls0) / jobs, 1) if storage == "redis" else None,
    }


def stop(proc: subprocess.Popen[bytes]) -> None:
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--jobs", type=int, default=2000)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--concurrency", type=int, default=16)
    parser.add_argument("--worker", choices=sorted(WORKERS), default="sdk")
    parser.add_argument("--storage", choices=["memory", "redis"], default="memory")
    parser.add_argument("--timeout", type=float, default=300.0)
    parser.add_argument(
        "--profile", metavar="FILE", help="record the orchestrator with py-spy (collapsed stacks)"
    )
    parser.add_argument("--cprofile", metavar="FILE", help="run the orchestrator under cProfile (slower)")
    parser.add_argument("--src", type=Path, default=SRC, help="source tree the orchestrator runs from")
    args = parser.parse_args()
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    orch = start_orchestrator(port, args.storage, args.cprofile, src=args.src)
    procs = [orch]
    try:

        async def up() -> bool:
            async with aiohttp.ClientSession() as s, s.get(f"{url}/_public/status") as r:
                return r.status == 200

        asyncio.run(wait_until(up, 30, "the orchestrator"))
        workers = [start_worker(args.worker, url, i, args.concurrency) for i in range(args.workers)]
        procs += workers
        if args.profile:
            spy = [
                "py-spy",
                "record",
                "--pid",
                str(orch.pid),
                "--format",
                "raw",
                "--rate",
                "100",
                "--duration",
                "4",
                "-o",
                args.profile,
            ]
            procs.append(subprocess.Popen(spy, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL))
        handles = [psutil.Process(w.pid) for w in workers]
        result = asyncio.run(
            measure(url, psutil.Process(orch.pid), handles, args.jobs, args.timeout, args.storage)
        )
    finally:
        for proc in reversed(procs):
            stop(proc)
        if args.storage == "redis":
            asyncio.run(delete_keys(f"bench-{orch.pid}"))
    if args.profile:
        time.sleep(1)
    result.update(
        worker=args.worker, workers=args.workers, concurrency=args.concurrency, storage=args.storage
    )
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
