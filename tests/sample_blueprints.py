"""Blueprints shared by the tests."""

from typing import Any

from avtomatika import Blueprint
from avtomatika.blueprints.actions import ActionFactory


def echo_blueprint(name: str = "echo", task_type: str = "echo", **dispatch: Any) -> Blueprint:
    """start -> dispatch one task -> done."""
    bp = Blueprint(name=name, api_version="v1", api_endpoint=f"/jobs/{name}")

    @bp.handler(is_start=True)
    async def start(initial_data: dict[str, Any], actions: ActionFactory) -> None:
        actions.dispatch_task(
            task_type=task_type, params=initial_data, transitions={"success": "done"}, **dispatch
        )

    @bp.handler(is_end=True)
    async def done() -> None:
        return None

    return bp


def fan_out_blueprint(name: str = "fan", task_type: str = "square") -> Blueprint:
    """start -> N parallel tasks -> aggregator (sums values) -> done."""
    bp = Blueprint(name=name, api_version="v1", api_endpoint=f"/jobs/{name}")

    @bp.handler(is_start=True)
    async def start(initial_data: dict[str, Any], actions: ActionFactory) -> None:
        actions.dispatch_parallel(
            tasks=[{"task_type": task_type, "params": {"n": n}} for n in initial_data["numbers"]],
            aggregate_into="collect",
        )

    @bp.aggregator
    async def collect(
        aggregation_results: dict[str, Any], state_history: dict[str, Any], actions: ActionFactory
    ) -> None:
        state_history["runs"] = state_history.get("runs", 0) + 1
        state_history["branches"] = len(aggregation_results)
        state_history["total"] = sum(
            r["data"]["value"] for r in aggregation_results.values() if r["status"] == "success"
        )
        actions.go_to("done")

    @bp.handler(is_end=True)
    async def done() -> None:
        return None

    return bp


def approval_blueprint() -> Blueprint:
    """start waits for a human: ``approved`` -> shipped, ``rejected`` -> dropped."""
    bp = Blueprint(name="review", api_version="v1", api_endpoint="/jobs/review")

    @bp.handler(is_start=True)
    async def start(actions: ActionFactory) -> None:
        actions.await_human_approval(
            integration="email",
            message="Ship it?",
            transitions={"approved": "shipped", "rejected": "dropped"},
        )

    @bp.handler(is_end=True)
    async def shipped() -> None:
        return None

    @bp.handler(is_end=True)
    async def dropped() -> None:
        return None

    return bp
