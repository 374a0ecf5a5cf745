import asyncio

import aiohttp

from avtomatika.protocol.constants import PROTOCOL_VERSION, VERSION_HEADER, WORKER_TOKEN_HEADER
from avtomatika.protocol.models import WorkerCommand
from avtomatika.worker.backoff import Backoff
from avtomatika.worker.commands import CommandChannel

from .fake_orchestrator import TOKEN, FakeOrchestrator, eventually

HEADERS = {WORKER_TOKEN_HEADER: TOKEN, VERSION_HEADER: PROTOCOL_VERSION}


def test_malformed_frames_are_skipped() -> None:
    received: list[WorkerCommand] = []
    channel = CommandChannel(None, received.append, Backoff(1, 1))  # type: ignore[arg-type]
    channel.dispatch("not json")
    channel.dispatch('{"task_id": "no command"}')
    channel.dispatch('{"command": "cancel_task", "task_id": "t-1", "job_id": "j-1"}')
    assert received == [WorkerCommand(command="cancel_task", task_id="t-1", job_id="j-1")]


async def test_commands_arrive_and_the_channel_reconnects(fake_orchestrator: FakeOrchestrator) -> None:
    received: list[WorkerCommand] = []
    async with aiohttp.ClientSession() as session:

        async def open_socket() -> aiohttp.ClientWebSocketResponse:
            return await session.ws_connect(f"{fake_orchestrator.url}/_worker/ws/w-1", headers=HEADERS)

        channel = CommandChannel(open_socket, received.append, Backoff(0.01, 0.01))
        running = asyncio.create_task(channel.run())
        await eventually(lambda: fake_orchestrator.sockets)
        await fake_orchestrator.send_command({"command": "cancel_task", "task_id": "t-1"})
        await eventually(lambda: received)
        await fake_orchestrator.sockets[0].close()
        await eventually(lambda: len(fake_orchestrator.sockets) == 2)
        await fake_orchestrator.send_command({"command": "cancel_task", "task_id": "t-2"})
        await eventually(lambda: len(received) == 2)
        running.cancel()
    assert [c.task_id for c in received] == ["t-1", "t-2"]
