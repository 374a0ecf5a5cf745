"""The Lua scripts of the Redis backend, loaded from ``lua/*.lua`` as package data.

Each script is ``common.lua`` followed by its own file, under a ``no-cluster`` shebang: the
scripts build key names from ids (a task's key from a popped queue member, a worker's queue
from a task's owner), which Redis Cluster forbids, so they refuse to run on a cluster rather
than misbehave there.
"""

from enum import StrEnum
from importlib import resources
from typing import Any

import redis.asyncio as aioredis
from redis.commands.core import AsyncScript

_HEADER = "#!lua flags=no-cluster\n"


class Lua(StrEnum):
    """Script names, each the stem of a file in ``lua/``."""

    APPLY = "apply"
    ENQUEUE_RUN = "enqueue_run"
    CLAIM_RUN = "claim_run"
    RENEW_RUN = "renew_run"
    RELEASE_RUN = "release_run"
    UNCLAIM_RUN = "unclaim_run"
    POLL_TASK = "poll_task"
    REQUEUE_TASK = "requeue_task"
    STEAL_TASK = "steal_task"
    PEEK_TASKS = "peek_tasks"
    REGISTER_WORKER = "register_worker"
    HEARTBEAT_WORKER = "heartbeat_worker"
    FIND_WORKERS = "find_workers"
    LIST_WORKERS = "list_workers"
    ADJUST_REPUTATION = "adjust_reputation"
    REMOVE_WORKER = "remove_worker"
    CLAIM_DUE = "claim_due"
    ACQUIRE_LOCK = "acquire_lock"
    RELEASE_LOCK = "release_lock"
    LIST_JOBS = "list_jobs"


def _source(name: str) -> str:
    folder = resources.files("avtomatika.storage").joinpath("lua")
    return _HEADER + folder.joinpath("common.lua").read_text() + folder.joinpath(f"{name}.lua").read_text()


class Scripts:
    """Registered scripts; a call runs EVALSHA and reloads the script if the server lost it."""

    __slots__ = ("_client", "_prefix", "_scripts")

    def __init__(self, client: aioredis.Redis, prefix: str) -> None:
        self._client = client
        self._prefix = prefix
        self._scripts: dict[Lua, AsyncScript] = {name: client.register_script(_source(name)) for name in Lua}

    async def load(self) -> None:
        """SCRIPT LOAD every script now, so the first calls need no reload round trip."""
        for script in self._scripts.values():
            await self._client.script_load(script.script)

    async def __call__(self, name: Lua, *args: str | bytes | int | float) -> Any:
        return await self._scripts[name](args=[self._prefix, *args])
