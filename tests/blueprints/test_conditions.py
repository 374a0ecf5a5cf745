"""The .when() language: Python semantics for comparisons, never raising on any context."""

import operator
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from avtomatika.blueprints.actions import ActionFactory
from avtomatika.blueprints.conditions import Condition
from avtomatika.blueprints.job_context import ClientConfig, JobContext
from avtomatika.errors import BlueprintError, ConditionError


def job_context(initial_data: Any = None, state_history: Any = None, plan: str = "pro") -> JobContext:
    return JobContext(
        job_id="job-1",
        current_state="decide",
        initial_data={} if initial_data is None else initial_data,
        state_history={} if state_history is None else state_history,
        client=ClientConfig("client-1", plan, {"tier": 2, "regions": ["eu", "us"]}),
        actions=ActionFactory("job-1"),
    )


def check(text: str, context: object = None) -> bool:
    return Condition.parse(text).evaluate(context)


# -- literals and Python semantics -------------------------------------------------------------


def literal(value: Any) -> str:
    """The source text of ``value`` in the condition language."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return repr(value)
    if isinstance(value, str):
        return "'" + value.replace("\\", "\\\\").replace("'", "\\'") + "'"
    return "[" + ", ".join(literal(item) for item in value) + "]"


scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(10**12), max_value=10**12),
    st.floats(allow_nan=False, allow_infinity=False),
    st.text(max_size=6),
)
values = st.recursive(scalars, lambda inner: st.lists(inner, max_size=3), max_leaves=6)

PYTHON_OPERATORS = {
    "==": operator.eq,
    "!=": operator.ne,
    "<": operator.lt,
    "<=": operator.le,
    ">": operator.gt,
    ">=": operator.ge,
    "in": lambda a, b: a in b,
    "not in": lambda a, b: a not in b,
}


def python_result(op: str, left: Any, right: Any) -> bool:
    try:
        return bool(PYTHON_OPERATORS[op](left, right))
    except TypeError:
        return False


@given(left=values, op=st.sampled_from(sorted(PYTHON_OPERATORS)), right=values)
def test_literal_comparisons_agree_with_python(left: Any, op: str, right: Any) -> None:
    assert check(f"{literal(left)} {op} {literal(right)}") is python_result(op, left, right)


@given(left=values, op=st.sampled_from(sorted(PYTHON_OPERATORS)), right=values)
def test_path_comparisons_agree_with_python(left: Any, op: str, right: Any) -> None:
    context = job_context(initial_data={"value": left})
    text = f"context.initial_data.value {op} {literal(right)}"
    assert check(text, context) is python_result(op, left, right)


@given(value=values)
def test_bare_path_is_a_truthiness_test(value: Any) -> None:
    context = job_context(state_history={"x": value})
    assert check("context.state_history.x", context) is bool(value)
    assert check("not context.state_history.x", context) is (not value)


@given(a=st.booleans(), b=st.booleans(), c=st.booleans())
def test_boolean_operators_follow_python_precedence(a: bool, b: bool, c: bool) -> None:
    context = job_context(initial_data={"a": a, "b": b, "c": c})
    paths = "context.initial_data.a or context.initial_data.b and not context.initial_data.c"
    assert check(paths, context) is (a or (b and not c))
    grouped = "(context.initial_data.a or context.initial_data.b) and not context.initial_data.c"
    assert check(grouped, context) is ((a or b) and not c)


def parse_or_error(text: str) -> Condition | ConditionError:
    try:
        return Condition.parse(text)
    except ConditionError as exc:
        return exc


@given(text=st.text(max_size=60))
def test_parse_raises_only_condition_error_on_any_text(text: str) -> None:
    assert isinstance(parse_or_error(text), Condition | ConditionError)


TOKENS = [
    "context.initial_data.a",
    "context.state_history.b.0",
    "context",
    "(",
    ")",
    "[",
    "]",
    ",",
    "and",
    "or",
    "not",
    "in",
    "==",
    "!=",
    "<=",
    ">",
    "=",
    "1",
    "-2.5e3",
    "'x'",
    '"y',
    "true",
    "None",
    "foo",
]


@given(parts=st.lists(st.sampled_from(TOKENS), max_size=14))
def test_parse_raises_only_condition_error_on_token_soup(parts: list[str]) -> None:
    text = " ".join(parts)
    result = parse_or_error(text)
    if isinstance(result, Condition):
        assert result.text == text
        assert isinstance(result.evaluate(job_context({"a": 1})), bool)
    else:
        assert "Invalid condition" in str(result) or "empty" in str(result)


segments = st.sampled_from(["initial_data", "state_history", "client", "params", "plan", "a", "b", "0", "1"])
paths = st.lists(segments, min_size=1, max_size=4).map(lambda parts: "context." + ".".join(parts))
operands = st.one_of(paths, values.map(literal))
comparisons = st.one_of(
    operands,
    st.builds(
        lambda a, op, b: f"{a} {op} {b}", operands, st.sampled_from(sorted(PYTHON_OPERATORS)), operands
    ),
)
conditions = st.recursive(
    comparisons,
    lambda inner: st.one_of(
        st.builds(lambda a, b: f"({a} and {b})", inner, inner),
        st.builds(lambda a, b: f"({a} or {b})", inner, inner),
        st.builds(lambda a: f"not {a}", inner),
    ),
    max_leaves=8,
)


class Hostile:
    """A value whose every comparison, truth test and attribute read fails."""

    def __eq__(self, other: object) -> bool:
        raise RuntimeError("no comparing")

    __hash__ = None  # type: ignore[assignment]

    def __lt__(self, other: object) -> bool:
        raise ValueError("no ordering")

    def __bool__(self) -> bool:
        raise RuntimeError("no truth")

    def __contains__(self, item: object) -> bool:
        raise RuntimeError("no membership")

    def __getattr__(self, name: str) -> Any:
        if name.startswith("__"):
            raise AttributeError(name)
        raise RuntimeError(f"no attribute {name}")

    def __repr__(self) -> str:
        return "Hostile()"


leaves = st.one_of(values, st.builds(Hostile))
trees = st.recursive(
    leaves,
    lambda inner: st.one_of(
        st.lists(inner, max_size=3),
        st.dictionaries(segments, inner, max_size=4),
    ),
    max_leaves=10,
)
contexts = st.one_of(
    trees,
    st.builds(lambda data, history: job_context(data, history), trees, st.dictionaries(segments, trees)),
)


@given(text=conditions, context=contexts)
def test_evaluation_never_raises(text: str, context: object) -> None:
    assert isinstance(check(text, context), bool)


# -- paths -------------------------------------------------------------------------------------


def test_seed_readme_condition_reads_initial_data() -> None:
    condition = Condition.parse("context.initial_data.type == 'urgent'")
    assert condition.evaluate(job_context({"type": "urgent"}))
    assert not condition.evaluate(job_context({"type": "normal"}))
    assert condition.text == "context.initial_data.type == 'urgent'"


def test_client_named_tuple_fields_are_readable() -> None:
    # W-34: the reference raised TypeError here and quarantined the job.
    assert check("context.client.plan == 'pro'", job_context())
    assert check("context.client.params.tier >= 2", job_context())
    assert check("'eu' in context.client.params.regions", job_context())
    assert not check("context.client.plan == 'pro'", job_context(plan="free"))


def test_deep_paths_and_list_indexes() -> None:
    context = job_context(state_history={"a": {"b": {"c": [10, {"d": "x"}]}}})
    assert check("context.state_history.a.b.c.0 == 10", context)
    assert check("context.state_history.a.b.c.1.d == 'x'", context)
    assert not check("context.state_history.a.b.c.5 == 10", context)


def test_dict_keys_are_not_confused_with_dict_methods() -> None:
    assert not check("context.initial_data.items", job_context({"a": 1}))
    assert check("context.initial_data.items", job_context({"items": [1]}))


def test_private_attributes_are_never_read() -> None:
    class Secretive:
        _token = "s3cret"
        visible = "ok"

    assert check("context.visible == 'ok'", Secretive())
    assert not check("context._token == 's3cret'", Secretive())


@pytest.mark.parametrize("op", sorted(PYTHON_OPERATORS))
def test_missing_path_makes_every_comparison_false(op: str) -> None:
    assert check(f"context.initial_data.missing {op} 1", job_context()) is False
    assert check(f"1 {op} context.nothing.here", job_context()) is False


def test_negated_missing_comparison_is_true() -> None:
    assert check("not context.initial_data.missing == 1", job_context())
    assert check("not context.initial_data.missing", job_context())


@pytest.mark.parametrize(
    "text",
    ["context.initial_data.n > 'a'", "context.initial_data.n in 5", "[1] in 'abc'", "null < 1"],
)
def test_type_errors_are_false_not_exceptions(text: str) -> None:
    assert check(text, job_context({"n": 3})) is False


def test_in_and_not_in_with_list_literals() -> None:
    context = job_context({"kind": "video"})
    assert check("context.initial_data.kind in ['video', 'audio',]", context)
    assert check("context.initial_data.kind not in ['image']", context)
    assert check("[1, [2, 3]] == [1, [2, 3]]")


# -- literals ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("true == True", True),
        ("false == False", True),
        ("null == None", True),
        ("1 == 1.0", True),
        ("-3 < -2.5", True),
        ("1e3 == 1000", True),
        (".5 == 0.5", True),
        ("'it\\'s' == \"it's\"", True),
        ("'a\\nb' == \"a\\nb\"", True),
        ("'tab\\there' != 'tabthere'", True),
        ("'back\\\\slash' == 'back\\\\slash'", True),
        ("'' or 0 or [] or null", False),
    ],
)
def test_literals(text: str, expected: bool) -> None:
    assert check(text) is expected


def test_escape_sequences_decode() -> None:
    context = job_context({"s": "line\nnext\t'q' \\ \""})
    assert check("context.initial_data.s == 'line\\nnext\\t\\'q\\' \\\\ \"'", context)


# -- errors ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "position", "problem"),
    [
        ("context", 0, "needs a field"),
        ("x == 1", 0, "unknown name 'x'"),
        ("context.a = 1", 10, "use '=='"),
        ("context.a ==", 12, "expected a value"),
        ("'open", 0, "unterminated string"),
        ("1 < 2 < 3", 6, "chained comparisons"),
        ("(context.a == 1", 15, "expected ')'"),
        ("[1, 2", 5, "expected ']'"),
        ("context.a == 1 1", 15, "expected end of condition"),
        ("context.a == 1 and", 18, "expected a value"),
        ("__import__('os')", 0, "unknown name"),
        ("context.a.", 9, "unexpected character '.'"),
        ("[context.a]", 1, "expected a value"),
        ("9" * 5000, 0, "too long"),
    ],
)
def test_parse_errors_name_text_position_and_problem(text: str, position: int, problem: str) -> None:
    with pytest.raises(ConditionError) as caught:
        Condition.parse(text)
    message = str(caught.value)
    assert f"at position {position}:" in message
    assert problem in message
    assert repr(text[:20])[:-1] in message


def test_condition_error_is_a_blueprint_error() -> None:
    with pytest.raises(BlueprintError):
        Condition.parse("context.a ===")


@pytest.mark.parametrize("text", ["", "   ", None, 42])
def test_empty_or_non_string_conditions_are_rejected(text: Any) -> None:
    with pytest.raises(ConditionError):
        Condition.parse(text)


def test_nesting_is_bounded() -> None:
    assert check("(" * 40 + "true" + ")" * 40)
    with pytest.raises(ConditionError, match="nested deeper"):
        Condition.parse("(" * 100 + "true" + ")" * 100)
    with pytest.raises(ConditionError, match="nested deeper"):
        Condition.parse("not " * 100 + "true")


def test_repr_shows_the_text() -> None:
    assert repr(Condition.parse("context.a == 1")) == "Condition('context.a == 1')"
