"""Settings read from the environment, and the checks made when the engine starts."""

import pytest

from avtomatika.config import Config
from avtomatika.errors import ConfigError


def test_idempotency_key_ttl_is_read_and_must_be_positive() -> None:
    assert Config(environ={}).IDEMPOTENCY_KEY_TTL_SECONDS == 86400
    assert Config(environ={"IDEMPOTENCY_KEY_TTL_SECONDS": "3600"}).IDEMPOTENCY_KEY_TTL_SECONDS == 3600
    with pytest.raises(ConfigError, match="IDEMPOTENCY_KEY_TTL_SECONDS"):
        Config(environ={"IDEMPOTENCY_KEY_TTL_SECONDS": "0"}).validate()
