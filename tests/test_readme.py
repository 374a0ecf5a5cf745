"""The README's blueprint example registers as written; CI runs the README's test command."""

import logging
import re
from pathlib import Path

import pytest

from avtomatika import OrchestratorEngine
from avtomatika.storage import MemoryStorage
from tests.conftest import make_config

ROOT = Path(__file__).resolve().parents[1]
README = ROOT / "README.md"


def test_readme_blueprint_example_validates(caplog: pytest.LogCaptureFixture) -> None:
    blocks = re.findall(r"```python\n(.*?)```", README.read_text(), flags=re.S)
    example = next(b for b in blocks if 'Blueprint("video"' in b)
    caplog.set_level(logging.WARNING, "avtomatika")
    namespace: dict[str, object] = {}
    exec(compile(example, "README.md", "exec"), namespace)
    engine = OrchestratorEngine(MemoryStorage(), make_config())
    engine.register_blueprint(namespace["bp"])  # type: ignore[arg-type]
    assert engine.blueprints["video"].start_state == "triage"
    assert caplog.records == []  # registration found nothing to warn about


def test_ci_runs_exactly_the_readmes_test_command() -> None:
    readme_commands = [
        line for line in README.read_text().splitlines() if line.startswith('pip install -e ".[all,test]"')
    ]
    assert len(set(readme_commands)) == 1, readme_commands
    assert (ROOT / ".ci" / "run").read_text().rstrip().splitlines()[-1] == readme_commands[0]


def test_every_test_the_readme_names_as_proof_exists() -> None:
    development = README.read_text().split("## Development", 1)[1]
    rows = [line for line in development.splitlines() if line.startswith("| ") and "`tests/" in line]
    assert len(rows) >= 10
    for row in rows:
        for ref in re.findall(r"`(tests/[^`]+)`", row):
            path, _, function = ref.partition("::")
            assert (ROOT / path).is_file(), ref
            if function:
                assert re.search(rf"^(async )?def {function}\(", (ROOT / path).read_text(), re.M), ref
