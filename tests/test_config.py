"""Settings read from the environment, their declarations against the README, and the checks
made when the engine starts."""

from pathlib import Path
from typing import Any

import pytest

from avtomatika.config import SETTINGS, Config
from avtomatika.errors import ConfigError

README = Path(__file__).resolve().parents[1] / "README.md"


def _shown(value: Any) -> str:
    """A default as the README writes it: ``true``, ``60`` for 60.0, an empty cell for ``""``."""
    if isinstance(value, bool):
        return "`true`" if value else "`false`"
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    return f"`{value}`" if value != "" else ""


def _readme_rows() -> list[tuple[str, str, str]]:
    section = README.read_text(encoding="utf-8").split("\n## Configuration\n", 1)[1].split("\n## ", 1)[0]
    rows = [line for line in section.splitlines() if line.startswith("| `")]
    cells = [[cell.strip() for cell in row.strip().strip("|").split("|")] for row in rows]
    return [(name.strip("`"), default, meaning) for name, default, meaning in cells]


def test_readme_table_shows_every_setting_with_its_declared_default_and_doc() -> None:
    declared = [(s.name, _shown(s.default), s.doc) for s in SETTINGS]
    assert _readme_rows() == declared


def test_every_setting_is_read_from_the_environment_with_its_type() -> None:
    samples = {str: "text", int: "7", float: "2.5", bool: "false"}
    environ = {s.name: samples[s.kind] for s in SETTINGS}
    config = Config(environ=environ)
    for setting in SETTINGS:
        expected = setting.parse(samples[setting.kind])
        assert getattr(config, setting.name) == (
            expected.upper() if setting.name == "LOG_LEVEL" else expected
        )
        assert type(getattr(config, setting.name)) is setting.kind


def test_defaults_apply_when_the_environment_is_empty() -> None:
    config = Config(environ={})
    assert (config.API_PORT, config.ENABLE_CLIENT_API, config.STORAGE_BACKEND) == (8080, True, "memory")
    assert config.INSTANCE_ID, "an unset INSTANCE_ID is made from the host name and PID"
    assert Config.API_PORT.name == "API_PORT"


def test_attributes_may_be_reassigned_after_construction() -> None:
    config = Config(environ={})
    config.CLIENT_TOKEN = "my-secret-client-token"
    assert config.CLIENT_TOKEN == "my-secret-client-token"
    assert Config(environ={}).CLIENT_TOKEN == "secure-orchestrator-token"


@pytest.mark.parametrize(
    ("raw", "value"), [("true", True), ("Yes", True), ("1", True), ("off", False), ("", False)]
)
def test_booleans_accept_the_usual_spellings(raw: str, value: bool) -> None:
    assert Config(environ={"WORK_STEALING_ENABLED": raw}).WORK_STEALING_ENABLED is value


def test_idempotency_key_ttl_is_read_and_must_be_positive() -> None:
    assert Config(environ={}).IDEMPOTENCY_KEY_TTL_SECONDS == 86400
    assert Config(environ={"IDEMPOTENCY_KEY_TTL_SECONDS": "3600"}).IDEMPOTENCY_KEY_TTL_SECONDS == 3600
    with pytest.raises(ConfigError, match="IDEMPOTENCY_KEY_TTL_SECONDS"):
        Config(environ={"IDEMPOTENCY_KEY_TTL_SECONDS": "0"}).validate()


def test_small_settings_are_grouped_for_the_parts_that_use_them() -> None:
    config = Config(environ={"REPUTATION_REWARD_SUCCESS": "0", "TASK_RETRY_MAX_DELAY_SECONDS": "9"})
    assert config.reputation.reward_success == 0
    assert config.retry_policy.max_delay == 9
    assert Config(environ={"REDIS_HOST": "h"}).redis_url == "redis://h:6379/0"
