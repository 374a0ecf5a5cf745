"""Handler dependency injection: parameters resolved by name, planned once per handler.

``InjectionPlan.for_handler`` reads the signature at registration and turns every parameter
into a small resolver, so a job step only runs those resolvers (no ``inspect`` per call).
Resolution order (api.md §6): ``context`` → the whole ``JobContext`` (then only ``actions``
and ``task_files`` besides it); a ``JobContext`` field name → that field; otherwise a key of
``state_history``, then a key of ``initial_data`` when it is a mapping.
"""

from __future__ import annotations

import difflib
import inspect
from collections.abc import Callable, Mapping
from operator import attrgetter
from typing import Any, Final, NamedTuple

from avtomatika.blueprints.job_context import JobContext
from avtomatika.errors import BlueprintError

_Resolver = Callable[[JobContext], object]

_MISSING: Final = object()
_CONTEXT_COMPANIONS: Final = frozenset({"actions", "task_files"})
_REJECTED_KINDS: Final = {
    inspect.Parameter.POSITIONAL_ONLY: "is positional-only",
    inspect.Parameter.VAR_POSITIONAL: "is *args",
}


class MissingHandlerArgument(BlueprintError):
    """A handler needs an argument that neither the job context nor its data provides.

    A blueprint mistake, not a transient one: the job fails at once instead of being retried.
    """


class _Slot(NamedTuple):
    name: str
    resolve: _Resolver
    required: bool


def location(func: Callable[..., Any]) -> str:
    """``file:line`` of a handler's ``def``, so a message points at the code to fix."""
    code = getattr(inspect.unwrap(func), "__code__", None)
    return "<unknown>" if code is None else f"{code.co_filename}:{code.co_firstlineno}"


def did_you_mean(name: str) -> str:
    """A hint when ``name`` looks like a misspelt JobContext field, else an empty string."""
    close = difflib.get_close_matches(name, ("context", *JobContext._fields), n=1, cutoff=0.85)
    return f" (did you mean '{close[0]}'?)" if close else ""


def _from_data(name: str) -> _Resolver:
    def resolve(context: JobContext) -> object:
        history = context.state_history
        if name in history:
            return history[name]
        data = context.initial_data
        if isinstance(data, Mapping) and name in data:
            return data[name]
        return _MISSING

    return resolve


def _whole_context(context: JobContext) -> object:
    return context


def _resolver(name: str, with_context: bool) -> _Resolver | None:
    if name == "context":
        return _whole_context
    if name in JobContext._fields and (not with_context or name in _CONTEXT_COMPANIONS):
        return attrgetter(name)
    return None if with_context else _from_data(name)


class InjectionPlan:
    """How to call one handler: an ordered list of (name, resolver, required)."""

    __slots__ = ("_slots", "blueprint", "data_names", "handler", "location", "names", "state")

    def __init__(
        self, blueprint: str, state: str, handler: str, slots: list[_Slot], location: str = "<unknown>"
    ) -> None:
        self.blueprint = blueprint
        self.state = state
        self.handler = handler
        self.location = location
        self._slots = tuple(slots)
        self.names: tuple[str, ...] = tuple(slot.name for slot in slots)
        # Required parameters only the job's data can supply (not JobContext fields).
        self.data_names: tuple[str, ...] = tuple(
            slot.name
            for slot in slots
            if slot.required and slot.name not in JobContext._fields and slot.name != "context"
        )

    @classmethod
    def for_handler(cls, func: Callable[..., Any], *, blueprint: str, state: str) -> InjectionPlan:
        """Check ``func`` can be a handler and plan its arguments; ``BlueprintError`` otherwise."""
        handler = getattr(func, "__qualname__", repr(func))
        where = f"Blueprint '{blueprint}', state '{state}': handler '{handler}'"
        if not inspect.iscoroutinefunction(func):
            raise BlueprintError(f"{where} must be an 'async def' function")
        try:
            parameters = list(inspect.signature(func).parameters.values())
        except (TypeError, ValueError) as exc:
            raise BlueprintError(f"{where} has no readable signature: {exc}") from exc
        with_context = any(p.name == "context" for p in parameters)
        slots: list[_Slot] = []
        for parameter in parameters:
            if parameter.kind in _REJECTED_KINDS:
                reason = _REJECTED_KINDS[parameter.kind]
                raise BlueprintError(f"{where}: parameter '{parameter.name}' {reason}; use named parameters")
            if parameter.kind is inspect.Parameter.VAR_KEYWORD:
                continue
            required = parameter.default is inspect.Parameter.empty
            resolve = _resolver(parameter.name, with_context)
            if resolve is None:
                if required:
                    raise BlueprintError(
                        f"{where}: parameter '{parameter.name}' cannot be injected next to 'context' "
                        "(only 'actions' and 'task_files' can); read it from context instead"
                    )
                continue
            slots.append(_Slot(parameter.name, resolve, required))
        return cls(blueprint, state, handler, slots, location(func))

    def kwargs(self, context: JobContext) -> dict[str, Any]:
        """The keyword arguments for one call; ``MissingHandlerArgument`` when a required one
        is in neither ``state_history`` nor ``initial_data``."""
        arguments: dict[str, Any] = {}
        for name, resolve, required in self._slots:
            value = resolve(context)
            if value is _MISSING:
                if required:
                    raise MissingHandlerArgument(
                        f"Blueprint '{self.blueprint}', state '{self.state}': handler '{self.handler}' "
                        f"({self.location}) needs argument '{name}', which is neither a JobContext "
                        f"field nor a key of state_history or initial_data{did_you_mean(name)}"
                    )
                continue
            arguments[name] = value
        return arguments
