"""Starts and stops published-SDK worker processes for integration tests (killed by PID only).

Stopping waits asynchronously: the SDK's farewell heartbeat goes to an orchestrator that
runs in the test's own event loop, which must keep running meanwhile.
"""

import asyncio
import os
import signal
import subprocess
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

from tests.conftest import WORKER_TOKEN

APP = Path(__file__).with_name("sdk_worker_app.py")


@asynccontextmanager
async def sdk_worker(
    url: str, worker_id: str, *, concurrency: int = 4, **env: str
) -> AsyncIterator[subprocess.Popen[bytes]]:
    environ = {
        **os.environ,
        "ORCHESTRATOR_URL": url,
        "WORKER_ID": worker_id,
        "WORKER_TOKEN": WORKER_TOKEN,
        "MAX_CONCURRENT_TASKS": str(concurrency),
        "HEARTBEAT_INTERVAL": "1",
        "TASK_POLL_TIMEOUT": "5",
        **env,
    }
    proc = subprocess.Popen(  # noqa: ASYNC220 - starting a process does not block
        [sys.executable, str(APP)], env=environ, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    try:
        yield proc
    finally:
        await stop(proc)


async def stop(proc: subprocess.Popen[bytes], timeout: float = 10.0) -> None:
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
    for _ in range(int(timeout / 0.05)):
        if proc.poll() is not None:
            return
        await asyncio.sleep(0.05)
    proc.kill()
    proc.wait()
