"""How a stopping instance lets go of its work, in order, within ``SHUTDOWN_TIMEOUT_SECONDS``.

It runs as the app's on-shutdown hook (``engine.stop()``, the end of ``run()`` on SIGINT or
SIGTERM, or any aiohttp runner), once aiohttp has closed the listener and the idle keep-alive
connections:

1. take no new work: the executor claims no more steps, the watcher ends its cycle and its lock;
2. answer every held long-poll 204 at once, whatever its worker id, so workers poll elsewhere;
3. close every worker WebSocket with 1001 (going away), so workers reconnect elsewhere;
4. drain: steps in flight (their leases still renewed) and requests in progress may finish until
   :data:`HAND_OVER_SECONDS` before the end of the budget;
5. hand over: steps still running are cancelled and their run-queue entries given back, ready at
   once for any instance; requests still running are cancelled (their clients resend).

The engine's lifespan then closes the rest (webhook sender, HTTP session, storage) with what is
left of the budget. Nothing is lost on the way: what this instance gives up, another one takes,
or this one after a restart; handlers are at-least-once and results idempotent.
"""

import asyncio
import logging
from dataclasses import dataclass

from avtomatika.engine.executor import Drained, JobExecutor
from avtomatika.engine.polls import HeldPolls
from avtomatika.engine.watcher import Watcher
from avtomatika.server.inflight import InFlightRequests
from avtomatika.server.websocket import WebSocketManager

logger = logging.getLogger(__name__)

HAND_OVER_SECONDS = 2.0
"""The end of the budget kept for handing steps back and closing connections."""
HAND_BACK_SECONDS = 1.0
"""How long cancelled steps may take to unwind, and then each one's give-back (storage
unreachable: its lease expires)."""
LAST_STEP_SECONDS = 0.1
"""What a closing step gets even when the budget is spent, so that it is at least tried."""


@dataclass(frozen=True, slots=True)
class Work:
    """What a running instance holds that stopping must let go of."""

    polls: HeldPolls
    sockets: WebSocketManager
    requests: InFlightRequests
    executor: JobExecutor | None
    watcher: Watcher | None


class Budget:
    """The time one stop may take, counted from when it began."""

    __slots__ = ("_ends_at", "_loop")

    def __init__(self, seconds: float) -> None:
        self._loop = asyncio.get_running_loop()
        self._ends_at = self._loop.time() + seconds

    def left(self, keep: float = 0.0) -> float:
        """Seconds until ``keep`` seconds before the end (at least :data:`LAST_STEP_SECONDS`)."""
        return max(self._ends_at - keep - self._loop.time(), LAST_STEP_SECONDS)


async def let_go(work: Work, budget: Budget) -> None:
    """Steps 1-5 of the module docstring."""
    if work.executor is not None:
        work.executor.stop_claiming()
    if work.watcher is not None:
        work.watcher.stop()
    polls = work.polls.release_all()
    drain = budget.left(keep=HAND_OVER_SECONDS)
    sockets, steps, cancelled = await asyncio.gather(
        work.sockets.close_all(drain), _drain(work.executor, drain), work.requests.finish(drain)
    )
    logger.info(
        "Stopping: answered %d held long-polls, closed %d worker sockets; %d steps finished and %d "
        "handed back; %d requests cut off",
        polls,
        sockets,
        steps.finished,
        steps.handed_back,
        cancelled,
    )


async def _drain(executor: JobExecutor | None, seconds: float) -> Drained:
    if executor is None:
        return Drained(finished=0, handed_back=0)
    return await executor.drain(seconds, HAND_BACK_SECONDS)
