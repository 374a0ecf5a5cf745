"""An echo worker built with our client (``avtomatika.worker``), configured from AVTOMATIKA_* variables."""

from typing import Any

from avtomatika.worker import Worker

worker = Worker.from_env(websocket=False)


@worker.skill("echo")
async def echo(params: dict[str, Any]) -> dict[str, Any]:
    return {"echo": params}
