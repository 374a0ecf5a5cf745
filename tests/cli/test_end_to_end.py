"""``avtomatika demo`` and ``avtomatika serve`` with ``BLUEPRINTS_DIR``, each as a real process."""

import asyncio
import os
import re
import signal
import subprocess
import sys
from pathlib import Path

import aiohttp

from tests.conftest import free_port

ROOT = Path(__file__).resolve().parents[2]

# Two blueprint modules (one names its blueprint other than ``bp``), a module with no blueprint,
# and an __init__.py the loader skips.
BLUEPRINT_FILES = {
    "ingest.py": (
        "from avtomatika import Blueprint\n"
        "bp = Blueprint('ingest', api_version='v1', api_endpoint='/jobs/ingest')\n"
        "@bp.handler(is_start=True)\n"
        "async def start(initial_data, state_history, actions):\n"
        "    state_history['label'] = initial_data['name'].upper()\n"
        "    actions.go_to('stored')\n"
        "@bp.handler(is_end=True)\n"
        "async def stored():\n"
        "    pass\n"
    ),
    "review.py": (
        "from avtomatika import Blueprint\n"
        "review = Blueprint('review', api_version='v1', api_endpoint='/jobs/review')\n"
        "@review.handler('check', is_start=True).when('context.initial_data.score >= 5')\n"
        "async def check_pass(actions):\n"
        "    actions.go_to('approved')\n"
        "@review.handler('check', is_start=True)\n"
        "async def check(actions):\n"
        "    actions.go_to('rejected')\n"
        "@review.handler(is_end=True)\n"
        "async def approved():\n"
        "    pass\n"
        "@review.handler(is_end=True)\n"
        "async def rejected():\n"
        "    pass\n"
    ),
    "helpers.py": "LABELS = ('a', 'b')\n",
    "__init__.py": "raise RuntimeError('the loader must not import __init__.py')\n",
}
CLIENT = {"X-Client-Token": "e2e-client"}
TERMINAL = {"finished", "failed", "quarantined", "cancelled"}


def test_demo_runs_every_job_to_its_end() -> None:
    """The README's ``avtomatika demo``, as is: three dozen jobs, all finished, exit status 0."""
    result = subprocess.run(
        [sys.executable, "-m", "avtomatika", "demo"],
        cwd=ROOT,
        env={**os.environ, "COLUMNS": "120"},
        capture_output=True,
        text=True,
        timeout=90,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    ended = re.findall(r"│ (\w+) +│ (\w+) +│ +(\d+) │", result.stdout)
    assert ended == [("finished", "published", "36")], result.stdout
    lanes = dict(re.findall(r"│ (urgent|standard) +│ +(\d+) │", result.stdout))
    assert lanes == {"urgent": "9", "standard": "27"}, result.stdout


async def wait_until_up(session: aiohttp.ClientSession, url: str, proc: asyncio.subprocess.Process) -> None:
    for _ in range(300):
        assert proc.returncode is None, "avtomatika serve exited before it answered"
        try:
            async with session.get(f"{url}/_public/status") as resp:
                if resp.status == 200:
                    return
        except aiohttp.ClientError:
            pass
        await asyncio.sleep(0.05)
    raise AssertionError("avtomatika serve did not answer /_public/status")


async def run_job(session: aiohttp.ClientSession, url: str, endpoint: str, data: dict[str, object]) -> dict:
    async with session.post(f"{url}/api/v1{endpoint}", json={"initial_data": data}, headers=CLIENT) as resp:
        assert resp.status == 202, await resp.text()
        job_id = (await resp.json())["job_id"]
    for _ in range(200):
        async with session.get(f"{url}/api/v1/jobs/{job_id}", headers=CLIENT) as resp:
            doc: dict = await resp.json()
        if doc["status"] in TERMINAL:
            return doc
        await asyncio.sleep(0.05)
    raise AssertionError(f"job {job_id} did not end: {doc}")


async def test_serve_registers_blueprints_dir_and_runs_their_jobs(tmp_path: Path) -> None:
    blueprints = tmp_path / "blueprints"
    blueprints.mkdir()
    for name, text in BLUEPRINT_FILES.items():
        (blueprints / name).write_text(text)
    port = free_port()
    env = {
        **os.environ,
        "BLUEPRINTS_DIR": str(blueprints),
        "STORAGE_BACKEND": "memory",
        "CLIENT_TOKEN": CLIENT["X-Client-Token"],
        "GLOBAL_WORKER_TOKEN": "e2e-worker",
        "LOG_LEVEL": "WARNING",
    }
    proc = await asyncio.create_subprocess_exec(
        *(sys.executable, "-m", "avtomatika", "serve", "--host", "127.0.0.1", "--port", str(port)),
        cwd=tmp_path,
        env=env,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        async with aiohttp.ClientSession() as session:
            await wait_until_up(session, url, proc)
            for name in ("ingest", "review"):
                async with session.get(f"{url}/api/v1/blueprints/{name}/graph", headers=CLIENT) as resp:
                    assert resp.status == 200, await resp.text()
                    assert "digraph" in await resp.text()
            ingested = await run_job(session, url, "/jobs/ingest", {"name": "clip"})
            passed = await run_job(session, url, "/jobs/review", {"score": 7})
            failed = await run_job(session, url, "/jobs/review", {"score": 2})
    finally:
        if proc.returncode is None:
            proc.send_signal(signal.SIGTERM)
        output, _ = await asyncio.wait_for(proc.communicate(), timeout=30)
    assert (ingested["status"], ingested["current_state"]) == ("finished", "stored")
    assert ingested["state_history"]["label"] == "CLIP"
    assert (passed["status"], passed["current_state"]) == ("finished", "approved")
    assert (failed["status"], failed["current_state"]) == ("finished", "rejected")
    assert proc.returncode == 0, output.decode()
