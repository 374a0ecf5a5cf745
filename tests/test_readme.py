"""The README's blueprint example registers as written."""

import logging
import re
from pathlib import Path

import pytest

from avtomatika import OrchestratorEngine
from avtomatika.storage import MemoryStorage
from tests.conftest import make_config

README = Path(__file__).resolve().parents[1] / "README.md"


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
