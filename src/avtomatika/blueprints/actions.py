"""``ActionFactory``: how a handler tells the orchestrator what the job does next.

A handler chooses exactly one action per call; the executor reads it from ``.action`` as
one of the frozen structs below and turns it into a single atomic transition. Arguments are
checked when the handler calls the method, so a mistake fails in the handler's own frame with
a message that names it instead of later, inside the dispatcher.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from typing import Any, Final

import msgspec

from avtomatika.core.records import DISPATCH_STRATEGIES, JSONObject, TaskSpec
from avtomatika.errors import ActionError

# Keys a dispatch_parallel task dict may carry besides its type ("type" or "task_type").
_PARALLEL_TASK_KEYS: Final = frozenset(
    {
        "params",
        "transitions",
        "dispatch_strategy",
        "resource_requirements",
        "timeout_seconds",
        "dispatch_timeout_seconds",
        "result_timeout_seconds",
        "max_cost",
        "priority",
    }
)


# tag=True lets msgspec encode and decode the ``Action`` union unambiguously.
class GoTo(msgspec.Struct, frozen=True, tag=True):
    state: str


class DispatchTask(msgspec.Struct, frozen=True, tag=True):
    spec: TaskSpec


class DispatchParallel(msgspec.Struct, frozen=True, tag=True):
    tasks: list[TaskSpec]
    aggregate_into: str


class AwaitHuman(msgspec.Struct, frozen=True, tag=True):
    integration: str | None
    message: str | None
    transitions: dict[str, str]


class RunBlueprint(msgspec.Struct, frozen=True, tag=True):
    blueprint_name: str
    initial_data: JSONObject
    transitions: dict[str, str]
    dispatch_timeout: float | None
    result_timeout: float | None


Action = GoTo | DispatchTask | DispatchParallel | AwaitHuman | RunBlueprint


def _name(where: str, field: str, value: object) -> str:
    if not isinstance(value, str) or not value:
        raise ActionError(f"{where}: {field} must be a non-empty string, got {value!r}")
    return value


def _mapping(where: str, field: str, value: object) -> JSONObject:
    if not isinstance(value, Mapping):
        raise ActionError(f"{where}: {field} must be a dict, got {type(value).__name__}")
    return dict(value)


def _optional_mapping(where: str, field: str, value: object) -> JSONObject | None:
    return None if value is None else _mapping(where, field, value)


def _transitions(where: str, field: str, value: object) -> dict[str, str]:
    if not isinstance(value, Mapping):
        raise ActionError(f"{where}: {field} must be a dict of status -> state, got {type(value).__name__}")
    for key, target in value.items():
        if not isinstance(key, str) or not isinstance(target, str) or not target:
            raise ActionError(f"{where}: {field} must map strings to state names, got {key!r}: {target!r}")
    return dict(value)


def _timeout(where: str, field: str, value: object) -> float | None:
    if value is None:
        return None
    seconds = _number(where, field, value)
    if not seconds > 0:
        raise ActionError(f"{where}: {field} must be a positive number of seconds or None, got {value!r}")
    return seconds


def _number(where: str, field: str, value: object) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ActionError(f"{where}: {field} must be a number, got {value!r}")
    return float(value)


def _strategy(where: str, value: object) -> str:
    if not isinstance(value, str) or value not in DISPATCH_STRATEGIES:
        choices = ", ".join(sorted(DISPATCH_STRATEGIES))
        raise ActionError(f"{where}: dispatch_strategy must be one of {choices}, got {value!r}")
    return value


def _parallel_task_type(where: str, task: Mapping[str, Any]) -> str:
    # The seed README writes "task_type"; the reference accepted only "type" (features.md §2).
    if "type" in task and "task_type" in task and task["type"] != task["task_type"]:
        raise ActionError(f"{where}: give the task type once, as 'type' or 'task_type'")
    return _name(where, "task_type", task.get("type", task.get("task_type")))


class ActionFactory:
    """The ``actions`` object of one handler call: records the one action it chose."""

    __slots__ = (
        "_action",
        "_chosen_by",
        "_default_dispatch_timeout",
        "_default_result_timeout",
        "_events",
        "_state_exists",
        "job_id",
    )

    def __init__(
        self,
        job_id: str,
        default_dispatch_timeout: float | None = None,
        default_result_timeout: float | None = None,
        *,
        state_exists: Callable[[str], bool] | None = None,
    ) -> None:
        """``state_exists`` (the executor passes the blueprint's) makes an unknown target state
        fail in the call that names it, so the traceback points at the handler's line."""
        self.job_id = job_id
        self._state_exists = state_exists
        self._default_dispatch_timeout = default_dispatch_timeout
        self._default_result_timeout = default_result_timeout
        self._action: Action | None = None
        self._chosen_by: str | None = None
        self._events: list[JSONObject] = []

    def _claim(self, method: str) -> str:
        if self._chosen_by is not None:
            raise ActionError(
                f"Cannot set multiple actions in the same step: {method}() was called after "
                f"{self._chosen_by}() in job '{self.job_id}'"
            )
        return f"{method}() in job '{self.job_id}'"

    def _set(self, method: str, action: Action) -> None:
        self._action, self._chosen_by = action, method

    def _check_targets(self, where: str, field: str, targets: Iterable[str]) -> None:
        if self._state_exists is None:
            return
        for target in targets:
            if not self._state_exists(target):
                raise ActionError(
                    f"{where}: {field} names '{target}', which is not a state of this blueprint"
                )

    def go_to(self, state: str) -> None:
        """Move the job to ``state`` and run its handler next."""
        where = self._claim("go_to")
        target = _name(where, "state", state)
        self._check_targets(where, "state", [target])
        self._set("go_to", GoTo(target))

    def dispatch_task(
        self,
        task_type: str,
        params: JSONObject,
        transitions: dict[str, str],
        event_transitions: dict[str, str] | None = None,
        dispatch_strategy: str = "default",
        resource_requirements: JSONObject | None = None,
        timeout_seconds: float | None = None,
        dispatch_timeout_seconds: float | None = None,
        result_timeout_seconds: float | None = None,
        max_cost: float | None = None,
        priority: float = 0.0,
        resource_hint: Any = None,
    ) -> None:
        """Send a task to a worker with skill ``task_type``; its result status picks the next
        state through ``transitions``, worker events through ``event_transitions``."""
        where = self._claim("dispatch_task")
        task = {
            "type": task_type,
            "params": params,
            "transitions": transitions,
            "dispatch_strategy": dispatch_strategy,
            "resource_requirements": resource_requirements,
            "timeout_seconds": timeout_seconds,
            "dispatch_timeout_seconds": dispatch_timeout_seconds,
            "result_timeout_seconds": result_timeout_seconds,
            "max_cost": max_cost,
            "priority": priority,
        }
        spec = self._task_spec(where, task, event_transitions)
        if resource_hint is not None:
            # A new dict: the caller's params (often state_history data) stay untouched.
            spec = msgspec.structs.replace(spec, params={**spec.params, "resource_hint": resource_hint})
        self._check_targets(where, "transitions", spec.transitions.values())
        self._check_targets(where, "event_transitions", spec.event_transitions.values())
        self._set("dispatch_task", DispatchTask(spec))

    def dispatch_parallel(self, tasks: list[JSONObject], aggregate_into: str) -> None:
        """Fan out one task per dict of ``tasks``; the aggregator of ``aggregate_into`` runs
        once every branch has a result. Branch ``transitions`` are kept but fan-in ignores them."""
        where = self._claim("dispatch_parallel")
        target = _name(where, "aggregate_into", aggregate_into)
        if not isinstance(tasks, list | tuple) or not tasks:
            raise ActionError(f"{where}: tasks must be a non-empty list of task dicts")
        specs = [self._parallel_spec(f"{where}, task #{i}", task) for i, task in enumerate(tasks)]
        self._check_targets(where, "aggregate_into", [target])
        self._set("dispatch_parallel", DispatchParallel(specs, target))

    def await_human_approval(
        self, integration: str | None, message: str | None, transitions: dict[str, str]
    ) -> None:
        """Wait for a decision posted to the approval webhook; ``transitions`` maps it to a state."""
        where = self._claim("await_human_approval")
        for field, value in (("integration", integration), ("message", message)):
            if value is not None and not isinstance(value, str):
                raise ActionError(f"{where}: {field} must be a string or None, got {value!r}")
        action = AwaitHuman(integration, message, _transitions(where, "transitions", transitions))
        self._check_targets(where, "transitions", action.transitions.values())
        self._set("await_human_approval", action)

    def run_blueprint(
        self,
        blueprint_name: str,
        initial_data: JSONObject,
        transitions: dict[str, str],
        dispatch_timeout: float | None = None,
        result_timeout: float | None = None,
    ) -> None:
        """Start a child job of ``blueprint_name``; its outcome (``success``/``failure``) picks
        the next state through ``transitions``."""
        where = self._claim("run_blueprint")
        action = RunBlueprint(
            blueprint_name=_name(where, "blueprint_name", blueprint_name),
            initial_data=_mapping(where, "initial_data", initial_data),
            transitions=_transitions(where, "transitions", transitions),
            dispatch_timeout=_timeout(where, "dispatch_timeout", dispatch_timeout),
            result_timeout=_timeout(where, "result_timeout", result_timeout),
        )
        self._check_targets(where, "transitions", action.transitions.values())
        self._set("run_blueprint", action)

    def send_event(
        self,
        event_type: str,
        payload: JSONObject,
        security: JSONObject | None = None,
        metadata: JSONObject | None = None,
    ) -> None:
        """Emit a blueprint event after the handler returns; allowed any number of times."""
        where = f"send_event() in job '{self.job_id}'"
        self._events.append(
            {
                "event_type": _name(where, "event_type", event_type),
                "payload": _mapping(where, "payload", payload),
                "security": _optional_mapping(where, "security", security),
                "metadata": _optional_mapping(where, "metadata", metadata),
            }
        )

    def _task_spec(self, where: str, task: Mapping[str, Any], event_transitions: object = None) -> TaskSpec:
        dispatch_timeout = _timeout(where, "dispatch_timeout_seconds", task.get("dispatch_timeout_seconds"))
        result_timeout = _timeout(where, "result_timeout_seconds", task.get("result_timeout_seconds"))
        max_cost = task.get("max_cost")
        return TaskSpec(
            type=_name(where, "task_type", task.get("type")),
            params=_mapping(where, "params", task.get("params", {})),
            transitions=_transitions(where, "transitions", task.get("transitions", {})),
            event_transitions=_transitions(where, "event_transitions", event_transitions or {}),
            dispatch_strategy=_strategy(where, task.get("dispatch_strategy", "default")),
            resource_requirements=_optional_mapping(
                where, "resource_requirements", task.get("resource_requirements")
            ),
            timeout_seconds=_timeout(where, "timeout_seconds", task.get("timeout_seconds")),
            dispatch_timeout_seconds=dispatch_timeout or self._default_dispatch_timeout,
            result_timeout_seconds=result_timeout or self._default_result_timeout,
            max_cost=None if max_cost is None else _number(where, "max_cost", max_cost),
            priority=_number(where, "priority", task.get("priority", 0.0)),
        )

    def _parallel_spec(self, where: str, task: object) -> TaskSpec:
        if not isinstance(task, Mapping):
            raise ActionError(f"{where}: each task must be a dict, got {type(task).__name__}")
        unknown = set(task) - _PARALLEL_TASK_KEYS - {"type", "task_type"}
        if unknown:
            names = ", ".join(repr(key) for key in sorted(map(str, unknown)))
            allowed = ", ".join(sorted(_PARALLEL_TASK_KEYS | {"type", "task_type"}))
            raise ActionError(f"{where}: unknown key {names} (allowed: {allowed})")
        task_type = _parallel_task_type(where, task)
        return self._task_spec(where, {**task, "type": task_type})

    @property
    def action(self) -> Action | None:
        """The action the handler chose, or None when it chose none."""
        return self._action

    @property
    def pending_events(self) -> list[JSONObject]:
        """Events from ``send_event`` in call order (a copy)."""
        return list(self._events)

    @property
    def next_state(self) -> str | None:
        return self._action.state if isinstance(self._action, GoTo) else None

    @property
    def task_to_dispatch(self) -> JSONObject | None:
        """The ``dispatch_task`` arguments as a dict (compatibility view of ``action``)."""
        if not isinstance(self._action, DispatchTask):
            return None
        task = msgspec.structs.asdict(self._action.spec)
        task["task_type"] = task.pop("type")
        return task

    @property
    def parallel_tasks_to_dispatch(self) -> JSONObject | None:
        """``{"tasks": [...], "aggregate_into": state}`` with tasks keyed by ``type``."""
        if not isinstance(self._action, DispatchParallel):
            return None
        tasks = [msgspec.structs.asdict(spec) for spec in self._action.tasks]
        return {"tasks": tasks, "aggregate_into": self._action.aggregate_into}

    @property
    def sub_blueprint_to_run(self) -> JSONObject | None:
        if not isinstance(self._action, RunBlueprint):
            return None
        return msgspec.structs.asdict(self._action)
