"""Static edge discovery in handler source, and the Graphviz export of a blueprint."""

import re
import shutil
from pathlib import Path
from typing import Any

import pytest

from avtomatika.blueprints import graph
from avtomatika.blueprints.actions import ActionFactory
from avtomatika.blueprints.blueprint import Blueprint
from avtomatika.blueprints.graph import Edge, scan_handler
from avtomatika.blueprints.job_context import JobContext
from tests.conftest import require

# -- scanning ------------------------------------------------------------------------------------


def test_scan_finds_every_kind_of_target() -> None:
    async def handler(actions: ActionFactory, context: JobContext) -> None:
        if context.initial_data:
            actions.go_to("a")
        elif context.state_history:
            actions.dispatch_task("t", {}, {"success": "b", "needs_review": "c"}, {"stalled": "d"})
        elif context.job_id:
            context.actions.await_human_approval(None, None, transitions={"yes": "e"})
        elif context.webhook_url:
            actions.run_blueprint("child", {}, transitions={"failure": "f"})
        else:
            actions.dispatch_parallel(
                tasks=[{"type": "x", "transitions": {"success": "z"}}], aggregate_into="g"
            )
        actions.send_event("note", {})

    scan = scan_handler(handler, "s")
    assert scan.complete
    assert scan.edges == (
        Edge("s", "a", "go_to", ""),
        Edge("s", "b", "task", "success"),
        Edge("s", "c", "task", "needs_review"),
        Edge("s", "d", "event", "stalled"),
        Edge("s", "e", "human", "yes"),
        Edge("s", "f", "child", "failure"),
        Edge("s", "g", "aggregate", ""),
    )


def test_scan_of_a_handler_without_actions_is_complete_and_empty() -> None:
    async def end(context: JobContext) -> None:
        print(context.job_id, context.state_history.get("x"))

    assert scan_handler(end, "end") == graph.HandlerScan((), True, frozenset())


async def _computed(actions: ActionFactory, initial_data: dict[str, Any]) -> None:
    actions.go_to(initial_data["next"])


async def _computed_transitions(actions: ActionFactory, table: dict[str, str]) -> None:
    actions.dispatch_task("t", {}, table)


async def _spread(actions: ActionFactory, extra: dict[str, str]) -> None:
    actions.dispatch_task("t", {}, {"success": "ok", **extra})


async def _star_kwargs(actions: ActionFactory, options: dict[str, Any]) -> None:
    actions.dispatch_task("t", {}, **options)


async def _escaping_actions(actions: ActionFactory) -> None:
    helper = actions
    helper.go_to("hidden")


async def _escaping_context(context: JobContext) -> None:
    print(context)


async def _missing_transitions(actions: ActionFactory) -> None:
    actions.dispatch_task("t", {})  # type: ignore[call-arg]


@pytest.mark.parametrize(
    "handler",
    [
        _computed,
        _computed_transitions,
        _spread,
        _star_kwargs,
        _escaping_actions,
        _escaping_context,
        _missing_transitions,
    ],
)
def test_scan_is_incomplete_when_targets_may_be_hidden(handler: Any) -> None:
    assert not scan_handler(handler, "s").complete


def test_scan_keeps_known_targets_of_an_incomplete_handler() -> None:
    scan = scan_handler(_spread, "s")
    assert scan.edges == (Edge("s", "ok", "task", "success"),)


def test_scan_without_source_is_incomplete() -> None:
    namespace: dict[str, Any] = {}
    exec("async def h(actions):\n    actions.go_to('x')\n", namespace)
    assert scan_handler(namespace["h"], "s") == graph.HandlerScan((), False)


# -- DOT export ----------------------------------------------------------------------------------

NODE_RE = re.compile(r'^  "((?:[^"\\]|\\.)*)"(?: \[(.*)\])?;$')
EDGE_RE = re.compile(r'^  "((?:[^"\\]|\\.)*)" -> "((?:[^"\\]|\\.)*)"(?: \[(.*)\])?;$')


def parse_dot(text: str) -> tuple[dict[str, str], list[tuple[str, str, str]]]:
    """A small structural reader of our DOT output: nodes with attributes, and edges."""
    lines = text.strip().splitlines()
    assert re.fullmatch(r'digraph "[^"]+" \{', lines[0])
    assert lines[-1] == "}"
    nodes: dict[str, str] = {}
    edges: list[tuple[str, str, str]] = []
    for line in lines[1:-1]:
        if edge := EDGE_RE.match(line):
            edges.append((edge[1], edge[2], edge[3] or ""))
        elif node := NODE_RE.match(line):
            nodes[node[1]] = node[2] or ""
        else:
            assert re.fullmatch(r"  (rankdir=LR|node \[.*\]|edge \[.*\]);", line), line
    return nodes, edges


def pipeline() -> Blueprint:
    bp = Blueprint("pipeline")

    @bp.handler(is_start=True)
    async def ingest(actions: ActionFactory) -> None:
        actions.dispatch_task("scan", {}, {"success": "split", "failure": "failed"}, {"stalled": "ask"})

    @bp.handler
    async def split(actions: ActionFactory) -> None:
        actions.dispatch_parallel([{"task_type": "part"}], aggregate_into="merge")

    @bp.aggregator
    async def merge(actions: ActionFactory) -> None:
        actions.go_to("done")

    @bp.handler
    async def ask(actions: ActionFactory) -> None:
        actions.await_human_approval("slack", "ok?", {"approve": "done", "reject": "failed"})

    @bp.handler(is_end=True)
    async def done() -> None:
        """Success."""

    @bp.handler(is_end=True)
    async def failed() -> None:
        """Failure."""

    bp.validate()
    return bp


def test_dot_has_every_state_and_every_found_edge() -> None:
    bp = pipeline()
    nodes, edges = parse_dot(graph.to_dot(bp.drawing()))
    assert set(nodes) == bp.states | {"__start__"}
    found: dict[str, set[str]] = {state: set() for state in bp.states}
    for source, target, _ in edges:
        if source != "__start__":
            found[source].add(target)
    assert found == bp.transitions()


def test_dot_marks_start_end_and_labels_edges() -> None:
    nodes, edges = parse_dot(graph.to_dot(pipeline().drawing()))
    assert "bold" in nodes["ingest"]
    assert "peripheries=2" in nodes["done"]
    assert "peripheries=2" in nodes["failed"]
    assert "peripheries" not in nodes["split"]
    assert "shape=point" in nodes["__start__"]
    assert ("__start__", "ingest", "") in edges
    assert ("ingest", "split", 'label="success"') in edges
    assert ("ingest", "ask", 'label="event: stalled", style=dotted') in edges
    assert ("ask", "done", 'label="decision: approve"') in edges
    assert ("split", "merge", 'label="fan-in", style=dashed') in edges
    assert ("merge", "done", "") in edges


def test_dot_quotes_unusual_state_names_and_avoids_entry_clashes() -> None:
    bp = Blueprint("odd")

    @bp.handler('say "hi"\\now', is_start=True)
    async def first(actions: ActionFactory) -> None:
        actions.go_to("__start__")

    bp.handler("__start__", is_end=True)(first)
    nodes, edges = parse_dot(graph.to_dot(bp.drawing()))
    assert 'say \\"hi\\"\\\\now' in nodes
    assert "__start__" in nodes
    assert "__start___" in nodes
    assert ("__start___", 'say \\"hi\\"\\\\now', "") in edges


def test_dot_of_an_unfinished_blueprint_has_no_entry_arrow() -> None:
    bp = Blueprint("draft")
    bp.handler("only")(_end)
    nodes, edges = parse_dot(graph.to_dot(bp.drawing()))
    assert set(nodes) == {"only"}
    assert edges == []


async def _end() -> None:
    """A state without actions."""


# -- rendering -----------------------------------------------------------------------------------


def test_render_without_graphviz_says_so(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setattr(graph.shutil, "which", lambda name: None)
    with pytest.raises(RuntimeError, match="Graphviz is not installed"):
        pipeline().render_graph(tmp_path / "g", "png")
    assert list(tmp_path.iterdir()) == []


def test_render_rejects_unknown_formats(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="Unsupported graph format 'gif'"):
        graph.render(pipeline().drawing(), tmp_path / "g", "gif")


def test_render_svg_and_png(tmp_path: Path) -> None:
    require(shutil.which("dot") is not None, "Graphviz 'dot' is not installed")
    bp = pipeline()
    svg = graph.render(bp.drawing(), tmp_path / "flow", "svg")
    assert svg == tmp_path / "flow.svg"
    text = svg.read_text()
    assert "<svg" in text
    assert ">ingest<" in text
    assert bp.render_graph(tmp_path / "flow.png") is None
    assert (tmp_path / "flow.png").read_bytes().startswith(b"\x89PNG\r\n\x1a\n")


def test_scan_lists_the_state_history_keys_a_handler_can_add() -> None:
    async def literal(state_history: dict[str, Any], context: JobContext, actions: ActionFactory) -> None:
        state_history["a"] = state_history.get("b")
        context.state_history["c"] += 1
        if "d" in state_history:
            actions.await_human_approval(None, None, transitions={"yes": "s"})

    async def dispatching(actions: ActionFactory) -> None:
        actions.dispatch_task("t", {}, transitions={"success": "s"})

    async def updating(state_history: dict[str, Any]) -> None:
        state_history.update({"x": 1})

    assert scan_handler(literal, "s").history_keys == {"a", "c", "approval_decision"}
    assert scan_handler(dispatching, "s").history_keys is None
    assert scan_handler(updating, "s").history_keys is None
