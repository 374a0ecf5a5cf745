import asyncio
import os
import signal
import sys
import textwrap
import uuid
from pathlib import Path

import pytest
from click.testing import CliRunner

from avtomatika.errors import ConfigError
from avtomatika.storage import StorageBackend
from avtomatika.worker import Worker
from avtomatika.worker.cli import load_worker, run_worker, worker_command
from tests.conftest import WORKER_TOKEN, OrchestratorFactory

from .fake_orchestrator import TOKEN, FakeOrchestrator, eventually

WORKER_MODULE = """
from avtomatika.worker import Worker

worker = Worker.from_env(heartbeat_interval=0.2, poll_timeout=1.0, websocket=False)
not_a_worker = 42


@worker.skill("echo")
async def echo(params):
    return params
"""


@pytest.fixture
def module_name(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> str:
    """A worker module in a fresh current directory, as a user would have it."""
    name = f"my_worker_{uuid.uuid4().hex}"
    (tmp_path / f"{name}.py").write_text(textwrap.dedent(WORKER_MODULE))
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("AVTOMATIKA_URL", "http://127.0.0.1:9")
    monkeypatch.setenv("AVTOMATIKA_WORKER_TOKEN", TOKEN)
    return name


def test_load_worker_imports_from_the_current_directory(module_name: str) -> None:
    worker = load_worker(f"{module_name}:worker")
    assert isinstance(worker, Worker)


@pytest.mark.parametrize(
    ("target", "message"),
    [
        ("no_colon", "must look like 'module:attribute'"),
        ("{module}:", "must look like 'module:attribute'"),
        ("missing_module_xyz:worker", "cannot import module 'missing_module_xyz'"),
        ("{module}:absent", "found nothing"),
        ("{module}:not_a_worker", "found a int"),
    ],
)
def test_load_worker_says_what_is_wrong(module_name: str, target: str, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        load_worker(target.format(module=module_name))


def test_run_worker_runs_the_named_worker(module_name: str, monkeypatch: pytest.MonkeyPatch) -> None:
    ran: list[str] = []
    monkeypatch.setattr(Worker, "run", lambda self: ran.append(self.worker_id))
    run_worker(f"{module_name}:worker")
    assert len(ran) == 1


def test_the_command_reports_a_bad_target_as_a_usage_error(module_name: str) -> None:
    result = CliRunner().invoke(worker_command, [f"{module_name}:not_a_worker"])
    assert result.exit_code == 1
    assert "must name an avtomatika.worker.Worker instance" in result.output


def test_the_main_cli_offers_the_worker_command() -> None:
    from avtomatika.cli.main import main

    result = CliRunner().invoke(main, ["worker", "--help"])
    assert result.exit_code == 0
    assert "module:attribute" in result.output


async def test_the_command_runs_a_worker_until_sigterm(
    fake_orchestrator: FakeOrchestrator, tmp_path: Path
) -> None:
    (tmp_path / "cli_worker.py").write_text(textwrap.dedent(WORKER_MODULE))
    env = os.environ | {
        "AVTOMATIKA_URL": fake_orchestrator.url,
        "AVTOMATIKA_WORKER_TOKEN": TOKEN,
        "AVTOMATIKA_WORKER_ID": "cli-worker",
    }
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "avtomatika", "worker", "cli_worker:worker", cwd=tmp_path, env=env
    )
    try:
        await eventually(lambda: fake_orchestrator.heartbeats, within=20)
        task_id = fake_orchestrator.queue_task("echo", {"hello": "world"})
        await eventually(lambda: fake_orchestrator.result_for(task_id), within=10)
        process.send_signal(signal.SIGTERM)
        assert await asyncio.wait_for(process.wait(), 10) == 0
    finally:
        if process.returncode is None:
            process.kill()
            await process.wait()
    result = fake_orchestrator.result_for(task_id)
    assert result is not None
    assert result["data"] == {"hello": "world"}
    assert fake_orchestrator.registrations[0]["worker_id"] == "cli-worker"
    assert fake_orchestrator.heartbeats[-1]["status"] == "offline"


async def test_the_command_runs_on_the_sdk_variable_names_against_the_orchestrator(
    orchestrator: OrchestratorFactory, tmp_path: Path
) -> None:
    (tmp_path / "sdk_env_worker.py").write_text(textwrap.dedent(WORKER_MODULE))
    async with orchestrator() as orch:
        env = without_worker_env() | {
            "ORCHESTRATOR_URL": orch.url,
            "WORKER_TOKEN": WORKER_TOKEN,
            "WORKER_ID": "sdk-named",
            "MAX_CONCURRENT_TASKS": "3",
        }
        process = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "avtomatika", "worker", "sdk_env_worker:worker", cwd=tmp_path, env=env
        )
        try:
            storage = orch.engine.storage
            await until_registered(storage, "sdk-named", within=20)
            process.send_signal(signal.SIGTERM)
            assert await asyncio.wait_for(process.wait(), 10) == 0
        finally:
            if process.returncode is None:
                process.kill()
                await process.wait()
        record = await storage.get_worker("sdk-named")
        assert record is not None
        assert record.resources.max_concurrent_tasks == 3


async def test_a_refused_token_is_one_line(orchestrator: OrchestratorFactory, tmp_path: Path) -> None:
    (tmp_path / "bad_token_worker.py").write_text(textwrap.dedent(WORKER_MODULE))
    async with orchestrator() as orch:
        env = without_worker_env() | {"ORCHESTRATOR_URL": orch.url, "WORKER_TOKEN": "wrong-token"}
        process = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "avtomatika",
            "worker",
            "bad_token_worker:worker",
            cwd=tmp_path,
            env=env,
            stderr=asyncio.subprocess.PIPE,
        )
        _, stderr = await asyncio.wait_for(process.communicate(), 30)
    text = stderr.decode()
    assert process.returncode != 0
    assert "Traceback" not in text
    lines = text.strip().splitlines()
    assert len(lines) == 1, text
    assert "HTTP 401" in lines[0]
    assert "check the worker token" in lines[0]


async def until_registered(storage: StorageBackend, worker_id: str, within: float) -> None:
    deadline = asyncio.get_running_loop().time() + within
    while await storage.get_worker(worker_id) is None:
        assert asyncio.get_running_loop().time() < deadline, f"{worker_id} did not register within {within}s"
        await asyncio.sleep(0.05)


def without_worker_env() -> dict[str, str]:
    names = {
        "AVTOMATIKA_URL",
        "AVTOMATIKA_WORKER_TOKEN",
        "AVTOMATIKA_WORKER_ID",
        "AVTOMATIKA_MAX_CONCURRENT_TASKS",
    }
    return {k: v for k, v in os.environ.items() if k not in names}


async def test_sigterm_stops_a_worker_still_waiting_to_register(tmp_path: Path) -> None:
    (tmp_path / "unreachable_worker.py").write_text(textwrap.dedent(WORKER_MODULE))
    env = without_worker_env() | {"ORCHESTRATOR_URL": "http://127.0.0.1:9", "WORKER_TOKEN": TOKEN}
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "avtomatika",
        "worker",
        "unreachable_worker:worker",
        cwd=tmp_path,
        env=env,
        stderr=asyncio.subprocess.PIPE,
    )
    try:
        assert process.stderr is not None
        assert b"registration not delivered" in await asyncio.wait_for(process.stderr.readline(), 20)
        process.send_signal(signal.SIGTERM)
        assert await asyncio.wait_for(process.wait(), 10) == 0
    finally:
        if process.returncode is None:
            process.kill()
            await process.wait()
