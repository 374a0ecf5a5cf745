"""Real processes for the fault tests: a private redis-server, orchestrator instances and workers.

Every process is started by this module and controlled by its PID only (``Popen`` signals its own
child): SIGKILL, SIGSTOP/SIGCONT, SIGTERM. Nothing here ever blocks the event loop: exits are
awaited by polling ``Popen.poll()`` between short async sleeps, because the orchestrators' and
workers' HTTP traffic (and the test's own in-process servers) must keep flowing meanwhile.

Each process appends its output to ``<name>.log`` in the test's directory (restarts included,
each headed by a ``=== start`` line); :class:`Cluster` prints the tails of all logs when the test
fails, and stops every process it started, in any case.
"""

import asyncio
import atexit
import collections
import contextlib
import os
import random
import shutil
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Iterable, Sequence
from pathlib import Path
from types import TracebackType
from typing import Any, Self
from urllib.parse import quote

import aiohttp
import redis.asyncio as aioredis
from redis.exceptions import RedisError

from tests.conftest import CLIENT_TOKEN, WORKER_TOKEN, free_port, require

REPO_ROOT = Path(__file__).resolve().parents[2]
TERMINAL = frozenset({"finished", "failed", "quarantined", "cancelled"})
LOG_TAIL_LINES = 40

_started: set[subprocess.Popen[bytes]] = set()


@atexit.register
def _kill_leftovers() -> None:
    """Last resort if the test process exits without its ``finally`` blocks: our children only."""
    for proc in list(_started):
        if proc.poll() is None:
            proc.kill()


class ManagedProcess:
    """One child process that may be started, signalled, killed and restarted many times."""

    def __init__(self, name: str, argv: Sequence[str], env: dict[str, str], log_path: Path) -> None:
        self.name = name
        self.argv = list(argv)
        self.env = env
        self.log_path = log_path
        self.starts = 0
        self._proc: subprocess.Popen[bytes] | None = None

    @property
    def pid(self) -> int:
        assert self._proc is not None, f"{self.name} was never started"
        return self._proc.pid

    @property
    def running(self) -> bool:
        return self._proc is not None and self._proc.poll() is None

    def start(self) -> None:
        if self.running:
            raise RuntimeError(f"{self.name} is already running (pid {self.pid})")
        self.starts += 1
        with self.log_path.open("ab") as log:
            log.write(f"=== start #{self.starts} of {self.name} at {time.time():.3f}\n".encode())
            log.flush()
            self._proc = subprocess.Popen(
                self.argv, env=self.env, cwd=REPO_ROOT, stdout=log, stderr=subprocess.STDOUT
            )
        _started.add(self._proc)

    def send(self, signum: signal.Signals) -> None:
        """Signal our own child (by its PID) if it is still running."""
        if self.running:
            assert self._proc is not None
            self._proc.send_signal(signum)

    @property
    def returncode(self) -> int | None:
        """The exit status once the process has exited (negative: killed by that signal)."""
        return None if self._proc is None else self._proc.poll()

    async def wait_exit(self, timeout: float) -> bool:
        """Wait (without blocking the loop) until the process has exited; False on timeout."""
        proc = self._proc
        if proc is None:
            return True
        deadline = time.monotonic() + timeout
        while proc.poll() is None:
            if time.monotonic() > deadline:
                return False
            await asyncio.sleep(0.02)
        _started.discard(proc)
        return True

    async def kill(self) -> None:
        """``kill -9``, then reap it."""
        self.send(signal.SIGKILL)
        if not await self.wait_exit(30):
            raise AssertionError(f"{self.name} (pid {self.pid}) survived SIGKILL")

    async def stop(self, grace: float = 10.0) -> None:
        """SIGTERM (resuming it first if it was stopped), SIGKILL after ``grace`` seconds."""
        if not self.running:
            await self.wait_exit(0)
            return
        self.send(signal.SIGCONT)
        self.send(signal.SIGTERM)
        if not await self.wait_exit(grace):
            await self.kill()

    def log_tail(self, lines: int = LOG_TAIL_LINES) -> str:
        try:
            text = self.log_path.read_text(errors="replace")
        except FileNotFoundError:
            return "(no log)"
        return "\n".join(text.splitlines()[-lines:])

    def log_text(self) -> str:
        try:
            return self.log_path.read_text(errors="replace")
        except FileNotFoundError:
            return ""


class RedisServer(ManagedProcess):
    """A private redis-server with AOF (``everysec`` unless told otherwise); restarts reuse its
    port and directory."""

    def __init__(self, workdir: Path, fsync: str = "everysec") -> None:
        binary = shutil.which("redis-server")
        require(binary is not None, "redis-server is not on PATH")
        assert binary is not None
        self.port = free_port()
        self.url = f"redis://127.0.0.1:{self.port}/0"
        datadir = workdir / "redis-data"
        datadir.mkdir(parents=True, exist_ok=True)
        argv = [
            binary,
            "--port",
            str(self.port),
            "--bind",
            "127.0.0.1",
            "--dir",
            str(datadir),
            "--appendonly",
            "yes",
            "--appendfsync",
            fsync,
            "--save",
            "",
        ]
        super().__init__("redis", argv, dict(os.environ), workdir / "redis.log")

    async def ready(self, timeout: float = 20.0) -> None:
        """Wait until the server answers PING with its data loaded."""
        client = aioredis.Redis.from_url(self.url)
        deadline = time.monotonic() + timeout
        try:
            while True:
                if not self.running:
                    raise AssertionError(f"redis-server exited:\n{self.log_tail()}")
                try:
                    if await client.ping():
                        return
                except (RedisError, OSError):
                    # Refused while starting, or LOADING while it replays the AOF.
                    pass
                if time.monotonic() > deadline:
                    raise AssertionError(f"redis-server not ready after {timeout}s:\n{self.log_tail()}")
                await asyncio.sleep(0.05)
        finally:
            await client.aclose()


class OrchestratorProcess(ManagedProcess):
    """``avtomatika serve tests.fault.app:engine`` on a fixed port (kept across restarts)."""

    def __init__(self, name: str, redis_url: str, prefix: str, workdir: Path, **config: str) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        env = {
            **os.environ,
            "REDIS_URL": redis_url,
            "FAULT_PREFIX": prefix,
            # A restarted instance keeps its identity, as a deployment's pod or unit name does.
            "INSTANCE_ID": name,
            "CLIENT_TOKEN": CLIENT_TOKEN,
            "GLOBAL_WORKER_TOKEN": WORKER_TOKEN,
            **config,
        }
        argv = [sys.executable, "-m", "avtomatika", "serve", "tests.fault.app:engine"]
        argv += ["--port", str(self.port)]
        super().__init__(name, argv, env, workdir / f"{name}.log")

    async def ready(self, session: aiohttp.ClientSession, timeout: float = 30.0) -> None:
        """Wait until the instance answers its liveness route."""
        deadline = time.monotonic() + timeout
        while True:
            if not self.running:
                raise AssertionError(f"{self.name} exited while starting:\n{self.log_tail()}")
            with contextlib.suppress(aiohttp.ClientError, TimeoutError):
                async with session.get(
                    self.url + "/_public/status", timeout=aiohttp.ClientTimeout(total=2)
                ) as resp:
                    if resp.status == 200:
                        return
            if time.monotonic() > deadline:
                raise AssertionError(f"{self.name} not ready after {timeout}s:\n{self.log_tail()}")
            await asyncio.sleep(0.05)


class WorkerProcess(ManagedProcess):
    """``avtomatika worker tests.fault.worker_app:worker`` talking to one orchestrator URL."""

    def __init__(self, worker_id: str, url: str, workdir: Path, *, concurrency: int = 8, **env: str) -> None:
        self.worker_id = worker_id
        environ = {
            **os.environ,
            "AVTOMATIKA_URL": url,
            "AVTOMATIKA_WORKER_TOKEN": WORKER_TOKEN,
            "AVTOMATIKA_WORKER_ID": worker_id,
            "AVTOMATIKA_MAX_CONCURRENT_TASKS": str(concurrency),
            **env,
        }
        argv = [sys.executable, "-m", "avtomatika", "worker", "tests.fault.worker_app:worker"]
        super().__init__(worker_id, argv, environ, workdir / f"{worker_id}.log")


class Cluster:
    """The processes of one test: started through it, all stopped when the ``async with`` ends.

    On an exception (a failed assertion included) the tail of every process's log is printed
    first, so the failure report shows what the orchestrators, workers and Redis were doing.
    """

    def __init__(self, workdir: Path) -> None:
        self.workdir = workdir
        self.prefix = f"fault-{uuid.uuid4().hex[:12]}"
        self.redis: RedisServer | None = None
        self.orchestrators: list[OrchestratorProcess] = []
        self.workers: list[WorkerProcess] = []
        self.session: aiohttp.ClientSession | None = None
        self.client: JobClient | None = None

    async def __aenter__(self) -> Self:
        self.session = aiohttp.ClientSession()
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        try:
            if exc_type is not None:
                self.print_logs()
        finally:
            await self._stop_all()

    async def _stop_all(self) -> None:
        # Workers first (their farewell goes to a live orchestrator), Redis last.
        await asyncio.gather(*(w.stop(5) for w in self.workers), return_exceptions=True)
        await asyncio.gather(*(o.stop(10) for o in self.orchestrators), return_exceptions=True)
        if self.redis is not None:
            await self.redis.stop(10)
        if self.session is not None:
            await self.session.close()

    def print_logs(self) -> None:
        procs: list[ManagedProcess] = [*self.orchestrators, *self.workers]
        if self.redis is not None:
            procs.append(self.redis)
        for proc in procs:
            print(f"\n----- {proc.name} ({proc.log_path}), last {LOG_TAIL_LINES} lines -----")
            print(proc.log_tail())

    @property
    def http(self) -> aiohttp.ClientSession:
        assert self.session is not None, "use Cluster in 'async with'"
        return self.session

    async def start_redis(self, fsync: str = "everysec") -> RedisServer:
        self.redis = RedisServer(self.workdir, fsync)
        self.redis.start()
        await self.redis.ready()
        return self.redis

    async def start_orchestrators(self, count: int, **config: str) -> list[OrchestratorProcess]:
        assert self.redis is not None, "start Redis first"
        created = [
            OrchestratorProcess(
                f"orch-{chr(ord('a') + len(self.orchestrators) + i)}",
                self.redis.url,
                self.prefix,
                self.workdir,
                **config,
            )
            for i in range(count)
        ]
        self.orchestrators.extend(created)
        for orch in created:
            orch.start()
        await asyncio.gather(*(orch.ready(self.http) for orch in created))
        self.client = JobClient(self.http, [o.url for o in self.orchestrators])
        return created

    async def restart(self, orch: OrchestratorProcess) -> None:
        orch.start()
        await orch.ready(self.http)

    def add_worker(
        self, worker_id: str, orch: OrchestratorProcess, *, concurrency: int = 8, **env: str
    ) -> WorkerProcess:
        """Start a worker talking to ``orch``; ``env`` sets FAULT_* variables (see worker_app)."""
        worker = WorkerProcess(worker_id, orch.url, self.workdir, concurrency=concurrency, **env)
        self.workers.append(worker)
        worker.start()
        return worker

    async def workers_registered(self, worker_ids: Iterable[str], timeout: float = 30.0) -> None:
        wanted = set(worker_ids)
        deadline = time.monotonic() + timeout
        while True:
            registered = {w["worker_id"] for w in await self.jobs.workers()}
            if wanted <= registered:
                return
            if time.monotonic() > deadline:
                raise AssertionError(f"workers {sorted(wanted - registered)} never registered")
            await asyncio.sleep(0.05)

    async def tasks_running(self) -> int:
        """How many tasks our workers are running now (their ``worker-running`` sets in Redis)."""
        assert self.redis is not None, "start Redis first"
        client = aioredis.Redis.from_url(self.redis.url)
        try:
            counts = [await client.scard(f"{self.prefix}:worker-running:{w.worker_id}") for w in self.workers]
        finally:
            await client.aclose()
        return sum(counts)

    @property
    def jobs(self) -> "JobClient":
        assert self.client is not None, "start the orchestrators first"
        return self.client


class Unavailable(Exception):
    """No instance answered the request (all were down, or Redis was)."""


class JobClient:
    """The client API over several instances: a request an instance cannot answer (killed, or its
    Redis down) goes to the next one, and is retried until ``timeout``."""

    def __init__(self, session: aiohttp.ClientSession, urls: list[str]) -> None:
        self.session = session
        self.urls = urls
        self.headers = {"X-Client-Token": CLIENT_TOKEN}

    async def _request(
        self, method: str, path: str, *, body: Any = None, prefer: int = 0, timeout: float = 30.0
    ) -> tuple[int, Any]:
        deadline = time.monotonic() + timeout
        attempt = 0
        while True:
            url = self.urls[(prefer + attempt) % len(self.urls)]
            attempt += 1
            try:
                async with self.session.request(
                    method,
                    url + path,
                    json=body,
                    headers=self.headers,
                    timeout=aiohttp.ClientTimeout(total=10),
                ) as resp:
                    if resp.status < 500:
                        return resp.status, await resp.json()
            except (aiohttp.ClientError, TimeoutError):
                pass
            if time.monotonic() > deadline:
                raise Unavailable(f"{method} {path}: no instance answered within {timeout}s")
            await asyncio.sleep(min(0.05 * attempt, 0.5) * random.uniform(0.5, 1.0))

    async def create(self, path: str, initial_data: dict[str, Any], prefer: int = 0) -> tuple[str, float]:
        """Create a job; returns its id and when (``time.monotonic()``) it was acknowledged."""
        status, body = await self._request("POST", path, body={"initial_data": initial_data}, prefer=prefer)
        assert status == 202, (status, body)
        return str(body["job_id"]), time.monotonic()

    async def get(self, job_id: str, prefer: int = 0) -> dict[str, Any] | None:
        """The job's document, or None when no instance knows it (404)."""
        status, body = await self._request("GET", f"/api/v1/jobs/{job_id}", prefer=prefer)
        if status == 404:
            return None
        assert status == 200, (status, body)
        doc: dict[str, Any] = body
        return doc

    async def workers(self) -> list[dict[str, Any]]:
        status, body = await self._request("GET", "/api/v1/workers")
        assert status == 200, (status, body)
        found: list[dict[str, Any]] = body
        return found

    async def all_jobs(self) -> list[dict[str, Any]]:
        """Every job of our client, children included (paged)."""
        found: list[dict[str, Any]] = []
        while True:
            status, page = await self._request("GET", f"/api/v1/jobs?limit=1000&offset={len(found)}")
            assert status == 200, (status, page)
            found.extend(page)
            if len(page) < 1000:
                return found

    async def wait_terminal(
        self, job_ids: Iterable[str], timeout: float, concurrency: int = 32
    ) -> dict[str, dict[str, Any] | None]:
        """Poll until every job is terminal (or unknown: None); raises with the stragglers."""
        pending = list(dict.fromkeys(job_ids))
        done: dict[str, dict[str, Any] | None] = {}
        deadline = time.monotonic() + timeout
        gate = asyncio.Semaphore(concurrency)

        async def check(index: int, job_id: str) -> None:
            async with gate:
                doc = await self.get(job_id, prefer=index)
            if doc is None or doc["status"] in TERMINAL:
                done[job_id] = doc

        while True:
            await asyncio.gather(*(check(i, job_id) for i, job_id in enumerate(pending)))
            pending = [job_id for job_id in pending if job_id not in done]
            if not pending:
                return done
            if time.monotonic() > deadline:
                sample = [await self.get(job_id) for job_id in pending[:3]]
                raise AssertionError(f"{len(pending)} job(s) not terminal after {timeout}s, e.g. {sample}")
            await asyncio.sleep(0.25)


class HeldLoad:
    """What a busy instance holds open when it is told to stop: long-polls that wait for tasks
    (for worker ids no instance knows, as a misconfigured or departed worker would send) and
    workers' WebSocket command channels. Records how each one ended."""

    def __init__(self, session: aiohttp.ClientSession, url: str) -> None:
        self.session = session
        self.url = url
        self.headers = {"X-Worker-Token": WORKER_TOKEN}
        self.polls: list[asyncio.Task[int | str]] = []
        self.sockets: list[asyncio.Task[int | str]] = []
        self._connected: list[asyncio.Event] = []

    def hold_polls(self, worker_ids: Iterable[str]) -> None:
        """Start one long-poll per id; each task ends with the HTTP status or the error's name."""
        self.polls += [asyncio.create_task(self._poll(worker_id)) for worker_id in worker_ids]

    async def open_sockets(self, worker_ids: Iterable[str], timeout: float = 10.0) -> None:
        """Connect one command channel per id; each task ends with the close code or an error."""
        for worker_id in worker_ids:
            connected = asyncio.Event()
            self._connected.append(connected)
            self.sockets.append(asyncio.create_task(self._socket(worker_id, connected)))
        async with asyncio.timeout(timeout):
            await asyncio.gather(*(event.wait() for event in self._connected))

    async def outcomes(self, timeout: float) -> tuple[list[int | str], list[int | str]]:
        """How every poll and socket ended (a poll or socket still open after ``timeout``: "open")."""
        tasks = [*self.polls, *self.sockets]
        await asyncio.wait(tasks, timeout=timeout)
        ended = [task.result() if task.done() else "open" for task in tasks]
        for task in tasks:
            task.cancel()
        return ended[: len(self.polls)], ended[len(self.polls) :]

    async def _poll(self, worker_id: str) -> int | str:
        path = f"{self.url}/_worker/workers/{quote(worker_id, safe='')}/tasks/next"
        try:
            async with self.session.get(
                path, headers=self.headers, timeout=aiohttp.ClientTimeout(total=120)
            ) as resp:
                await resp.read()
                return resp.status
        except (aiohttp.ClientError, TimeoutError) as exc:
            return type(exc).__name__

    async def _socket(self, worker_id: str, connected: asyncio.Event) -> int | str:
        try:
            async with self.session.ws_connect(
                f"{self.url}/_worker/ws/{quote(worker_id, safe='')}", headers=self.headers
            ) as ws:
                connected.set()
                async for _ in ws:
                    pass
                return ws.close_code if ws.close_code is not None else "no close code"
        except (aiohttp.ClientError, TimeoutError) as exc:
            connected.set()
            return type(exc).__name__


async def assert_finished_once(jobs: "JobClient", job_ids: list[str], run_log: Path, timeout: float) -> None:
    """Every job finished, and each one's task ran exactly once (the skill logs a line per run)."""
    docs = await jobs.wait_terminal(job_ids, timeout=timeout)
    unfinished = {
        job_id: doc and doc["status"]
        for job_id, doc in docs.items()
        if not doc or doc["status"] != "finished"
    }
    assert not unfinished, unfinished
    runs = collections.Counter((await asyncio.to_thread(run_log.read_text)).split())
    assert set(runs) == set(job_ids), "every job's task ran"
    twice = {job_id: count for job_id, count in runs.items() if count > 1}
    assert not twice, f"{len(twice)} task(s) ran more than once: {twice}"
