"""The worker command channel as a stopping instance closes it (protocol.md §5.6)."""

import asyncio

import aiohttp

from avtomatika.server.websocket import CLOSE_HANDSHAKE_SECONDS
from tests.conftest import WORKER_TOKEN, OrchestratorFactory

HEADERS = {"X-Worker-Token": WORKER_TOKEN}


async def test_a_socket_opened_while_stopping_is_closed_going_away(orchestrator: OrchestratorFactory) -> None:
    async with orchestrator() as orch:
        assert await orch.engine.ws_manager.close_all(1.0) == 0
        async with orch.session.ws_connect(f"{orch.url}/_worker/ws/late", headers=HEADERS) as ws:
            message = await ws.receive(timeout=2)
        assert (message.type, ws.close_code) == (aiohttp.WSMsgType.CLOSE, 1001)


async def test_a_worker_that_never_answers_the_close_does_not_hold_up_the_stop(
    orchestrator: OrchestratorFactory,
) -> None:
    async with (
        orchestrator() as orch,
        orch.session.ws_connect(f"{orch.url}/_worker/ws/deaf", headers=HEADERS, autoclose=False) as ws,
    ):
        loop = asyncio.get_running_loop()
        started = loop.time()
        assert await orch.engine.ws_manager.close_all(10.0) == 1
        elapsed = loop.time() - started
        message = await ws.receive(timeout=2)
        assert message.type == aiohttp.WSMsgType.CLOSE
        assert message.data == 1001
    assert elapsed <= CLOSE_HANDSHAKE_SECONDS + 0.5
