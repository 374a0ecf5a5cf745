"""The Lua scripts of the Redis backend, loaded from ``lua/*.lua`` as package data.

Each script is ``common.lua`` followed by its own file, under a ``no-cluster`` shebang: the
scripts build key names from ids (a task's key from a popped queue member, a worker's queue
from a task's owner), which Redis Cluster forbids, so they refuse to run on a cluster rather
than misbehave there.
"""

import hashlib
from enum import StrEnum
from importlib import resources
from typing import Any

from redis.exceptions import NoScriptError

from avtomatika.storage.redis.connection import Arg, Commands, GiveBack

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
    STAMP_WATCH = "stamp_watch"
    LIST_JOBS = "list_jobs"
    GET_WORKER = "get_worker"
    GET_TASK = "get_task"


def _source(name: str) -> str:
    folder = resources.files("avtomatika.storage.redis").joinpath("lua")
    return _HEADER + folder.joinpath("common.lua").read_text() + folder.joinpath(f"{name}.lua").read_text()


class Scripts:
    """Registered scripts, run by EVALSHA; a script the server lost is loaded again, once."""

    __slots__ = ("_commands", "_prefix", "_shas", "_sources")

    def __init__(self, commands: Commands, prefix: str) -> None:
        self._commands = commands
        self._prefix = prefix
        self._sources = {name: _source(name) for name in Lua}
        self._shas = {
            name: hashlib.sha1(source.encode(), usedforsecurity=False).hexdigest()
            for name, source in self._sources.items()
        }

    async def load(self) -> None:
        """SCRIPT LOAD every script now, so the first calls need no reload round trip."""
        await self._commands.execute_many([("SCRIPT", "LOAD", source) for source in self._sources.values()])

    async def __call__(self, name: Lua, *args: Arg) -> Any:
        command = ("EVALSHA", self._shas[name], 0, self._prefix, *args)
        try:
            return await self._commands.execute(*command)
        except NoScriptError:
            await self._reload(name)
            return await self._commands.execute(*command)

    async def take(self, give_back: GiveBack, name: Lua, *args: Arg) -> Any:
        """Run a script that takes work (see :meth:`Commands.take`)."""
        command = ("EVALSHA", self._shas[name], 0, self._prefix, *args)
        try:
            return await self._commands.take(command, give_back)
        except NoScriptError:
            await self._reload(name)
            return await self._commands.take(command, give_back)

    async def _reload(self, name: Lua) -> None:
        # The server restarted or was flushed. NOSCRIPT means nothing ran: running it is safe.
        await self._commands.execute("SCRIPT", "LOAD", self._sources[name])
