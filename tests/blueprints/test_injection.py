"""Handler parameters resolved by name from the job context, planned once per handler."""

from types import SimpleNamespace
from typing import Any

import pytest

from avtomatika.blueprints.actions import ActionFactory
from avtomatika.blueprints.injection import InjectionPlan, MissingHandlerArgument
from avtomatika.blueprints.job_context import ClientConfig, JobContext
from avtomatika.errors import AvtomatikaError, BlueprintError


def job_context(initial_data: Any = None, state_history: Any = None, **fields: Any) -> JobContext:
    return JobContext(
        job_id="job-1",
        current_state="step",
        initial_data={} if initial_data is None else initial_data,
        state_history={} if state_history is None else state_history,
        client=ClientConfig("client-1", "pro", {}),
        actions=ActionFactory("job-1"),
        **fields,
    )


def test_job_context_and_client_config_field_order() -> None:
    # Positional construction by user code depends on this order (api.md §4).
    assert JobContext._fields == (
        "job_id",
        "current_state",
        "initial_data",
        "state_history",
        "client",
        "actions",
        "data_stores",
        "tracing_context",
        "aggregation_results",
        "webhook_url",
        "task_files",
    )
    assert ClientConfig._fields == ("token", "plan", "params")
    context = job_context()
    assert (context.data_stores, context.tracing_context, context.aggregation_results) == (None, None, None)
    assert (context.webhook_url, context.task_files) == (None, None)


def plan_for(func: Any) -> InjectionPlan:
    return InjectionPlan.for_handler(func, blueprint="bp", state="step")


def test_job_context_fields_by_name() -> None:
    async def handler(
        job_id: Any,
        current_state: Any,
        client: Any,
        actions: Any,
        data_stores: Any,
        webhook_url: Any,
        task_files: Any,
    ) -> None:
        """Every name below is a JobContext field."""

    stores = SimpleNamespace(cache=object())
    context = job_context(data_stores=stores, webhook_url="https://hook", task_files=None)
    assert plan_for(handler).kwargs(context) == {
        "job_id": "job-1",
        "current_state": "step",
        "client": context.client,
        "actions": context.actions,
        "data_stores": stores,
        "webhook_url": "https://hook",
        "task_files": None,
    }


def test_state_history_is_the_persisted_object() -> None:
    async def handler(state_history: Any, aggregation_results: Any) -> None:
        """Mutating these in place is how handlers store data (api.md §6 rule 5)."""

    history: dict[str, Any] = {}
    results: dict[str, dict[str, Any]] = {"t1": {"status": "success"}}
    arguments = plan_for(handler).kwargs(job_context(state_history=history, aggregation_results=results))
    assert arguments["state_history"] is history
    assert arguments["aggregation_results"] is results


def test_context_parameter_gets_the_whole_context_and_only_companions() -> None:
    async def handler(context: Any, actions: Any, task_files: Any, job_id: Any = None) -> None:
        """``job_id`` is not injected next to ``context``: it keeps its default."""

    context = job_context(task_files="files")
    assert plan_for(handler).kwargs(context) == {
        "context": context,
        "actions": context.actions,
        "task_files": "files",
    }


def test_required_parameter_next_to_context_is_a_registration_error() -> None:
    async def handler(context: Any, job_id: Any) -> None:
        """Would always fail at call time, so it fails at registration."""

    with pytest.raises(BlueprintError, match=r"Blueprint 'bp', state 'step'.*parameter 'job_id'"):
        plan_for(handler)


def test_seed_readme_worker_result_keys_come_from_state_history() -> None:
    async def publish_video(job_id: str, output_path: str, duration: int, actions: ActionFactory) -> None:
        actions.go_to("complete")

    context = job_context(state_history={"output_path": "/videos/123.mp4", "duration": 95})
    assert plan_for(publish_video).kwargs(context) == {
        "job_id": "job-1",
        "output_path": "/videos/123.mp4",
        "duration": 95,
        "actions": context.actions,
    }


def test_state_history_wins_over_initial_data() -> None:
    async def handler(path: Any, size: Any) -> None:
        """``path`` exists in both; ``size`` only in initial_data."""

    context = job_context(initial_data={"path": "old", "size": 3}, state_history={"path": "new"})
    assert plan_for(handler).kwargs(context) == {"path": "new", "size": 3}


def test_non_mapping_initial_data_is_not_searched() -> None:
    async def handler(initial_data: Any, first: Any = None) -> None:
        """initial_data may be any JSON value."""

    assert plan_for(handler).kwargs(job_context(initial_data=["first"])) == {"initial_data": ["first"]}


def test_unresolvable_parameters_with_defaults_are_not_passed() -> None:
    async def handler(job_id: Any, retries: Any = 3, *, mode: Any = "fast", **extra: Any) -> None:
        """``**extra`` receives nothing."""

    plan = plan_for(handler)
    assert plan.kwargs(job_context()) == {"job_id": "job-1"}
    assert plan.kwargs(job_context(initial_data={"mode": "slow"})) == {"job_id": "job-1", "mode": "slow"}
    assert plan.names == ("job_id", "retries", "mode")


def test_missing_required_argument_names_parameter_state_and_handler() -> None:
    async def render(job_id: Any, output_path: Any) -> None:
        """``output_path`` is nowhere in this job."""

    with pytest.raises(MissingHandlerArgument) as caught:
        plan_for(render).kwargs(job_context(initial_data={"other": 1}))
    message = str(caught.value)
    assert "'output_path'" in message
    assert "state 'step'" in message
    assert "render" in message
    assert isinstance(caught.value, AvtomatikaError)


def test_values_that_are_none_are_still_injected() -> None:
    async def handler(value: Any) -> None:
        """A key holding None is present, not missing."""

    assert plan_for(handler).kwargs(job_context(state_history={"value": None})) == {"value": None}


def test_sync_functions_are_rejected() -> None:
    def not_async(actions: Any) -> None:
        actions.go_to("x")

    with pytest.raises(BlueprintError, match=r"Blueprint 'bp', state 'step': handler '.*not_async' must be"):
        plan_for(not_async)


def test_positional_only_and_var_positional_are_rejected() -> None:
    async def positional(job_id: Any, /) -> None:
        """Cannot be passed by keyword."""

    async def variadic(*args: Any) -> None:
        """Nothing can be injected into *args."""

    with pytest.raises(BlueprintError, match="parameter 'job_id' is positional-only"):
        plan_for(positional)
    with pytest.raises(BlueprintError, match=r"parameter 'args' is \*args"):
        plan_for(variadic)


async def test_plan_arguments_call_the_handler() -> None:
    seen: dict[str, Any] = {}

    async def handler(job_id: str, initial_data: dict[str, Any], actions: ActionFactory) -> None:
        seen.update(job_id=job_id, initial_data=initial_data)
        actions.go_to("end")

    context = job_context(initial_data={"a": 1})
    await handler(**plan_for(handler).kwargs(context))
    assert seen == {"job_id": "job-1", "initial_data": {"a": 1}}
    assert context.actions.next_state == "end"
