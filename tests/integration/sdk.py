"""Starts and stops published-SDK worker processes for integration tests (killed by PID only)."""

import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from tests.conftest import WORKER_TOKEN

APP = Path(__file__).with_name("sdk_worker_app.py")


@contextmanager
def sdk_worker(
    url: str, worker_id: str, *, concurrency: int = 4, **env: str
) -> Iterator[subprocess.Popen[bytes]]:
    environ = {
        **os.environ,
        "ORCHESTRATOR_URL": url,
        "WORKER_ID": worker_id,
        "WORKER_TOKEN": WORKER_TOKEN,
        "MAX_CONCURRENT_TASKS": str(concurrency),
        "HEARTBEAT_INTERVAL": "1",
        "TASK_POLL_TIMEOUT": "5",
        "LOG_LEVEL": "WARNING",
        **env,
    }
    proc = subprocess.Popen(
        [sys.executable, str(APP)], env=environ, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE
    )
    try:
        yield proc
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        if proc.stderr is not None:
            proc.stderr.close()
