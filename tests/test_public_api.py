"""The public API is a tested artefact: exactly the seed README's names, nothing leaked."""

import avtomatika
from avtomatika import app_keys
from avtomatika.config import Config
from avtomatika.context import ActionFactory
from avtomatika.storage import MemoryStorage, StorageBackend


def test_all_is_pinned() -> None:
    assert sorted(avtomatika.__all__) == [
        "ActionFactory",
        "Blueprint",
        "JobContext",
        "OrchestratorEngine",
        "RedisStorage",
        "StorageBackend",
        "__version__",
    ]


def test_seed_imports_resolve() -> None:
    assert avtomatika.ActionFactory is ActionFactory
    assert issubclass(MemoryStorage, StorageBackend)
    assert isinstance(Config(environ={}), Config)
    assert app_keys.ENGINE_KEY is not None
    assert app_keys.DISPATCHER_KEY is not None


def test_config_reads_and_validates_the_environment() -> None:
    config = Config(environ={"API_PORT": "9000", "ENABLE_CLIENT_API": "false", "JOB_MAX_RETRIES": "7"})
    assert (config.API_PORT, config.ENABLE_CLIENT_API, config.JOB_MAX_RETRIES) == (9000, False, 7)


def test_config_errors_name_the_variable() -> None:
    import pytest

    from avtomatika.errors import ConfigError

    with pytest.raises(ConfigError, match="API_PORT"):
        Config(environ={"API_PORT": "eighty"})
    with pytest.raises(ConfigError, match="ENABLE_CLIENT_API"):
        Config(environ={"ENABLE_CLIENT_API": "maybe"})
    config = Config(environ={"WORKER_SIGNATURE_POLICY": "sometimes"})
    with pytest.raises(ConfigError, match="WORKER_SIGNATURE_POLICY"):
        config.validate()


def test_published_import_paths_resolve() -> None:
    """api.md §1: the published module paths keep their names (thin re-exports)."""
    from avtomatika.blueprint_loader import load_blueprints_from_dir
    from avtomatika.data_types import ClientConfig, JobContext, WorkerInfo
    from avtomatika.datastore import AsyncDictStore
    from avtomatika.storage.base import StorageBackend as Base
    from avtomatika.storage.memory import MemoryStorage as Memory
    from avtomatika.storage.redis import RedisStorage

    assert callable(load_blueprints_from_dir)
    assert JobContext._fields[0] == "job_id"
    assert ClientConfig is not WorkerInfo
    assert AsyncDictStore().__class__.__name__ == "AsyncDictStore"
    assert Base is StorageBackend
    assert Memory is MemoryStorage
    assert avtomatika.RedisStorage is RedisStorage
    assert avtomatika.JobContext is JobContext


def test_importing_the_worker_loads_no_server_engine_or_storage() -> None:
    """A worker process must not pay for (or depend on) the orchestrator's code."""
    import subprocess
    import sys

    probe = (
        "import sys, avtomatika.worker\n"
        "loaded = [m for m in sys.modules if m.startswith(('avtomatika.server', 'avtomatika.engine',"
        " 'avtomatika.storage', 'avtomatika.blueprints', 'aiohttp.web'))]\n"
        "print(','.join(sorted(loaded)))\n"
    )
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == ""
