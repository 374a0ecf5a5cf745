"""The ``avtomatika`` command line."""

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
