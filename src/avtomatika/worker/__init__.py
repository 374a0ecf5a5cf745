"""Avtomatika's first-party worker client (RXON v1, wire-compatible with ``avtomatika-worker``).

.. code-block:: python

    from avtomatika.worker import Worker, TransientError

    worker = Worker.from_env()  # AVTOMATIKA_URL, AVTOMATIKA_WORKER_TOKEN, ...

    @worker.skill("resize")
    async def resize(params: dict, progress) -> dict:
        await progress(0.5, "half way")
        return {"width": params["width"] // 2}

    worker.run()  # or: avtomatika worker my_module:worker
"""

from avtomatika.worker.app import Worker
from avtomatika.worker.errors import (
    InvalidInputError,
    OrchestratorError,
    PermanentError,
    SkillDefinitionError,
    TaskError,
    TransientError,
)

__all__ = [
    "InvalidInputError",
    "OrchestratorError",
    "PermanentError",
    "SkillDefinitionError",
    "TaskError",
    "TransientError",
    "Worker",
]
