"""``Blueprint``: a named state machine of async handlers, checked before it runs.

Everything that can be decided about a blueprint is decided at registration, not per job:
handler signatures become injection plans, ``.when()`` strings become parsed conditions, and
``validate()`` checks the start state and the transitions found in the handlers' source.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from types import SimpleNamespace
from typing import Any, Final, TypeVar, overload

from avtomatika.blueprints import graph
from avtomatika.blueprints.conditions import Condition
from avtomatika.blueprints.datastore import AsyncDictStore
from avtomatika.blueprints.injection import InjectionPlan, did_you_mean
from avtomatika.blueprints.job_context import JobContext
from avtomatika.errors import BlueprintError, ConditionError

F = TypeVar("F", bound=Callable[..., Any])

_NAME_RE: Final = re.compile(r"[A-Za-z0-9_.-]+")

logger = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True, eq=False)
class HandlerEntry:
    """One registered handler: the function, its injection plan and optional condition."""

    func: Callable[..., Awaitable[Any]]
    plan: InjectionPlan
    state: str
    condition: Condition | None = None

    async def invoke(self, context: JobContext) -> None:
        """Run the handler with its arguments injected from ``context``."""
        await self.func(**self.plan.kwargs(context))


class HandlerDecorator:
    """What ``bp.handler(...)`` returns: a decorator that also offers ``.when(condition)``."""

    __slots__ = ("_blueprint", "_is_end", "_is_start", "_state")

    def __init__(self, blueprint: Blueprint, state: str | None, is_start: bool, is_end: bool) -> None:
        self._blueprint = blueprint
        self._state = state
        self._is_start = is_start
        self._is_end = is_end

    def __call__(self, func: F) -> F:
        self._blueprint._register(func, self._state, None, self._is_start, self._is_end)
        return func

    def when(self, condition: str) -> Callable[[F], F]:
        """Register the handler for jobs matching ``condition`` (see ``avtomatika.blueprints.conditions``)."""

        def decorate(func: F) -> F:
            self._blueprint._register(func, self._state, condition, self._is_start, self._is_end)
            return func

        return decorate


def _check_name(name: object) -> str:
    if not isinstance(name, str) or not _NAME_RE.fullmatch(name):
        raise BlueprintError(f"Blueprint name must be made of letters, digits, '_', '.' or '-', got {name!r}")
    return name


def _endpoint(blueprint: str, api_endpoint: object) -> str | None:
    if api_endpoint is None:
        return None
    if not isinstance(api_endpoint, str) or not api_endpoint.strip("/"):
        raise BlueprintError(f"Blueprint '{blueprint}': api_endpoint must be a path, got {api_endpoint!r}")
    return api_endpoint if api_endpoint.startswith("/") else f"/{api_endpoint}"


def _version(blueprint: str, api_version: object) -> str | None:
    if api_version is not None and (not isinstance(api_version, str) or not _NAME_RE.fullmatch(api_version)):
        raise BlueprintError(f"Blueprint '{blueprint}': api_version must look like 'v1', got {api_version!r}")
    return api_version


class Blueprint:
    """A state machine: states are named by handlers, transitions chosen by ``actions``."""

    def __init__(
        self,
        name: str,
        api_endpoint: str | None = None,
        api_version: str | None = None,
        data_stores: Mapping[str, Any] | None = None,
    ) -> None:
        self.name = _check_name(name)
        self.api_endpoint = _endpoint(self.name, api_endpoint)
        self.api_version = _version(self.name, api_version)
        self.data_stores: dict[str, Any] = {}
        self.end_states: set[str] = set()
        self.events_schema: dict[str, Any] = {}
        self._namespace = SimpleNamespace()
        self._start: str | None = None
        self._defaults: dict[str, HandlerEntry] = {}
        self._aggregators: dict[str, HandlerEntry] = {}
        self._conditionals: dict[str, list[HandlerEntry]] = {}
        self._scans: dict[HandlerEntry, graph.HandlerScan] = {}
        self._warned: set[tuple[HandlerEntry, str]] = set()
        for store_name, value in (data_stores or {}).items():
            self.add_data_store(store_name, value)

    def __repr__(self) -> str:
        return f"Blueprint({self.name!r}, states={sorted(self.states)})"

    # -- definition -----------------------------------------------------------------------

    @overload
    def handler(self, state_or_func: F, *, is_start: bool = False, is_end: bool = False) -> F: ...

    @overload
    def handler(
        self, state_or_func: str | None = None, *, is_start: bool = False, is_end: bool = False
    ) -> HandlerDecorator: ...

    def handler(
        self, state_or_func: F | str | None = None, *, is_start: bool = False, is_end: bool = False
    ) -> F | HandlerDecorator:
        """Register the default handler of a state (the function name unless given)."""
        if callable(state_or_func):
            return HandlerDecorator(self, None, is_start, is_end)(state_or_func)
        return HandlerDecorator(self, state_or_func, is_start, is_end)

    @overload
    def aggregator(self, state_or_func: F) -> F: ...

    @overload
    def aggregator(self, state_or_func: str | None = None) -> Callable[[F], F]: ...

    def aggregator(self, state_or_func: F | str | None = None) -> F | Callable[[F], F]:
        """Register the fan-in handler of a ``dispatch_parallel(aggregate_into=...)`` state."""

        def decorate(func: F) -> F:
            state = self._state_name(func, None if callable(state_or_func) else state_or_func)
            if state in self._aggregators:
                raise BlueprintError(f"Blueprint '{self.name}': state '{state}' already has an aggregator")
            self._aggregators[state] = self._entry(func, state, None)
            return func

        return decorate(state_or_func) if callable(state_or_func) else decorate

    def event(self, name: str, schema: Any) -> Callable[[F], F]:
        """Declare an event the blueprint emits (its schema goes into the contract)."""
        if not isinstance(name, str) or not name:
            raise BlueprintError(f"Blueprint '{self.name}': event name must be a non-empty string")
        if name in self.events_schema:
            raise BlueprintError(f"Blueprint '{self.name}': event '{name}' is already declared")
        self.events_schema[name] = schema
        return lambda func: func

    def add_data_store(self, name: str, initial_data: Any) -> None:
        """Share ``initial_data`` with handlers as ``data_stores.<name>``: a dict becomes an
        ``AsyncDictStore``; anything else (a Redis client, a store) is kept as is (W-31)."""
        if not isinstance(name, str) or not name.isidentifier():
            raise BlueprintError(f"Blueprint '{self.name}': data store name {name!r} is not an identifier")
        if name in self.data_stores:
            raise BlueprintError(f"Blueprint '{self.name}': data store '{name}' already exists")
        store = AsyncDictStore(initial_data) if isinstance(initial_data, dict) else initial_data
        self.data_stores[name] = store
        setattr(self._namespace, name, store)

    def _state_name(self, func: Callable[..., Any], state: str | None) -> str:
        name = getattr(func, "__name__", None) if state is None else state
        if not isinstance(name, str) or not name:
            raise BlueprintError(f"Blueprint '{self.name}': state name {name!r} is not a non-empty string")
        return name

    def _entry(self, func: Callable[..., Any], state: str, condition: str | None) -> HandlerEntry:
        plan = InjectionPlan.for_handler(func, blueprint=self.name, state=state)
        if condition is None:
            return HandlerEntry(func, plan, state)
        try:
            parsed = Condition.parse(condition)
        except ConditionError as exc:
            raise ConditionError(f"Blueprint '{self.name}', state '{state}': {exc}") from None
        return HandlerEntry(func, plan, state, parsed)

    def _register(
        self, func: Callable[..., Any], state: str | None, condition: str | None, is_start: bool, is_end: bool
    ) -> None:
        name = self._state_name(func, state)
        if condition is None and name in self._defaults:
            raise BlueprintError(f"Blueprint '{self.name}': state '{name}' already has a default handler")
        if is_start and self._start not in (None, name):
            raise BlueprintError(
                f"Blueprint '{self.name}': state '{name}' cannot be a second start state "
                f"(the start state is '{self._start}')"
            )
        entry = self._entry(func, name, condition)
        if condition is None:
            self._defaults[name] = entry
        else:
            self._conditionals.setdefault(name, []).append(entry)
        if is_start:
            self._start = name
        if is_end:
            self.end_states.add(name)

    # -- runtime --------------------------------------------------------------------------

    @property
    def start_state(self) -> str:
        if self._start is None:
            raise BlueprintError(f"Blueprint '{self.name}' has no start state: mark a handler is_start=True")
        return self._start

    @property
    def states(self) -> set[str]:
        return set(self._defaults) | set(self._conditionals) | set(self._aggregators)

    @property
    def data_stores_namespace(self) -> SimpleNamespace:
        """The stores as attributes (``data_stores.cache``), the object handlers receive."""
        return self._namespace

    def has_state(self, state: str) -> bool:
        return state in self._defaults or state in self._conditionals or state in self._aggregators

    def is_end(self, state: str) -> bool:
        return state in self.end_states

    def select(self, state: str, context: JobContext, *, aggregate: bool) -> HandlerEntry:
        """The handler for this step: the state's aggregator on fan-in, else the first
        conditional handler (registration order) whose condition holds, else the default."""
        if aggregate and state in self._aggregators:
            return self._aggregators[state]
        for entry in self._conditionals.get(state, ()):
            if entry.condition is not None and entry.condition.evaluate(context):
                return entry
        default = self._defaults.get(state)
        if default is None:
            message = f"Blueprint '{self.name}' has no handler for state '{state}' matching the job"
            raise BlueprintError(message)
        return default

    # -- validation and graph -------------------------------------------------------------

    def _all_entries(self) -> list[HandlerEntry]:
        entries = list(self._defaults.values()) + list(self._aggregators.values())
        for conditional in self._conditionals.values():
            entries.extend(conditional)
        return entries

    def _scan(self, entry: HandlerEntry) -> graph.HandlerScan:
        if entry not in self._scans:
            self._scans[entry] = graph.scan_handler(entry.func, entry.state)
        return self._scans[entry]

    def edges(self) -> list[graph.Edge]:
        """Every transition found in the handlers' source, without duplicates."""
        found = (edge for entry in self._all_entries() for edge in self._scan(entry).edges)
        return list(dict.fromkeys(found))

    def transitions(self) -> dict[str, set[str]]:
        """State -> states its handlers can move the job to (as far as the source shows)."""
        result: dict[str, set[str]] = {state: set() for state in self.states}
        for edge in self.edges():
            result[edge.source].add(edge.target)
        return result

    def validate(self) -> None:
        """Check the blueprint can run (the engine calls this on registration): it has a start
        state, and ``validate_integrity()`` passes. Handler signatures, injection plans and
        conditions were already checked when each handler was registered. Warns about handler
        parameters only ``initial_data`` could supply."""
        self.validate_integrity()
        self._warn_data_only_parameters()

    def _warn_data_only_parameters(self) -> None:
        """Warn once per handler parameter that is not a JobContext field when, as far as the
        source shows, no task, event or handler can put it into ``state_history``. Undecidable
        (a dispatch anywhere, unread source, writes with computed keys): no warning."""
        entries = self._all_entries()
        written: set[str] = set()
        for entry in entries:
            scan = self._scan(entry)
            if not scan.complete or scan.history_keys is None:
                return
            written |= scan.history_keys
        for entry in entries:
            plan = entry.plan
            for name in plan.data_names:
                if name in written or (entry, name) in self._warned:
                    continue
                self._warned.add((entry, name))
                logger.warning(
                    "Blueprint '%s', state '%s': handler '%s' (%s) asks for '%s', which is not a "
                    "JobContext field, and no task or handler of this blueprint writes it to "
                    "state_history: only initial_data can supply it, and a job without it fails%s",
                    self.name,
                    entry.state,
                    plan.handler,
                    plan.location,
                    name,
                    did_you_mean(name),
                )

    def validate_integrity(self) -> None:
        """Reject literal targets that are not states; when every handler's targets are known,
        also reject unreachable states and aggregators no ``aggregate_into`` leads to."""
        start = self.start_state
        states = self.states
        for edge in self.edges():
            if edge.target not in states:
                raise BlueprintError(
                    f"Blueprint '{self.name}': state '{edge.source}' transitions to "
                    f"unknown state '{edge.target}'"
                )
        # W-30: a computed target, an unreadable source or ``actions`` passed to a helper may
        # hide edges, so only a fully known graph supports "unreachable" verdicts.
        if not all(self._scan(entry).complete for entry in self._all_entries()):
            return
        self._check_reachable(start)
        fan_in = {edge.target for edge in self.edges() if edge.kind == "aggregate"}
        orphans = sorted(set(self._aggregators) - fan_in)
        if orphans:
            raise BlueprintError(
                f"Blueprint '{self.name}': aggregator state '{orphans[0]}' is not the aggregate_into "
                "target of any dispatch_parallel()"
            )

    def _check_reachable(self, start: str) -> None:
        transitions = self.transitions()
        reached, frontier = {start}, [start]
        while frontier:
            for target in transitions[frontier.pop()] - reached:
                reached.add(target)
                frontier.append(target)
        unreachable = sorted(self.states - reached)
        if unreachable:
            names = ", ".join(f"'{state}'" for state in unreachable)
            raise BlueprintError(
                f"Blueprint '{self.name}': unreachable states {names}; "
                f"no transition from the start state '{start}' leads to them"
            )

    @overload
    def render_graph(self, output_filename: None = None, output_format: str = "png") -> str: ...

    @overload
    def render_graph(self, output_filename: str | Path, output_format: str = "png") -> None: ...

    def render_graph(
        self, output_filename: str | Path | None = None, output_format: str = "png"
    ) -> str | None:
        """DOT source when no filename is given; otherwise render the file (needs Graphviz)."""
        if output_filename is None:
            return graph.to_dot(self.drawing())
        graph.render(self.drawing(), output_filename, output_format)
        return None

    def drawing(self) -> graph.Drawing:
        """The state graph as the renderer sees it."""
        try:
            start: str | None = self.start_state
        except BlueprintError:
            start = None
        ends = frozenset(state for state in self.states if self.is_end(state))
        return graph.Drawing(self.name, frozenset(self.states), start, ends, self.edges())

    # -- compatibility with the 1.0b21 surface ----------------------------------------------

    @property
    def handlers(self) -> dict[str, Callable[..., Awaitable[Any]]]:
        return {state: entry.func for state, entry in self._defaults.items()}

    @property
    def aggregator_handlers(self) -> dict[str, Callable[..., Awaitable[Any]]]:
        return {state: entry.func for state, entry in self._aggregators.items()}

    @property
    def conditional_handlers(self) -> list[HandlerEntry]:
        return [entry for entries in self._conditionals.values() for entry in entries]

    def find_handler(self, state: str, context: JobContext) -> Callable[..., Awaitable[Any]]:
        """The handler function ``select()`` would pick (without fan-in)."""
        return self.select(state, context, aggregate=False).func

    def get_handler_params(self, func: Callable[..., Any]) -> tuple[str, ...]:
        """Names of the parameters injected into ``func``."""
        for entry in self._all_entries():
            if entry.func is func:
                return entry.plan.names
        raise BlueprintError(f"Blueprint '{self.name}': {func!r} is not one of its handlers")
