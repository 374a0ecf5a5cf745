"""The one error hierarchy: every error names what a user must fix."""


class AvtomatikaError(Exception):
    """Base of every error this package raises on purpose."""


class BlueprintError(AvtomatikaError, ValueError):
    """A blueprint definition is invalid; the message names the blueprint, state and problem."""


class ConditionError(BlueprintError):
    """A ``.when()`` condition does not parse."""


class ActionError(AvtomatikaError, RuntimeError):
    """A handler used the ``actions`` object wrongly (a second action, bad arguments)."""


class ConfigError(AvtomatikaError, ValueError):
    """A configuration value (environment variable or file key) is invalid."""


class StorageUnavailable(AvtomatikaError, ConnectionError):
    """Storage did not answer within its retry budget; the same request may be sent again.

    The HTTP API answers it with 503 and ``Retry-After``; background loops wait and go on.
    """

    def __init__(self, message: str, retry_after: float = 5.0) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class IdempotencyKeyReused(AvtomatikaError):
    """An ``Idempotency-Key`` came back with a request other than the one it was first sent with.

    The HTTP API answers it with 409; ``job_id`` is the job the key was claimed for.
    """

    def __init__(self, message: str, job_id: str) -> None:
        super().__init__(message)
        self.job_id = job_id
