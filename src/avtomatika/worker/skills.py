"""Skill registry and handler parameter injection.

Handlers ask for what they need by parameter name; the names are resolved once, when the skill
is registered, so a typo fails at import time rather than on the first task:

``params`` (dict), ``task_id``, ``job_id``, ``priority`` (float), ``deadline`` (epoch seconds
or ``None``), ``metadata`` (dict), ``progress`` (``await progress(fraction, message="")`` posts a
``progress`` event; in a sync handler it is a plain blocking function).

Sync handlers run in a worker thread. Cancelling a sync handler cannot stop its thread: the task
is reported ``cancelled`` at once and the thread's eventual return value is discarded (a sync
handler that never returns also keeps the process from exiting: prefer async for long waits).
"""

import asyncio
import hashlib
import inspect
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, Protocol

from avtomatika.core.codec import encode_sorted, to_builtins
from avtomatika.protocol.models import SkillInfo, TaskPayload
from avtomatika.worker.errors import SkillDefinitionError

INJECTABLE = ("params", "task_id", "job_id", "priority", "deadline", "metadata", "progress")


class Progress(Protocol):
    """The ``progress`` callable injected into async handlers."""

    def __call__(self, fraction: float, message: str = "") -> Awaitable[None]: ...


@dataclass(frozen=True, slots=True)
class Skill:
    """A registered handler with its advertised contract and the parameters it receives."""

    info: SkillInfo
    handler: Callable[..., Any]
    injected: tuple[str, ...]
    is_async: bool

    async def invoke(self, payload: TaskPayload, progress: Progress) -> Any:
        """Call the handler with its injected parameters; sync handlers run in a thread."""
        if self.is_async:
            return await self.handler(**self._arguments(payload, progress))
        loop = asyncio.get_running_loop()

        def blocking_progress(fraction: float, message: str = "") -> None:
            asyncio.run_coroutine_threadsafe(_awaitable(progress(fraction, message)), loop).result()

        return await asyncio.to_thread(self.handler, **self._arguments(payload, blocking_progress))

    def _arguments(self, payload: TaskPayload, progress: Callable[..., Any]) -> dict[str, Any]:
        available: dict[str, Any] = {
            "params": payload.params,
            "task_id": payload.task_id,
            "job_id": payload.job_id,
            "priority": payload.priority,
            "deadline": payload.deadline,
            "metadata": payload.metadata if payload.metadata is not None else {},
            "progress": progress,
        }
        return {name: available[name] for name in self.injected}


async def _awaitable(value: Awaitable[None]) -> None:
    await value


def make_skill(info: SkillInfo, handler: Callable[..., Any]) -> Skill:
    """Validate ``handler``'s signature against the injectable names and build its ``Skill``."""
    injected: list[str] = []
    for parameter in inspect.signature(handler).parameters.values():
        if parameter.kind in (parameter.VAR_POSITIONAL, parameter.VAR_KEYWORD):
            continue
        if parameter.name in INJECTABLE and parameter.kind is not parameter.POSITIONAL_ONLY:
            injected.append(parameter.name)
        elif parameter.default is parameter.empty:
            raise SkillDefinitionError(
                f"skill '{info.name}': parameter '{parameter.name}' of handler "
                f"{getattr(handler, '__qualname__', handler)!r} cannot be injected; injectable "
                f"(by keyword): {', '.join(INJECTABLE)} — rename it or give it a default"
            )
    return Skill(
        info=info,
        handler=handler,
        injected=tuple(injected),
        is_async=inspect.iscoroutinefunction(handler),
    )


class SkillRegistry:
    """The skills a worker offers, looked up by task type (a skill's name, else its ``type``)."""

    def __init__(self) -> None:
        self._by_name: dict[str, Skill] = {}
        self._hash = _contract_hash([])

    def add(self, skill: Skill) -> None:
        if skill.info.name in self._by_name:
            raise SkillDefinitionError(f"skill '{skill.info.name}' is already registered on this worker")
        self._by_name[skill.info.name] = skill
        self._hash = _contract_hash(self.infos())

    def find(self, task_type: str) -> Skill | None:
        """The skill for ``task_type``: the orchestrator dispatches by skill name or skill type."""
        skill = self._by_name.get(task_type)
        if skill is not None:
            return skill
        return next((s for s in self._by_name.values() if s.info.type == task_type), None)

    def infos(self) -> list[SkillInfo]:
        return [skill.info for skill in self._by_name.values()]

    @property
    def contract_hash(self) -> str:
        """Changes whenever the advertised skills do; sent as ``skills_hash``."""
        return self._hash

    def __len__(self) -> int:
        return len(self._by_name)


def _contract_hash(infos: list[SkillInfo]) -> str:
    return hashlib.sha256(encode_sorted(to_builtins(infos))).hexdigest()
