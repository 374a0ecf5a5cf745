"""Blueprint mistakes fail the job at once; exceptions from handler code are retried."""

import logging
from collections.abc import Callable
from typing import Any

import pytest

from avtomatika import Blueprint
from avtomatika.blueprints.actions import ActionFactory
from tests.conftest import OrchestratorFactory

STEP_LOGGER = "avtomatika.engine.step"


def two_actions(bp: Blueprint) -> None:
    @bp.handler(is_start=True)
    async def start(actions: ActionFactory) -> None:
        actions.go_to("done")
        actions.go_to("done")

    @bp.handler(is_end=True)
    async def done() -> None:
        return None


def no_action(bp: Blueprint) -> None:
    @bp.handler(is_start=True)
    async def start(job_id: str) -> None:
        return None


def unknown_target(bp: Blueprint) -> None:
    @bp.handler(is_start=True)
    async def start(initial_data: dict[str, Any], actions: ActionFactory) -> None:
        actions.go_to(initial_data["next"])  # computed: registration cannot see it

    @bp.handler(is_end=True)
    async def done() -> None:
        return None


def unresolvable_parameter(bp: Blueprint) -> None:
    @bp.handler(is_start=True)
    async def start(output_path: str, actions: ActionFactory) -> None:
        actions.go_to("done")

    @bp.handler(is_end=True)
    async def done() -> None:
        return None


MISTAKES: dict[str, tuple[Callable[[Blueprint], None], str]] = {
    "two_actions": (two_actions, "Cannot set multiple actions"),
    "no_action": (no_action, "chose no action, and 'start' is not an end state"),
    "unknown_target": (unknown_target, "names 'nowhere', which is not a state of this blueprint"),
    "unresolvable_parameter": (unresolvable_parameter, "needs argument 'output_path'"),
}


def full_text(record: logging.LogRecord) -> str:
    return logging.Formatter().format(record)


@pytest.mark.parametrize("mistake", sorted(MISTAKES))
async def test_blueprint_mistake_fails_the_job_at_once(
    orchestrator: OrchestratorFactory, caplog: pytest.LogCaptureFixture, mistake: str
) -> None:
    define, problem = MISTAKES[mistake]
    bp = Blueprint(name=f"bad_{mistake}", api_version="v1", api_endpoint=f"/jobs/{mistake}")
    define(bp)
    caplog.set_level(logging.WARNING, STEP_LOGGER)
    async with orchestrator(bp, JOB_MAX_RETRIES=3) as orch:
        doc = await orch.wait_for(await orch.create_job(f"/api/v1/jobs/{mistake}", {"next": "nowhere"}))
    assert (doc["status"], doc["retry_count"]) == ("failed", 0)
    message = doc["error_message"]
    assert f"Blueprint 'bad_{mistake}'" in message
    assert "state 'start'" in message
    assert problem in message
    records = [r for r in caplog.records if r.name == STEP_LOGGER]
    assert [r.levelno for r in records] == [logging.ERROR]
    assert records[0].exc_info is not None
    # The handler's own file is named: in the traceback or as the handler's file:line.
    assert __file__ in full_text(records[0])


async def test_mistake_in_the_action_call_has_the_handler_line_in_its_traceback(
    orchestrator: OrchestratorFactory, caplog: pytest.LogCaptureFixture
) -> None:
    bp = Blueprint(name="bad_target", api_version="v1", api_endpoint="/jobs/bad_target")
    unknown_target(bp)
    caplog.set_level(logging.WARNING, STEP_LOGGER)
    async with orchestrator(bp) as orch:
        await orch.wait_for(await orch.create_job("/api/v1/jobs/bad_target", {"next": "nowhere"}))
    (record,) = [r for r in caplog.records if r.name == STEP_LOGGER]
    assert 'actions.go_to(initial_data["next"])' in full_text(record)


async def test_raising_handler_is_retried_then_quarantined_with_tracebacks(
    orchestrator: OrchestratorFactory, caplog: pytest.LogCaptureFixture
) -> None:
    bp = Blueprint(name="raising", api_version="v1", api_endpoint="/jobs/raising")

    @bp.handler(is_start=True)
    async def start(actions: ActionFactory) -> None:
        raise RuntimeError("handler code broke")

    caplog.set_level(logging.WARNING, STEP_LOGGER)
    async with orchestrator(bp, JOB_MAX_RETRIES=2) as orch:
        doc = await orch.wait_for(await orch.create_job("/api/v1/jobs/raising"))
    assert (doc["status"], doc["retry_count"]) == ("quarantined", 2)
    assert "RuntimeError: handler code broke" in doc["error_message"]
    records = [r for r in caplog.records if r.name == STEP_LOGGER]
    assert [r.levelno for r in records] == [logging.WARNING, logging.WARNING, logging.ERROR]
    for record in records:
        assert 'raise RuntimeError("handler code broke")' in full_text(record)
        assert __file__ in full_text(record)


REGISTRATION_LOGGER = "avtomatika.blueprints.blueprint"


def warnings_of(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.name == REGISTRATION_LOGGER]


def test_parameter_only_initial_data_could_supply_is_warned_about_once(
    caplog: pytest.LogCaptureFixture,
) -> None:
    bp = Blueprint(name="no_tasks", api_version="v1", api_endpoint="/jobs/no_tasks")

    @bp.handler(is_start=True)
    async def start(
        intial_data: dict[str, Any], state_history: dict[str, Any], actions: ActionFactory
    ) -> None:
        state_history["seen"] = True
        actions.go_to("done")

    @bp.handler(is_end=True)
    async def done(seen: bool) -> None:
        return None

    caplog.set_level(logging.WARNING, REGISTRATION_LOGGER)
    bp.validate()
    bp.validate()
    (message,) = warnings_of(caplog)
    assert "Blueprint 'no_tasks', state 'start': handler" in message
    assert __file__ in message
    assert "asks for 'intial_data'" in message
    assert "did you mean 'initial_data'?" in message


def test_no_warning_when_a_task_or_an_unknown_write_could_supply_the_parameter(
    caplog: pytest.LogCaptureFixture,
) -> None:
    with_task = Blueprint(name="with_task")

    @with_task.handler(is_start=True)
    async def start(actions: ActionFactory) -> None:
        actions.dispatch_task("t", {}, transitions={"success": "use"})

    @with_task.handler(is_end=True)
    async def use(output_path: str) -> None:
        return None

    computed = Blueprint(name="computed_write")

    @computed.handler(is_start=True)
    async def begin(state_history: dict[str, Any], initial_data: dict[str, Any]) -> None:
        state_history[initial_data["key"]] = 1

    caplog.set_level(logging.WARNING, REGISTRATION_LOGGER)
    with_task.validate()
    computed.validate()
    assert warnings_of(caplog) == []
