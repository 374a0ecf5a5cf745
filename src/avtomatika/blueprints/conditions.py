"""The ``.when()`` condition language: parsed once into closures, never ``eval``-ed.

Grammar (lowest precedence first)::

    expr       := and_expr ("or" and_expr)*
    and_expr   := not_expr ("and" not_expr)*
    not_expr   := "not" not_expr | comparison
    comparison := operand [("==" | "!=" | "<" | "<=" | ">" | ">=" | "in" | "not" "in") operand]
    operand    := literal | list | path | "(" expr ")"
    list       := "[" [item ("," item)* [","]] "]"      (items are literals or lists)
    literal    := 'str' | "str" | int | float | true | false | null | True | False | None
    path       := "context" ("." name)+                  (a name may be digits: a list index)

A path walks dicts by key, sequences by index and other objects (``JobContext``, the
``ClientConfig`` named tuple) by attribute; attributes starting with ``_`` are never read.

Evaluation never raises (features.md W-34: in the reference a condition on
``context.client.plan`` or a type mismatch raised during handler lookup and quarantined the
job). Instead a comparison whose path is missing, or whose operands Python cannot compare,
is False, and a bare path is a truthiness test that is False when the path is missing.
"""

from __future__ import annotations

import operator
import re
from collections.abc import Callable, Mapping, Sequence
from typing import Any, Final, NamedTuple

from avtomatika.errors import ConditionError

_Evaluator = Callable[[object], object]

_MAX_DEPTH: Final = 64
_MISSING: Final = object()

_TOKEN_RE: Final = re.compile(
    r"""
    (?P<space>\s+)
    |(?P<number>-?(?:\d+\.\d*|\.\d+|\d+)(?:[eE][+-]?\d+)?)
    |(?P<name>[A-Za-z_]\w*(?:\.(?:[A-Za-z_]\w*|\d+))*)
    |(?P<op>==|!=|<=|>=|<|>)
    |(?P<punct>[()\[\],])
    |(?P<quote>['"])
    """,
    re.VERBOSE | re.ASCII,
)
_WORDS: Final = frozenset({"and", "or", "not", "in"})
_LITERAL_WORDS: Final[dict[str, object]] = {
    "true": True,
    "false": False,
    "null": None,
    "True": True,
    "False": False,
    "None": None,
}
_ESCAPES: Final = {"n": "\n", "t": "\t", "r": "\r"}


def _is_in(item: Any, container: Any) -> bool:
    return item in container


def _not_in(item: Any, container: Any) -> bool:
    return item not in container


_COMPARATORS: Final[dict[str, Callable[[Any, Any], Any]]] = {
    "==": operator.eq,
    "!=": operator.ne,
    "<": operator.lt,
    "<=": operator.le,
    ">": operator.gt,
    ">=": operator.ge,
    "in": _is_in,
    "not in": _not_in,
}


class _Token(NamedTuple):
    kind: str  # "literal", "path", "op", "and", "or", "not", "in", "(", ")", "[", "]", ",", "end"
    value: Any
    pos: int
    lexeme: str


def _error(text: str, pos: int, problem: str) -> ConditionError:
    shown = text if len(text) <= 200 else text[:200] + "..."
    return ConditionError(f"Invalid condition {shown!r} at position {pos}: {problem}")


def _describe(token: _Token) -> str:
    return token.lexeme if token.kind == "end" else repr(token.lexeme)


def _scan_string(text: str, start: int) -> tuple[str, int]:
    """Read a quoted string starting at ``start``; ``\\n``, ``\\t``, ``\\r`` are escapes,
    any other backslashed character stands for itself."""
    quote, i, chars = text[start], start + 1, []
    while i < len(text):
        ch = text[i]
        if ch == "\\" and i + 1 < len(text):
            chars.append(_ESCAPES.get(text[i + 1], text[i + 1]))
            i += 2
        elif ch == quote:
            return "".join(chars), i + 1
        else:
            chars.append(ch)
            i += 1
    raise _error(text, start, "unterminated string")


def _number(text: str, lexeme: str, pos: int) -> int | float:
    if any(c in lexeme for c in ".eE"):
        return float(lexeme)
    try:
        return int(lexeme)
    except ValueError:  # beyond Python's int-from-string digit limit
        raise _error(text, pos, "integer literal is too long") from None


def _name_token(text: str, lexeme: str, pos: int) -> _Token:
    if lexeme in _WORDS:
        return _Token(lexeme, None, pos, lexeme)
    if lexeme in _LITERAL_WORDS:
        return _Token("literal", _LITERAL_WORDS[lexeme], pos, lexeme)
    head, _, rest = lexeme.partition(".")
    if head != "context":
        raise _error(text, pos, f"unknown name {lexeme!r} (paths start with 'context.')")
    if not rest:
        raise _error(text, pos, "'context' needs a field, e.g. context.initial_data.key")
    return _Token("path", tuple(rest.split(".")), pos, lexeme)


def _tokenize(text: str) -> list[_Token]:
    tokens: list[_Token] = []
    pos = 0
    while pos < len(text):
        match = _TOKEN_RE.match(text, pos)
        if match is None:
            hint = " (use '==' to compare)" if text[pos] == "=" else ""
            raise _error(text, pos, f"unexpected character {text[pos]!r}{hint}")
        kind, lexeme = match.lastgroup, match.group()
        if kind == "quote":
            value, end = _scan_string(text, pos)
            tokens.append(_Token("literal", value, pos, text[pos:end]))
            pos = end
            continue
        if kind == "number":
            tokens.append(_Token("literal", _number(text, lexeme, pos), pos, lexeme))
        elif kind == "name":
            tokens.append(_name_token(text, lexeme, pos))
        elif kind == "op":
            tokens.append(_Token("op", lexeme, pos, lexeme))
        elif kind == "punct":
            tokens.append(_Token(lexeme, None, pos, lexeme))
        pos = match.end()
    tokens.append(_Token("end", None, len(text), "end of condition"))
    return tokens


def _step(obj: object, segment: str) -> object:
    try:
        if isinstance(obj, Mapping):
            if segment in obj:
                return obj[segment]
            if segment.isdigit() and int(segment) in obj:
                return obj[int(segment)]
            return _MISSING
        if segment.isdigit():
            if isinstance(obj, Sequence) and not isinstance(obj, str | bytes):
                index = int(segment)
                return obj[index] if index < len(obj) else _MISSING
            return _MISSING
        if segment.startswith("_"):
            return _MISSING
        return getattr(obj, segment, _MISSING)
    except Exception:  # a user object's property or __contains__ failing: the path is missing
        return _MISSING


def _truthy(value: object) -> bool:
    if value is _MISSING:
        return False
    try:
        return bool(value)
    except Exception:  # an object whose __bool__ raises is not a reason to fail the job
        return False


def _constant(value: object) -> _Evaluator:
    return lambda _context: value


def _path(segments: tuple[str, ...]) -> _Evaluator:
    def resolve(context: object) -> object:
        obj = context
        for segment in segments:
            obj = _step(obj, segment)
            if obj is _MISSING:
                break
        return obj

    return resolve


def _compare(compare: Callable[[Any, Any], Any], left: _Evaluator, right: _Evaluator) -> _Evaluator:
    def evaluate(context: object) -> bool:
        a = left(context)
        if a is _MISSING:
            return False
        b = right(context)
        if b is _MISSING:
            return False
        try:
            return bool(compare(a, b))
        except Exception:  # "a" < 5, 1 in 2, …: False, not an error (W-34)
            return False

    return evaluate


def _any_of(parts: list[_Evaluator]) -> _Evaluator:
    def evaluate(context: object) -> bool:
        return any(_truthy(part(context)) for part in parts)

    return evaluate


def _all_of(parts: list[_Evaluator]) -> _Evaluator:
    def evaluate(context: object) -> bool:
        return all(_truthy(part(context)) for part in parts)

    return evaluate


def _negate(inner: _Evaluator) -> _Evaluator:
    return lambda context: not _truthy(inner(context))


class _Parser:
    """Recursive descent over the token list; each rule returns an evaluator closure."""

    def __init__(self, text: str) -> None:
        self._text = text
        self._tokens = _tokenize(text)
        self._index = 0
        self._depth = 0

    def parse(self) -> _Evaluator:
        evaluator = self._or()
        self._expect("end")
        return evaluator

    def _peek(self, ahead: int = 0) -> _Token:
        return self._tokens[min(self._index + ahead, len(self._tokens) - 1)]

    def _advance(self) -> _Token:
        token = self._peek()
        self._index += 1
        return token

    def _expect(self, kind: str) -> None:
        token = self._peek()
        if token.kind != kind:
            wanted = "end of condition" if kind == "end" else repr(kind)
            raise _error(self._text, token.pos, f"expected {wanted}, found {_describe(token)}")
        self._advance()

    def _nest(self, pos: int) -> None:
        self._depth += 1
        if self._depth > _MAX_DEPTH:
            raise _error(self._text, pos, f"nested deeper than {_MAX_DEPTH} levels")

    def _or(self) -> _Evaluator:
        parts = [self._and()]
        while self._peek().kind == "or":
            self._advance()
            parts.append(self._and())
        return parts[0] if len(parts) == 1 else _any_of(parts)

    def _and(self) -> _Evaluator:
        parts = [self._not()]
        while self._peek().kind == "and":
            self._advance()
            parts.append(self._not())
        return parts[0] if len(parts) == 1 else _all_of(parts)

    def _not(self) -> _Evaluator:
        token = self._peek()
        if token.kind != "not":
            return self._comparison()
        self._advance()
        self._nest(token.pos)
        inner = self._not()
        self._depth -= 1
        return _negate(inner)

    def _comparator(self) -> str | None:
        token = self._peek()
        if token.kind == "op":
            return str(token.value)
        if token.kind == "in":
            return "in"
        if token.kind == "not" and self._peek(1).kind == "in":
            return "not in"
        return None

    def _comparison(self) -> _Evaluator:
        left = self._operand()
        name = self._comparator()
        if name is None:
            return left
        self._index += 2 if name == "not in" else 1
        right = self._operand()
        if self._comparator() is not None:
            raise _error(self._text, self._peek().pos, "chained comparisons are not supported; use 'and'")
        return _compare(_COMPARATORS[name], left, right)

    def _operand(self) -> _Evaluator:
        token = self._peek()
        if token.kind == "path":
            self._advance()
            return _path(token.value)
        if token.kind == "(":
            self._advance()
            self._nest(token.pos)
            inner = self._or()
            self._expect(")")
            self._depth -= 1
            return inner
        return _constant(self._literal())

    def _literal(self) -> object:
        token = self._advance()
        if token.kind == "literal":
            return token.value
        if token.kind == "[":
            self._nest(token.pos)
            items = self._list_items()
            self._depth -= 1
            return items
        problem = f"expected a value, a context path or '(', found {_describe(token)}"
        raise _error(self._text, token.pos, problem)

    def _list_items(self) -> list[object]:
        items: list[object] = []
        while self._peek().kind != "]":
            items.append(self._literal())
            if self._peek().kind != ",":
                break
            self._advance()
        self._expect("]")
        return items


class Condition:
    """A parsed ``.when()`` condition: parse once at registration, evaluate per job step."""

    __slots__ = ("_evaluator", "text")

    def __init__(self, text: str, evaluator: _Evaluator) -> None:
        self.text = text
        self._evaluator = evaluator

    @classmethod
    def parse(cls, text: str) -> Condition:
        """Compile ``text``; raises ``ConditionError`` naming the position and the problem."""
        if not isinstance(text, str):
            raise ConditionError(f"A condition must be a string, not {type(text).__name__}")
        if not text.strip():
            raise ConditionError("A condition must not be empty")
        return cls(text, _Parser(text).parse())

    def evaluate(self, context: object) -> bool:
        """Truth of the condition for ``context`` (the object ``context.`` paths start from)."""
        return _truthy(self._evaluator(context))

    def __repr__(self) -> str:
        return f"Condition({self.text!r})"
