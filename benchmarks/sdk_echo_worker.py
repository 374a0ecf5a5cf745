"""An echo worker built with the published SDK (avtomatika-worker 1.0b13), unmodified."""

from typing import Any

from avtomatika_worker import Worker

worker = Worker(worker_type="bench-echo")


@worker.skill("echo")
async def echo(params: dict[str, Any], **_: Any) -> dict[str, Any]:
    return {"status": "success", "data": {"echo": params}}


if __name__ == "__main__":
    worker.run()
