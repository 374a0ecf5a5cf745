from typing import Any

import pytest

from avtomatika.errors import ConfigError
from avtomatika.worker import Worker


def test_from_env_reads_the_documented_variables() -> None:
    worker = Worker.from_env(
        {
            "AVTOMATIKA_URL": "http://127.0.0.1:9",
            "AVTOMATIKA_WORKER_TOKEN": "t",
            "AVTOMATIKA_WORKER_ID": "gpu-1",
            "AVTOMATIKA_MAX_CONCURRENT_TASKS": "4",
        },
        heartbeat_interval=1.0,
    )
    assert (worker.worker_id, worker.settings.max_concurrent_tasks) == ("gpu-1", 4)
    assert (worker.settings.token, worker.settings.heartbeat_interval) == ("t", 1.0)


def test_from_env_reads_the_sdk_names_too() -> None:
    worker = Worker.from_env(
        {
            "ORCHESTRATOR_URL": "http://127.0.0.1:9",
            "WORKER_TOKEN": "t",
            "WORKER_ID": "sdk-1",
            "MAX_CONCURRENT_TASKS": "3",
        }
    )
    settings = worker.settings
    assert (settings.orchestrator_url, settings.token, worker.worker_id) == (
        "http://127.0.0.1:9",
        "t",
        "sdk-1",
    )
    assert settings.max_concurrent_tasks == 3


def test_our_names_win_over_the_sdk_names() -> None:
    env = {
        "AVTOMATIKA_URL": "http://ours:1",
        "ORCHESTRATOR_URL": "http://sdk:1",
        "AVTOMATIKA_WORKER_TOKEN": "ours",
        "WORKER_TOKEN": "sdk",
        "AVTOMATIKA_WORKER_ID": "ours",
        "WORKER_ID": "sdk",
        "AVTOMATIKA_MAX_CONCURRENT_TASKS": "2",
        "MAX_CONCURRENT_TASKS": "5",
    }
    worker = Worker.from_env(env)
    assert (worker.settings.orchestrator_url, worker.settings.token, worker.worker_id) == (
        "http://ours:1",
        "ours",
        "ours",
    )
    assert worker.settings.max_concurrent_tasks == 2


def test_the_sdk_individual_token_wins_over_its_shared_one() -> None:
    env = {"ORCHESTRATOR_URL": "http://h", "WORKER_TOKEN": "shared", "WORKER_INDIVIDUAL_TOKEN": "own"}
    assert Worker.from_env(env).settings.token == "own"


def test_from_env_defaults_and_overrides() -> None:
    env = {"AVTOMATIKA_URL": "http://127.0.0.1:9", "AVTOMATIKA_WORKER_TOKEN": "t"}
    worker = Worker.from_env(env)
    assert worker.worker_id.startswith("worker-")
    assert worker.settings.max_concurrent_tasks == 10
    assert Worker.from_env(env, worker_id="explicit").worker_id == "explicit"


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({}, "AVTOMATIKA_URL or ORCHESTRATOR_URL; AVTOMATIKA_WORKER_TOKEN or WORKER_INDIVIDUAL_TOKEN"),
        (
            {"ORCHESTRATOR_URL": "http://h", "WORKER_TOKEN": "t", "MAX_CONCURRENT_TASKS": "x"},
            "MAX_CONCURRENT_TASKS",
        ),
        (
            {
                "AVTOMATIKA_URL": "http://h",
                "AVTOMATIKA_WORKER_TOKEN": "t",
                "AVTOMATIKA_MAX_CONCURRENT_TASKS": "x",
            },
            "x",
        ),
    ],
)
def test_from_env_names_what_is_wrong(env: dict[str, str], message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        Worker.from_env(env)


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"worker_id": "bad id!"}, "worker_id 'bad id!'"),
        ({"max_concurrent_tasks": 0}, "max_concurrent_tasks"),
        ({"heartbeat_interval": 0}, "heartbeat_interval"),
        ({"orchestrator_url": "127.0.0.1:8080"}, "orchestrator_url"),
        ({"token": ""}, "token"),
    ],
)
def test_invalid_settings_are_refused_at_construction(options: dict[str, Any], message: str) -> None:
    arguments: dict[str, Any] = {"orchestrator_url": "http://127.0.0.1:9", "token": "t"} | options
    with pytest.raises(ConfigError, match=message):
        Worker(**arguments)
