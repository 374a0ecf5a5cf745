"""Blueprint definition, handler selection and the integrity checks of validate()."""

from types import SimpleNamespace
from typing import Any

import pytest

from avtomatika.blueprints.actions import ActionFactory, GoTo
from avtomatika.blueprints.blueprint import Blueprint, HandlerEntry
from avtomatika.blueprints.datastore import AsyncDictStore
from avtomatika.blueprints.job_context import ClientConfig, JobContext
from avtomatika.errors import BlueprintError, ConditionError


def job_context(state: str, initial_data: Any = None, plan: str = "free", **fields: Any) -> JobContext:
    return JobContext(
        job_id="job-1",
        current_state=state,
        initial_data={} if initial_data is None else initial_data,
        state_history=fields.pop("state_history", {}),
        client=ClientConfig("client-1", plan, {}),
        actions=ActionFactory("job-1"),
        **fields,
    )


async def run(
    bp: Blueprint, state: str, initial_data: Any = None, *, aggregate: bool = False
) -> ActionFactory:
    context = job_context(state, initial_data, data_stores=bp.data_stores_namespace)
    await bp.select(state, context, aggregate=aggregate).invoke(context)
    return context.actions


# -- the seed README -----------------------------------------------------------------------------


def quick_start() -> Blueprint:
    bp = Blueprint(name="bp", api_version="v1", api_endpoint="/jobs/my_flow")

    @bp.handler(is_start=True)
    async def start(job_id: str, initial_data: dict, actions: ActionFactory):
        """The initial state for each new job."""
        print(f"Job {job_id} | Start: {initial_data}")
        actions.go_to("end")

    @bp.handler(is_end=True)
    async def end(context):
        """The final state. The pipeline ends here."""
        print(f"Job {context.job_id} | Complete.")

    return bp


async def test_seed_quick_start_validates_and_runs(capsys: pytest.CaptureFixture[str]) -> None:
    bp = quick_start()
    bp.validate()
    assert (bp.name, bp.api_version, bp.api_endpoint) == ("bp", "v1", "/jobs/my_flow")
    assert bp.start_state == "start"
    assert bp.end_states == {"end"}
    assert bp.states == {"start", "end"}
    assert bp.transitions() == {"start": {"end"}, "end": set()}
    actions = await run(bp, "start", {"x": 1})
    assert actions.action == GoTo("end")
    assert (await run(bp, "end")).action is None
    assert capsys.readouterr().out == "Job job-1 | Start: {'x': 1}\nJob job-1 | Complete.\n"


def when_example() -> Blueprint:
    bp = Blueprint("conditional")

    @bp.handler().when("context.initial_data.type == 'urgent'")
    async def decision_step(actions):
        actions.go_to("urgent_processing")

    @bp.handler
    async def decision_step(actions):  # noqa: F811 - the README's pattern: one name, two handlers
        actions.go_to("normal_processing")

    @bp.handler(is_start=True)
    async def begin(actions: ActionFactory) -> None:
        actions.go_to("decision_step")

    for name in ("urgent_processing", "normal_processing"):
        bp.handler(name, is_end=True)(_noop)
    return bp


async def _noop() -> None:
    """An end state that does nothing."""


async def _finish(actions: ActionFactory) -> None:
    actions.go_to("done")


async def test_seed_when_example_selects_by_condition() -> None:
    bp = when_example()
    bp.validate()
    assert (await run(bp, "decision_step", {"type": "urgent"})).next_state == "urgent_processing"
    assert (await run(bp, "decision_step", {"type": "normal"})).next_state == "normal_processing"
    assert (await run(bp, "decision_step", [1, 2])).next_state == "normal_processing"
    assert [entry.condition.text for entry in bp.conditional_handlers if entry.condition] == [
        "context.initial_data.type == 'urgent'"
    ]


def fan_out_example() -> Blueprint:
    bp = Blueprint("fan_out")

    @bp.handler(is_start=True)
    async def process_files(initial_data, actions):
        tasks_to_dispatch = [
            {"task_type": "file_analysis", "params": {"file": file}} for file in initial_data.get("files", [])
        ]
        actions.dispatch_parallel(tasks=tasks_to_dispatch, aggregate_into="aggregate_results")

    @bp.aggregator
    async def aggregate_results(aggregation_results, state_history, actions):
        summary = [res.get("data") for res in aggregation_results.values()]
        state_history["summary"] = summary
        actions.go_to("processing_complete")

    bp.handler("processing_complete", is_end=True)(_noop)
    return bp


async def test_seed_fan_out_example_validates_and_aggregates() -> None:
    bp = fan_out_example()
    bp.validate()
    assert bp.transitions()["process_files"] == {"aggregate_results"}
    actions = await run(bp, "process_files", {"files": ["a", "b"]})
    assert actions.parallel_tasks_to_dispatch is not None
    assert len(actions.parallel_tasks_to_dispatch["tasks"]) == 2

    history: dict[str, Any] = {}
    context = job_context(
        "aggregate_results",
        state_history=history,
        aggregation_results={"t1": {"data": 1}, "t2": {"data": 2}},
    )
    entry = bp.select("aggregate_results", context, aggregate=True)
    await entry.invoke(context)
    assert history == {"summary": [1, 2]}
    assert context.actions.next_state == "processing_complete"


class FakeRedis:
    """Stands in for ``redis.asyncio.Redis(decode_responses=True)`` of the README."""

    async def get(self, key: str) -> str:
        return f"value of {key}"

    def copy(self) -> None:
        raise AssertionError("a client must not be copied (W-31)")


async def test_seed_data_store_with_a_client_object_is_kept_as_is(capsys: pytest.CaptureFixture[str]) -> None:
    redis_client = FakeRedis()
    bp = Blueprint("blueprint_with_datastore", data_stores={"cache": redis_client})

    @bp.handler(is_start=True)
    async def get_from_cache(data_stores):
        user_data = await data_stores.cache.get("user:123")
        print(f"User from cache: {user_data}")

    bp.validate()
    assert bp.data_stores["cache"] is redis_client
    assert bp.data_stores_namespace.cache is redis_client
    await run(bp, "get_from_cache")
    assert capsys.readouterr().out == "User from cache: value of user:123\n"


async def test_dict_data_stores_are_wrapped_and_stores_kept() -> None:
    store = AsyncDictStore({"k": 1})
    bp = Blueprint("stores", data_stores={"plain": {"a": 1}, "ready": store})
    bp.add_data_store("late", {})
    assert isinstance(bp.data_stores["plain"], AsyncDictStore)
    assert await bp.data_stores["plain"].get("a") == 1
    assert bp.data_stores["ready"] is store
    namespace = bp.data_stores_namespace
    assert isinstance(namespace, SimpleNamespace)
    assert namespace is bp.data_stores_namespace
    assert {"plain", "ready", "late"} == set(vars(namespace))
    with pytest.raises(BlueprintError, match="data store 'late' already exists"):
        bp.add_data_store("late", {})
    with pytest.raises(BlueprintError, match="is not an identifier"):
        bp.add_data_store("not valid", {})


async def test_async_dict_store_operations_and_isolation() -> None:
    initial = {"a": 1}
    store = AsyncDictStore(initial)
    await store.set("b", 2)
    assert initial == {"a": 1}
    assert await store.get("b") == 2
    assert await store.get("missing", "fallback") == "fallback"
    assert sorted(await store.keys()) == ["a", "b"]
    assert await store.delete("a") is True
    assert await store.delete("a") is False
    assert await store.keys() == ["b"]
    assert repr(store) == "AsyncDictStore(1 keys)"


# -- construction and registration -----------------------------------------------------------


@pytest.mark.parametrize("name", ["", "has space", "slash/name", None, "ü"])
def test_invalid_blueprint_names(name: Any) -> None:
    with pytest.raises(BlueprintError, match="Blueprint name"):
        Blueprint(name)


def test_endpoint_gets_a_leading_slash_and_versions_are_checked() -> None:
    assert Blueprint("a-b.c_1", api_endpoint="jobs/run").api_endpoint == "/jobs/run"
    assert Blueprint("x").api_endpoint is None
    with pytest.raises(BlueprintError, match="api_endpoint"):
        Blueprint("x", api_endpoint="/")
    with pytest.raises(BlueprintError, match="api_version"):
        Blueprint("x", api_version="v 1")


def test_decorators_return_the_original_function() -> None:
    bp = Blueprint("deco")

    async def first(actions: ActionFactory) -> None:
        actions.go_to("second")

    async def second() -> None:
        """End."""

    async def gathered() -> None:
        """Aggregator."""

    assert bp.handler(first) is first
    assert bp.handler("second", is_end=True)(second) is second
    assert bp.handler("first").when("context.initial_data.x")(first) is first
    assert bp.aggregator(gathered) is gathered
    assert bp.aggregator("named")(gathered) is gathered
    assert bp.event("progress", {"type": "object"})(first) is first
    assert bp.handlers == {"first": first, "second": second}
    assert bp.aggregator_handlers == {"gathered": gathered, "named": gathered}
    assert bp.events_schema == {"progress": {"type": "object"}}


def test_when_also_applies_start_and_end_flags() -> None:
    # The reference ignored is_start/is_end combined with .when().
    bp = Blueprint("flags")

    @bp.handler("begin", is_start=True).when("context.initial_data.fast")
    async def fast(actions: ActionFactory) -> None:
        actions.go_to("done")

    @bp.handler("done", is_end=True).when("true")
    async def done() -> None:
        """End."""

    assert bp.start_state == "begin"
    assert bp.is_end("done")


def test_duplicates_are_rejected_with_blueprint_and_state() -> None:
    bp = Blueprint("dups")

    @bp.handler("s", is_start=True)
    async def one() -> None:
        """First."""

    with pytest.raises(BlueprintError, match="Blueprint 'dups': state 's' already has a default handler"):
        bp.handler("s")(one)
    with pytest.raises(BlueprintError, match="Blueprint 'dups': state 't' cannot be a second start state"):
        bp.handler("t", is_start=True)(one)
    assert not bp.has_state("t")
    bp.aggregator("s")(one)
    with pytest.raises(BlueprintError, match="Blueprint 'dups': state 's' already has an aggregator"):
        bp.aggregator("s")(one)
    bp.event("e", {})
    with pytest.raises(BlueprintError, match="event 'e' is already declared"):
        bp.event("e", {})


def test_bad_conditions_and_sync_handlers_fail_at_decoration() -> None:
    bp = Blueprint("early")

    async def handler() -> None:
        """Unused."""

    with pytest.raises(ConditionError, match=r"Blueprint 'early', state 'handler': Invalid condition"):
        bp.handler().when("context.initial_data.type = 'x'")(handler)

    def sync_handler() -> None:
        """Not a coroutine function."""

    with pytest.raises(BlueprintError, match=r"Blueprint 'early', state 'sync_handler'.*async def"):
        bp.handler(sync_handler)
    with pytest.raises(BlueprintError, match="state name"):
        bp.handler("")(handler)
    assert bp.states == set()


# -- selection ----------------------------------------------------------------------------------


def test_select_order_aggregate_conditions_default() -> None:
    bp = Blueprint("select")

    @bp.handler("s").when("context.client.plan == 'pro'")
    async def pro() -> None:
        """First matching condition wins."""

    @bp.handler("s").when("context.client.plan in ['pro', 'team']")
    async def team() -> None:
        """Second condition."""

    @bp.handler("s")
    async def default() -> None:
        """No condition matched."""

    @bp.aggregator("s")
    async def fan_in() -> None:
        """Fan-in step."""

    def pick(plan: str, aggregate: bool = False) -> str:
        entry = bp.select("s", job_context("s", plan=plan), aggregate=aggregate)
        assert isinstance(entry, HandlerEntry)
        assert entry.state == "s"
        return entry.func.__name__

    assert pick("pro") == "pro"
    assert pick("team") == "team"
    assert pick("free") == "default"
    assert pick("free", aggregate=True) == "fan_in"
    assert bp.find_handler("s", job_context("s", plan="team")).__name__ == "team"


def test_select_without_a_matching_handler() -> None:
    bp = Blueprint("sparse")

    @bp.handler("only_when").when("context.initial_data.ok == true")
    async def only_when() -> None:
        """Conditional handler without a default."""

    assert bp.select("only_when", job_context("only_when", {"ok": True}), aggregate=True).func is only_when
    with pytest.raises(BlueprintError, match="'sparse' has no handler for state 'only_when' matching"):
        bp.select("only_when", job_context("only_when", {"ok": False}), aggregate=False)
    with pytest.raises(BlueprintError, match="state 'ghost'"):
        bp.select("ghost", job_context("ghost"), aggregate=False)


def test_get_handler_params() -> None:
    bp = quick_start()
    assert bp.get_handler_params(bp.handlers["start"]) == ("job_id", "initial_data", "actions")
    assert bp.get_handler_params(bp.handlers["end"]) == ("context",)
    with pytest.raises(BlueprintError, match="not one of its handlers"):
        bp.get_handler_params(_noop)


# -- integrity ----------------------------------------------------------------------------------


def test_validate_requires_a_start_state() -> None:
    bp = Blueprint("no_start")
    bp.handler("a")(_noop)
    with pytest.raises(BlueprintError, match="Blueprint 'no_start' has no start state"):
        bp.validate()


def test_dangling_go_to_names_blueprint_state_and_target() -> None:
    bp = Blueprint("x")

    @bp.handler("a", is_start=True)
    async def a(actions: ActionFactory) -> None:
        actions.go_to("b")

    with pytest.raises(BlueprintError) as caught:
        bp.validate()
    assert str(caught.value) == "Blueprint 'x': state 'a' transitions to unknown state 'b'"


def dangling_dispatch(bp: Blueprint) -> None:
    @bp.handler(is_start=True)
    async def start(actions: ActionFactory) -> None:
        actions.dispatch_task("skill", {}, {"success": "done", "needs_review": "review"})


def dangling_event(bp: Blueprint) -> None:
    @bp.handler(is_start=True)
    async def start(context: JobContext) -> None:
        context.actions.dispatch_task(
            task_type="skill", params={}, transitions={"success": "done"}, event_transitions={"hi": "review"}
        )


def dangling_human(bp: Blueprint) -> None:
    @bp.handler(is_start=True)
    async def start(actions: ActionFactory) -> None:
        actions.await_human_approval("slack", "ok?", transitions={"approved": "done", "rejected": "review"})


def dangling_child(bp: Blueprint) -> None:
    @bp.handler(is_start=True)
    async def start(actions: ActionFactory) -> None:
        actions.run_blueprint("child", {}, {"success": "done", "failure": "review"})


def dangling_fan_in(bp: Blueprint) -> None:
    @bp.handler(is_start=True)
    async def start(actions: ActionFactory) -> None:
        actions.dispatch_parallel([{"type": "skill"}], aggregate_into="review")


@pytest.mark.parametrize(
    "define", [dangling_dispatch, dangling_event, dangling_human, dangling_child, dangling_fan_in]
)
def test_every_kind_of_literal_target_is_checked(define: Any) -> None:
    bp = Blueprint("kinds")
    define(bp)
    bp.handler("done", is_end=True)(_noop)
    with pytest.raises(BlueprintError, match="'kinds': state 'start' transitions to unknown state 'review'"):
        bp.validate()
    bp.handler("review", is_end=True)(_noop)
    if define is dangling_fan_in:
        bp.aggregator("review")(_finish)
    bp.validate()


def test_unreachable_states_are_named_when_every_target_is_known() -> None:
    bp = Blueprint("island")

    @bp.handler(is_start=True)
    async def start(actions: ActionFactory) -> None:
        actions.go_to("end")

    bp.handler("end", is_end=True)(_noop)
    bp.handler("orphan")(_noop)
    bp.handler("lost", is_end=True)(_noop)
    with pytest.raises(BlueprintError) as caught:
        bp.validate()
    assert str(caught.value) == (
        "Blueprint 'island': unreachable states 'lost', 'orphan'; "
        "no transition from the start state 'start' leads to them"
    )


def test_computed_targets_skip_the_reachability_check() -> None:
    # W-30: the reference rejected this valid blueprint.
    bp = Blueprint("computed")

    @bp.handler(is_start=True)
    async def start(initial_data: dict[str, Any], actions: ActionFactory) -> None:
        actions.go_to(initial_data["route"])

    bp.handler("left", is_end=True)(_noop)
    bp.handler("right", is_end=True)(_noop)
    bp.validate()


def test_actions_handed_to_a_helper_skip_the_reachability_check() -> None:
    bp = Blueprint("helper")

    def route(actions: ActionFactory) -> None:
        actions.go_to("elsewhere")

    @bp.handler(is_start=True)
    async def start(actions: ActionFactory) -> None:
        route(actions)

    bp.handler("elsewhere", is_end=True)(_noop)
    bp.validate()


def test_handlers_without_source_skip_the_reachability_check() -> None:
    bp = Blueprint("repl")
    namespace: dict[str, Any] = {}
    exec("async def start(actions):\n    actions.go_to('later')\n", namespace)
    bp.handler(namespace["start"], is_start=True)
    bp.handler("later", is_end=True)(_noop)
    bp.validate()
    assert bp.transitions() == {"start": set(), "later": set()}


def test_event_only_states_are_reachable() -> None:
    bp = Blueprint("events")

    @bp.handler(is_start=True)
    async def start(actions: ActionFactory) -> None:
        actions.dispatch_task("skill", {}, {"success": "done"}, {"needs_input": "ask_user"})

    bp.handler("ask_user", is_end=True)(_noop)
    bp.handler("done", is_end=True)(_noop)
    bp.validate()
    assert bp.transitions()["start"] == {"done", "ask_user"}


def test_branch_transitions_inside_dispatch_parallel_are_ignored() -> None:
    bp = Blueprint("branches")

    @bp.handler(is_start=True)
    async def start(actions: ActionFactory) -> None:
        actions.dispatch_parallel(
            [{"type": "a", "transitions": {"success": "nowhere"}}, {"task_type": "b"}], "gather"
        )

    @bp.aggregator
    async def gather(actions: ActionFactory) -> None:
        actions.go_to("done")

    bp.handler("done", is_end=True)(_noop)
    bp.validate()


def test_aggregator_must_be_a_fan_in_target() -> None:
    bp = Blueprint("agg")

    @bp.handler(is_start=True)
    async def start(actions: ActionFactory) -> None:
        actions.go_to("collect")

    bp.aggregator("collect")(_noop)
    with pytest.raises(BlueprintError, match="'agg': aggregator state 'collect' is not the aggregate_into"):
        bp.validate()


def test_conditional_handlers_contribute_edges() -> None:
    bp = when_example()
    assert bp.transitions()["decision_step"] == {"urgent_processing", "normal_processing"}
    assert {edge.kind for edge in bp.edges()} == {"go_to"}


def test_render_graph_returns_dot_without_a_filename() -> None:
    text = quick_start().render_graph()
    assert text.startswith('digraph "bp" {')
    assert '"start" -> "end";' in text
