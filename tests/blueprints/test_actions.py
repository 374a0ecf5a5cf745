"""ActionFactory: one action per handler call, arguments checked when the handler calls."""

from collections.abc import Callable
from typing import Any

import msgspec
import pytest

from avtomatika.blueprints.actions import (
    Action,
    ActionFactory,
    AwaitHuman,
    DispatchParallel,
    DispatchTask,
    GoTo,
    RunBlueprint,
)
from avtomatika.core.records import TaskSpec
from avtomatika.errors import ActionError

CALLS: dict[str, Callable[[ActionFactory], None]] = {
    "go_to": lambda a: a.go_to("next"),
    "dispatch_task": lambda a: a.dispatch_task("skill", {}, {"success": "next"}),
    "dispatch_parallel": lambda a: a.dispatch_parallel([{"type": "skill"}], "gather"),
    "await_human_approval": lambda a: a.await_human_approval("slack", "ok?", {"yes": "next"}),
    "run_blueprint": lambda a: a.run_blueprint("child", {}, {"success": "next"}),
}


def test_no_action_by_default() -> None:
    actions = ActionFactory("job-1")
    assert actions.action is None
    assert actions.next_state is None
    assert actions.task_to_dispatch is None
    assert actions.parallel_tasks_to_dispatch is None
    assert actions.sub_blueprint_to_run is None
    assert actions.pending_events == []
    assert actions.job_id == "job-1"


def test_go_to() -> None:
    actions = ActionFactory("job-1")
    actions.go_to("publish")
    assert actions.action == GoTo("publish")
    assert actions.next_state == "publish"


@pytest.mark.parametrize("first", sorted(CALLS))
@pytest.mark.parametrize("second", sorted(CALLS))
def test_a_second_action_names_both(first: str, second: str) -> None:
    actions = ActionFactory("job-7")
    CALLS[first](actions)
    chosen = actions.action
    with pytest.raises(ActionError) as caught:
        CALLS[second](actions)
    message = str(caught.value)
    assert f"{first}()" in message
    assert f"{second}()" in message
    assert "job-7" in message
    assert actions.action is chosen


def test_a_rejected_call_does_not_use_up_the_step() -> None:
    actions = ActionFactory("job-1")
    with pytest.raises(ActionError):
        actions.go_to("")
    actions.go_to("ok")
    assert actions.next_state == "ok"


def test_send_event_any_number_of_times_next_to_an_action() -> None:
    actions = ActionFactory("job-1")
    actions.send_event("progress", {"p": 0.5})
    actions.go_to("next")
    actions.send_event("done", {}, security={"signature": "s"}, metadata={"m": 1})
    assert actions.pending_events == [
        {"event_type": "progress", "payload": {"p": 0.5}, "security": None, "metadata": None},
        {"event_type": "done", "payload": {}, "security": {"signature": "s"}, "metadata": {"m": 1}},
    ]
    actions.pending_events.clear()
    assert len(actions.pending_events) == 2


@pytest.mark.parametrize(
    ("call", "fragment"),
    [
        (lambda a: a.send_event("", {}), "event_type"),
        (lambda a: a.send_event("e", []), "payload"),
        (lambda a: a.send_event("e", {}, security="x"), "security"),
    ],
)
def test_send_event_validates(call: Callable[[ActionFactory], None], fragment: str) -> None:
    with pytest.raises(ActionError, match=fragment):
        call(ActionFactory("job-1"))


# -- dispatch_task -----------------------------------------------------------------------------


def test_dispatch_task_builds_a_task_spec() -> None:
    actions = ActionFactory("job-1")
    actions.dispatch_task(
        task_type="video_transcoding",
        params={"input_path": "/in.mp4"},
        transitions={"success": "publish_video", "failure": "failed", "needs_review": "manual_review"},
        event_transitions={"progress_stalled": "manual_review"},
        dispatch_strategy="cheapest",
        resource_requirements={"resources": {"ram_gb": 8}},
        timeout_seconds=60,
        dispatch_timeout_seconds=5,
        result_timeout_seconds=120.5,
        max_cost=3,
        priority=2,
    )
    assert actions.action == DispatchTask(
        TaskSpec(
            type="video_transcoding",
            params={"input_path": "/in.mp4"},
            transitions={"success": "publish_video", "failure": "failed", "needs_review": "manual_review"},
            event_transitions={"progress_stalled": "manual_review"},
            dispatch_strategy="cheapest",
            resource_requirements={"resources": {"ram_gb": 8}},
            timeout_seconds=60.0,
            dispatch_timeout_seconds=5.0,
            result_timeout_seconds=120.5,
            max_cost=3.0,
            priority=2.0,
        )
    )
    compat = actions.task_to_dispatch
    assert compat is not None
    assert compat["task_type"] == "video_transcoding"
    assert "type" not in compat
    assert compat["transitions"]["needs_review"] == "manual_review"


def test_job_level_timeouts_are_defaults() -> None:
    actions = ActionFactory("job-1", default_dispatch_timeout=30, default_result_timeout=120)
    actions.dispatch_task("skill", {}, {"success": "done"})
    assert isinstance(actions.action, DispatchTask)
    assert actions.action.spec.dispatch_timeout_seconds == 30
    assert actions.action.spec.result_timeout_seconds == 120

    explicit = ActionFactory("job-2", default_dispatch_timeout=30, default_result_timeout=120)
    explicit.dispatch_task("skill", {}, {}, dispatch_timeout_seconds=1, result_timeout_seconds=2)
    assert isinstance(explicit.action, DispatchTask)
    assert explicit.action.spec.dispatch_timeout_seconds == 1
    assert explicit.action.spec.result_timeout_seconds == 2


def test_resource_hint_goes_into_a_new_params_dict() -> None:
    params = {"prompt": "hi"}
    actions = ActionFactory("job-1")
    actions.dispatch_task("llm", params, {"success": "done"}, resource_hint="llama-70b")
    assert isinstance(actions.action, DispatchTask)
    assert actions.action.spec.params == {"prompt": "hi", "resource_hint": "llama-70b"}
    assert params == {"prompt": "hi"}


def test_params_and_transitions_are_copied() -> None:
    params: dict[str, Any] = {"a": 1}
    transitions = {"success": "done"}
    actions = ActionFactory("job-1")
    actions.dispatch_task("skill", params, transitions)
    params["a"] = 2
    transitions["success"] = "elsewhere"
    assert isinstance(actions.action, DispatchTask)
    assert actions.action.spec.params == {"a": 1}
    assert actions.action.spec.transitions == {"success": "done"}


@pytest.mark.parametrize(
    ("kwargs", "fragment"),
    [
        ({"task_type": ""}, "task_type must be a non-empty string"),
        ({"task_type": 3}, "task_type"),
        ({"params": ["x"]}, "params must be a dict"),
        ({"transitions": ["success"]}, "transitions must be a dict"),
        ({"transitions": {"success": 1}}, "transitions must map strings to state names"),
        ({"transitions": {1: "a"}}, "transitions must map strings"),
        ({"transitions": {"success": ""}}, "transitions must map strings"),
        ({"event_transitions": {"e": None}}, "event_transitions"),
        ({"dispatch_strategy": "fastest"}, "dispatch_strategy must be one of"),
        ({"dispatch_strategy": ["cheapest"]}, "dispatch_strategy must be one of"),
        ({"resource_requirements": "gpu"}, "resource_requirements must be a dict"),
        ({"timeout_seconds": 0}, "timeout_seconds must be a positive number"),
        ({"dispatch_timeout_seconds": -1}, "dispatch_timeout_seconds"),
        ({"result_timeout_seconds": "10"}, "result_timeout_seconds must be a number"),
        ({"timeout_seconds": True}, "timeout_seconds must be a number"),
        ({"max_cost": "cheap"}, "max_cost must be a number"),
        ({"priority": "high"}, "priority must be a number"),
        ({"priority": None}, "priority must be a number"),
    ],
)
def test_dispatch_task_rejects_bad_arguments(kwargs: dict[str, Any], fragment: str) -> None:
    arguments: dict[str, Any] = {"task_type": "skill", "params": {}, "transitions": {"success": "done"}}
    arguments.update(kwargs)
    actions = ActionFactory("job-1")
    with pytest.raises(ActionError, match=fragment) as caught:
        actions.dispatch_task(**arguments)
    assert "dispatch_task()" in str(caught.value)
    assert actions.action is None


@pytest.mark.parametrize(
    "strategy", ["default", "round_robin", "least_connections", "cheapest", "best_value", "overflow"]
)
def test_every_documented_strategy_is_accepted(strategy: str) -> None:
    actions = ActionFactory("job-1")
    actions.dispatch_task("skill", {}, {}, dispatch_strategy=strategy)
    assert isinstance(actions.action, DispatchTask)
    assert actions.action.spec.dispatch_strategy == strategy


# -- dispatch_parallel -------------------------------------------------------------------------


def test_dispatch_parallel_accepts_task_type_and_type_keys() -> None:
    # The seed README writes "task_type"; the reference only understood "type" (W-03 area).
    actions = ActionFactory("job-1", default_dispatch_timeout=9)
    actions.dispatch_parallel(
        tasks=[
            {"task_type": "file_analysis", "params": {"file": "a.csv"}},
            {"type": "file_analysis", "params": {"file": "b.csv"}, "priority": 5, "max_cost": 1.5},
        ],
        aggregate_into="aggregate_results",
    )
    action = actions.action
    assert isinstance(action, DispatchParallel)
    assert action.aggregate_into == "aggregate_results"
    assert [spec.params["file"] for spec in action.tasks] == ["a.csv", "b.csv"]
    assert {spec.type for spec in action.tasks} == {"file_analysis"}
    assert action.tasks[1].priority == 5.0
    assert action.tasks[1].max_cost == 1.5
    assert all(spec.dispatch_timeout_seconds == 9 for spec in action.tasks)
    compat = actions.parallel_tasks_to_dispatch
    assert compat is not None
    assert compat["aggregate_into"] == "aggregate_results"
    assert [task["type"] for task in compat["tasks"]] == ["file_analysis", "file_analysis"]


@pytest.mark.parametrize(
    ("tasks", "fragment"),
    [
        ([], "non-empty list"),
        ({"type": "x"}, "non-empty list"),
        ([{"params": {}}], "task #0: task_type must be a non-empty string"),
        ([{"type": "x"}, "y"], "task #1: each task must be a dict"),
        ([{"type": "x", "task_id": "mine"}], "unknown key 'task_id'"),
        ([{"type": "x", "colour": 1, "size": 2}], "unknown key 'colour', 'size'"),
        ([{"type": "x", "task_type": "y"}], "once"),
        ([{"type": "x", "priority": "urgent"}], "task #0: priority must be a number"),
        ([{"type": "x", "dispatch_strategy": "random"}], "dispatch_strategy"),
    ],
)
def test_dispatch_parallel_rejects_bad_tasks(tasks: Any, fragment: str) -> None:
    actions = ActionFactory("job-1")
    with pytest.raises(ActionError, match=fragment):
        actions.dispatch_parallel(tasks, "gather")
    assert actions.action is None


def test_dispatch_parallel_needs_an_aggregate_state() -> None:
    with pytest.raises(ActionError, match="aggregate_into"):
        ActionFactory("job-1").dispatch_parallel([{"type": "x"}], "")


# -- human approval and sub-blueprints -----------------------------------------------------


def test_await_human_approval() -> None:
    actions = ActionFactory("job-1")
    actions.await_human_approval("slack", "Approve?", {"approved": "publish", "rejected": "archive"})
    assert actions.action == AwaitHuman("slack", "Approve?", {"approved": "publish", "rejected": "archive"})


def test_await_human_approval_validates() -> None:
    with pytest.raises(ActionError, match="integration must be a string or None"):
        ActionFactory("job-1").await_human_approval(5, None, {"ok": "a"})  # type: ignore[arg-type]
    with pytest.raises(ActionError, match="transitions"):
        ActionFactory("job-1").await_human_approval(None, None, {"ok": 1})  # type: ignore[dict-item]


def test_run_blueprint() -> None:
    actions = ActionFactory("job-1")
    actions.run_blueprint("child_flow", {"x": 1}, {"success": "next", "failure": "failed"}, result_timeout=60)
    assert actions.action == RunBlueprint(
        "child_flow", {"x": 1}, {"success": "next", "failure": "failed"}, None, 60.0
    )
    assert actions.sub_blueprint_to_run == {
        "blueprint_name": "child_flow",
        "initial_data": {"x": 1},
        "transitions": {"success": "next", "failure": "failed"},
        "dispatch_timeout": None,
        "result_timeout": 60.0,
    }


@pytest.mark.parametrize(
    ("args", "fragment"),
    [
        (("", {}, {}), "blueprint_name"),
        (("child", [1], {}), "initial_data must be a dict"),
        (("child", {}, {"success": 3}), "transitions"),
    ],
)
def test_run_blueprint_validates(args: tuple[Any, ...], fragment: str) -> None:
    with pytest.raises(ActionError, match=fragment):
        ActionFactory("job-1").run_blueprint(*args)
    with pytest.raises(ActionError, match="dispatch_timeout"):
        ActionFactory("job-1").run_blueprint("child", {}, {}, dispatch_timeout=0)


# -- the action structs ------------------------------------------------------------------------


@pytest.mark.parametrize("method", sorted(CALLS))
def test_actions_round_trip_through_msgspec(method: str) -> None:
    actions = ActionFactory("job-1", default_result_timeout=10)
    CALLS[method](actions)
    action = actions.action
    assert action is not None
    assert msgspec.json.decode(msgspec.json.encode(action), type=Action) == action  # type: ignore[arg-type]
    assert msgspec.msgpack.decode(msgspec.msgpack.encode(action), type=Action) == action  # type: ignore[arg-type]


def test_actions_are_frozen() -> None:
    with pytest.raises(AttributeError):
        GoTo("a").state = "b"  # type: ignore[misc]
