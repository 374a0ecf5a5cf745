"""A blueprint's state graph: edges found in handler source code, and its Graphviz export.

Edges come from a static read of each handler (``ast``), because a blueprint is Python code,
not a declaration. The read is honest about its limits: a handler whose source cannot be read,
whose action targets are computed, or that hands ``actions`` to other code is *incomplete*,
and the blueprint then makes no reachability claims from it (features.md W-30). The same read
lists the ``state_history`` keys a handler can add, so registration can tell which handler
parameters nothing but ``initial_data`` could supply.
"""

from __future__ import annotations

import ast
import inspect
import shutil
import subprocess
import textwrap
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any, Final, NamedTuple

# Per action method: (position, keyword, edge kind) of each argument that names target states.
_TARGET_ARGUMENTS: Final[dict[str, tuple[tuple[int, str, str], ...]]] = {
    "go_to": ((0, "state", "go_to"),),
    "dispatch_task": ((2, "transitions", "task"), (3, "event_transitions", "event")),
    "await_human_approval": ((2, "transitions", "human"),),
    "run_blueprint": ((2, "transitions", "child"),),
    "dispatch_parallel": ((1, "aggregate_into", "aggregate"),),
}
_SINGLE_TARGET_KINDS: Final = frozenset({"go_to", "aggregate"})
_OPTIONAL_ARGUMENTS: Final = frozenset({"event_transitions"})
# Uses of ``actions`` that cannot move the job anywhere else.
_HARMLESS_MEMBERS: Final = frozenset(
    {
        "send_event",
        "action",
        "job_id",
        "next_state",
        "task_to_dispatch",
        "sub_blueprint_to_run",
        "parallel_tasks_to_dispatch",
        "pending_events",
    }
)
# Actions after which a worker result, an event or a child summary may add any state_history key.
_OPEN_DATA_ACTIONS: Final = frozenset({"dispatch_task", "dispatch_parallel", "send_event", "run_blueprint"})
# Keys the engine itself writes after an action (features.md §2).
_ACTION_KEYS: Final = {"await_human_approval": "approval_decision"}
# Uses of ``state_history`` that only read it.
_READING_MEMBERS: Final = frozenset({"get", "keys", "values", "items", "copy"})
_LABEL_PREFIX: Final = {"event": "event: ", "human": "decision: ", "child": "child: "}
_RENDER_FORMATS: Final = frozenset({"png", "svg", "pdf"})
_ABSENT: Final = ast.Constant(value=None)


class Edge(NamedTuple):
    """One possible transition. ``kind``: go_to, task, event, human, child or aggregate;
    ``label``: the result status, event type or decision that takes it ("" for go_to)."""

    source: str
    target: str
    kind: str
    label: str


class HandlerScan(NamedTuple):
    edges: tuple[Edge, ...]
    complete: bool  # source read, every target a literal, ``actions`` never handed elsewhere
    # state_history keys the handler (or the action it chooses) can add; None: any key could come.
    history_keys: frozenset[str] | None = None


def _function_node(func: Callable[..., Any]) -> ast.AsyncFunctionDef | ast.FunctionDef | None:
    try:
        module = ast.parse(textwrap.dedent(inspect.getsource(func)))
    except Exception:  # no source (REPL, exec), or source that does not parse on its own
        return None
    for node in module.body:
        if isinstance(node, ast.AsyncFunctionDef | ast.FunctionDef):
            return node
    return None


def _is_actions(node: ast.expr) -> bool:
    """``actions`` or ``context.actions``: the only names under which a handler gets it."""
    if isinstance(node, ast.Name):
        return node.id == "actions"
    return (
        isinstance(node, ast.Attribute)
        and node.attr == "actions"
        and isinstance(node.value, ast.Name)
        and node.value.id == "context"
    )


def _understood_parts(node: ast.Attribute) -> list[int]:
    """Ids of the nodes under ``node`` whose use of ``actions``/``context`` cannot hide a transition."""
    if _is_actions(node.value):
        known = node.attr in _TARGET_ARGUMENTS or node.attr in _HARMLESS_MEMBERS
        return [id(part) for part in ast.walk(node.value)] if known else []
    if isinstance(node.value, ast.Name) and node.value.id == "context" and node.attr != "actions":
        return [id(node.value)]
    return []


def _action_method(node: ast.Call) -> str | None:
    """The action method ``node`` calls (``actions.go_to(...)`` -> ``"go_to"``), if any."""
    if isinstance(node.func, ast.Attribute) and _is_actions(node.func.value):
        return node.func.attr if node.func.attr in _TARGET_ARGUMENTS else None
    return None


def _argument(call: ast.Call, position: int, keyword: str) -> ast.expr | None:
    """The argument node, ``_ABSENT`` when not given, None when unknowable (``*a``/``**kw``)."""
    if any(isinstance(arg, ast.Starred) for arg in call.args) or any(k.arg is None for k in call.keywords):
        return None
    for kw in call.keywords:
        if kw.arg == keyword:
            return kw.value
    return call.args[position] if len(call.args) > position else _ABSENT


def _is_history(node: ast.AST) -> bool:
    """``state_history`` or ``context.state_history``."""
    if isinstance(node, ast.Name):
        return node.id == "state_history"
    return (
        isinstance(node, ast.Attribute)
        and node.attr == "state_history"
        and isinstance(node.value, ast.Name)
        and node.value.id == "context"
    )


def _history_key(use: ast.AST, parent: ast.AST | None) -> str | None:
    """The key of a literal write to ``state_history``, an empty string for a read, else None."""
    if isinstance(parent, ast.Subscript) and parent.value is use:
        key = parent.slice
        if not isinstance(parent.ctx, ast.Store):
            return ""
        return (
            key.value if isinstance(key, ast.Constant) and isinstance(key.value, str) and key.value else None
        )
    if isinstance(parent, ast.Attribute) and parent.value is use:
        return "" if parent.attr in _READING_MEMBERS else None
    if isinstance(parent, ast.Compare) and use in parent.comparators:
        return ""
    return None


def _history_keys(function: ast.AST) -> frozenset[str] | None:
    parents = {id(child): node for node in ast.walk(function) for child in ast.iter_child_nodes(node)}
    keys: set[str] = set()
    for node in ast.walk(function):
        if (
            isinstance(node, ast.Call)
            and isinstance(node.func, ast.Attribute)
            and _is_actions(node.func.value)
        ):
            if node.func.attr in _OPEN_DATA_ACTIONS:
                return None
            if node.func.attr in _ACTION_KEYS:
                keys.add(_ACTION_KEYS[node.func.attr])
        if _is_history(node):
            key = _history_key(node, parents.get(id(node)))
            if key is None:
                return None
            if key:
                keys.add(key)
    return frozenset(keys)


class _Scanner:
    def __init__(self, state: str) -> None:
        self.state = state
        self.edges: list[Edge] = []
        self.complete = True

    def scan(self, function: ast.AST) -> None:
        vetted: set[int] = set()  # ids of Name/Attribute nodes whose use of actions is understood
        for node in ast.walk(function):
            if isinstance(node, ast.Attribute):
                vetted.update(_understood_parts(node))
            if isinstance(node, ast.Call) and (method := _action_method(node)) is not None:
                self._call(method, node)
        for node in ast.walk(function):
            if id(node) not in vetted and self._exposes_actions(node):
                self.complete = False

    @staticmethod
    def _exposes_actions(node: ast.AST) -> bool:
        if isinstance(node, ast.Name):
            return node.id in ("actions", "context")
        return isinstance(node, ast.Attribute) and _is_actions(node)

    def _call(self, method: str, call: ast.Call) -> None:
        for position, keyword, kind in _TARGET_ARGUMENTS[method]:
            node = _argument(call, position, keyword)
            if node is _ABSENT:
                self.complete = self.complete and keyword in _OPTIONAL_ARGUMENTS
                continue
            if kind in _SINGLE_TARGET_KINDS:
                self._target(node, kind, "")
            else:
                self._mapping(node, kind)

    def _target(self, node: ast.expr | None, kind: str, label: str) -> None:
        if isinstance(node, ast.Constant) and isinstance(node.value, str):
            self.edges.append(Edge(self.state, node.value, kind, label))
        else:
            self.complete = False

    def _mapping(self, node: ast.expr | None, kind: str) -> None:
        if isinstance(node, ast.Constant) and node.value is None:
            return
        if not isinstance(node, ast.Dict):
            self.complete = False
            return
        for key, value in zip(node.keys, node.values, strict=True):
            if key is None:  # {**other}
                self.complete = False
                continue
            label = key.value if isinstance(key, ast.Constant) and isinstance(key.value, str) else "?"
            self._target(value, kind, label)


def scan_handler(func: Callable[..., Any], state: str) -> HandlerScan:
    """The transitions ``func`` (a handler of ``state``) can make, read from its source."""
    function = _function_node(func)
    if function is None:
        return HandlerScan((), False)
    scanner = _Scanner(state)
    scanner.scan(function)
    return HandlerScan(tuple(scanner.edges), scanner.complete, _history_keys(function))


def _quote(text: str) -> str:
    escaped = text.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")
    return f'"{escaped}"'


def _attributes(pairs: Iterable[tuple[str, str]]) -> str:
    rendered = ", ".join(f"{key}={value}" for key, value in pairs)
    return f" [{rendered}]" if rendered else ""


def _edge_line(edge: Edge) -> str:
    pairs: list[tuple[str, str]] = []
    if edge.label:
        pairs.append(("label", _quote(_LABEL_PREFIX.get(edge.kind, "") + edge.label)))
    if edge.kind == "aggregate":
        pairs += [("label", '"fan-in"'), ("style", "dashed")]
    elif edge.kind == "event":
        pairs.append(("style", "dotted"))
    return f"  {_quote(edge.source)} -> {_quote(edge.target)}{_attributes(pairs)};"


class Drawing(NamedTuple):
    """What a graph shows of a state machine; the scanner and renderer know nothing else of it."""

    name: str
    states: frozenset[str]
    start: str | None
    ends: frozenset[str]
    edges: list[Edge]


def to_dot(drawing: Drawing) -> str:
    """Graphviz DOT source: rounded boxes, an entry arrow to the start state, end states
    double-bordered, one labelled edge per statically found transition."""
    states = sorted(drawing.states)
    start = drawing.start
    lines = [
        f"digraph {_quote(drawing.name)} {{",
        "  rankdir=LR;",
        '  node [shape=box, style=rounded, fontname="Helvetica"];',
        '  edge [fontname="Helvetica", fontsize=10];',
    ]
    for state in states:
        pairs = [("style", '"rounded,bold"')] if state == start else []
        if state in drawing.ends:
            pairs.append(("peripheries", "2"))
        lines.append(f"  {_quote(state)}{_attributes(pairs)};")
    if start is not None:
        entry = "__start__"
        while entry in drawing.states:
            entry += "_"
        lines.append(f'  {_quote(entry)} [shape=point, width=0.15, label=""];')
        lines.append(f"  {_quote(entry)} -> {_quote(start)};")
    lines.extend(_edge_line(edge) for edge in drawing.edges)
    lines.append("}")
    return "\n".join(lines) + "\n"


def render(drawing: Drawing, path: str | Path, fmt: str = "png") -> Path:
    """Write the graph as ``fmt`` (png, svg or pdf) with Graphviz's ``dot`` program and return
    the file written; ``.{fmt}`` is appended to ``path`` unless it already ends with it."""
    if fmt not in _RENDER_FORMATS:
        raise ValueError(f"Unsupported graph format {fmt!r}; use one of {', '.join(sorted(_RENDER_FORMATS))}")
    dot = shutil.which("dot")
    if dot is None:
        raise RuntimeError(
            "Graphviz is not installed: rendering a file needs its 'dot' program on PATH "
            "(e.g. apt install graphviz); render_graph() without a filename returns DOT text instead"
        )
    target = Path(path)
    if target.suffix != f".{fmt}":
        target = target.with_name(f"{target.name}.{fmt}")
    completed = subprocess.run(
        [dot, f"-T{fmt}", "-o", str(target)],
        input=to_dot(drawing).encode(),
        capture_output=True,
        check=False,
        timeout=120,
    )
    if completed.returncode != 0:
        message = completed.stderr.decode(errors="replace").strip()
        raise RuntimeError(f"Graphviz 'dot' failed for blueprint '{drawing.name}': {message}")
    return target
