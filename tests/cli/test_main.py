"""The ``avtomatika`` command line."""

import os
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

from avtomatika.cli.main import main
from avtomatika.config import Config
from avtomatika.errors import ConfigError
from avtomatika.storage import MemoryStorage
from avtomatika.storage.factory import storage_from_config

FLOWS = (
    "from avtomatika import Blueprint\n"
    "bp = Blueprint('flow')\n"
    "@bp.handler(is_start=True)\n"
    "async def start(actions):\n"
    "    actions.go_to('end')\n"
    "@bp.handler(is_end=True)\n"
    "async def end():\n"
    "    pass\n"
)


def test_graph_prints_dot(tmp_path: Path) -> None:
    runner = CliRunner()
    with runner.isolated_filesystem(temp_dir=tmp_path):
        Path("flows.py").write_text(FLOWS)
        result = runner.invoke(main, ["graph", "flows:bp"])
    assert result.exit_code == 0, result.output
    assert "digraph" in result.output
    assert "start" in result.output


def test_graph_rejects_a_bad_target() -> None:
    result = CliRunner().invoke(main, ["graph", "no_colon"])
    assert result.exit_code != 0
    assert "module:attribute" in result.output


def test_storage_choice_from_config() -> None:
    assert isinstance(storage_from_config(Config(environ={})), MemoryStorage)
    with pytest.raises(ConfigError, match="REDIS_URL"):
        storage_from_config(Config(environ={"STORAGE_BACKEND": "redis"}))
    with pytest.raises(ConfigError, match="etcd"):
        storage_from_config(Config(environ={"STORAGE_BACKEND": "etcd"}))


# A meta-path finder that makes 'redis' look uninstalled, then the CLI as `python -m avtomatika` runs it.
WITHOUT_REDIS = """
import importlib.abc, sys

class NoRedis(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path, target=None):
        if name.partition('.')[0] == 'redis':
            raise ModuleNotFoundError(f"No module named {name!r}", name=name)
        return None

sys.meta_path.insert(0, NoRedis())
sys.argv = ['avtomatika', *sys.argv[1:]]
from avtomatika.cli.main import main
main()
"""


def run_cli(
    tmp_path: Path, *args: str, code: str | None = None, **env: str
) -> subprocess.CompletedProcess[str]:
    """The command in a fresh process, from an empty directory, with only ``env`` configuring it."""
    environ = {k: v for k, v in os.environ.items() if k not in ("BLUEPRINTS_DIR", "STORAGE_BACKEND")}
    command = [sys.executable, "-c", code, *args] if code else [sys.executable, "-m", "avtomatika", *args]
    return subprocess.run(
        command, cwd=tmp_path, env=environ | env, capture_output=True, text=True, timeout=60, check=False
    )


def assert_one_line_error(result: subprocess.CompletedProcess[str], *fragments: str) -> None:
    assert result.returncode != 0
    assert "Traceback" not in result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    for fragment in fragments:
        assert fragment in lines[0]


@pytest.mark.parametrize("command", ["serve", "graph"])
def test_a_missing_module_is_one_line_naming_it(tmp_path: Path, command: str) -> None:
    assert_one_line_error(run_cli(tmp_path, command, "nomodule:x"), "cannot import module 'nomodule'")


def test_a_target_of_the_wrong_kind_is_one_line(tmp_path: Path) -> None:
    (tmp_path / "flows.py").write_text(FLOWS)
    assert_one_line_error(
        run_cli(tmp_path, "serve", "flows:bp"), "'flows:bp' must name an OrchestratorEngine"
    )


def test_serve_without_blueprints_refuses_to_start(tmp_path: Path) -> None:
    assert_one_line_error(run_cli(tmp_path, "serve"), "nothing to serve", "BLUEPRINTS_DIR", "module:engine")


def test_redis_storage_without_the_extra_names_the_extra(tmp_path: Path) -> None:
    result = run_cli(
        tmp_path,
        "serve",
        code=WITHOUT_REDIS,
        STORAGE_BACKEND="redis",
        REDIS_URL="redis://127.0.0.1:6379/0",
        BLUEPRINTS_DIR=str(tmp_path),
    )
    assert_one_line_error(result, "pip install 'avtomatika[redis]'")
