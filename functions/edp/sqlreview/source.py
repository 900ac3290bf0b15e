"""A submitted SQL text: its statements (sqlglot BigQuery AST) and where each node sits.

Line numbers count from line 1 of the submitted text, as the reference tool
(bigquery-antipattern-recognition) counts them, so a 15-line licence header shifts every line.
sqlglot keeps positions on identifiers, literals, stars and function names but not on clause
keywords, so the keyword a clause starts with (``SELECT``, ``WHERE``, ``ORDER BY``, ``CREATE``)
is found in the token stream: the n-th node of a kind (in source order) is the n-th keyword.

Example:
    >>> src = Source.parse("SELECT a\\nFROM t\\nWHERE b = 1")
    >>> src.keyword_line(src.statements[0].args["where"])
    3
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Iterator
from dataclasses import dataclass, field
from functools import cached_property
from typing import cast

import sqlglot
from sqlglot import exp
from sqlglot.errors import ParseError, TokenError
from sqlglot.tokenizer_core import Token, TokenType

from edp.errors import EdpError

_DIALECT = "bigquery"

# The keyword token each clause node starts with.
_KEYWORDS: dict[type[exp.Expression], TokenType] = {
    exp.Select: TokenType.SELECT,
    exp.Where: TokenType.WHERE,
    exp.Order: TokenType.ORDER_BY,
    exp.Create: TokenType.CREATE,
    exp.Drop: TokenType.DROP,
}


class SqlSyntaxError(EdpError):
    """The submitted text is not BigQuery SQL sqlglot can parse."""


@dataclass(frozen=True)
class Position:
    """1-based line and column of a node in the submitted text."""

    line: int
    column: int


_START = "edp_start"
_UNSET = -2


def start_of(node: exp.Expression) -> int | None:
    """Smallest character offset of any positioned node under ``node`` (None if none).

    A ``WITH`` clause is skipped: sqlglot hangs it under the statement it precedes. The value is
    kept in the node's ``meta`` (every rule asks for it, and walks sort children by it).
    """
    cached = node.meta.get(_START, _UNSET)
    if cached != _UNSET:
        return cast("int | None", cached)
    best: int | None = None
    own = node.meta.get("start")
    if isinstance(own, int):
        best = own
    for key, value in node.args.items():
        if key in {"with_", "with"}:
            continue
        children = value if isinstance(value, list) else [value]
        for child in children:
            if isinstance(child, exp.Expression):
                start = start_of(child)
                if start is not None and (best is None or start < best):
                    best = start
    node.meta[_START] = best
    return best


def _depth(node: exp.Expression) -> int:
    depth = 0
    parent = node.parent
    while parent is not None:
        depth += 1
        parent = parent.parent
    return depth


@dataclass(frozen=True)
class Source:
    """The text, its tokens and its parsed statements."""

    text: str
    tokens: tuple[Token, ...]
    statements: tuple[exp.Expression, ...]
    _keyword_tokens: dict[int, Token] = field(default_factory=dict, compare=False, repr=False)

    @classmethod
    def parse(cls, text: str) -> Source:
        """Tokenize and parse ``text`` (one statement or a ``;``-separated script).

        Raises:
            SqlSyntaxError: the text does not parse as BigQuery SQL, or holds no statement.
        """
        try:
            dialect = sqlglot.Dialect.get_or_raise(_DIALECT)
            tokens = tuple(dialect.tokenize(text))
            parsed = dialect.parser().parse(list(tokens), text)
        except (ParseError, TokenError) as exc:
            raise SqlSyntaxError(str(exc).splitlines()[0]) from exc
        statements = tuple(
            cast("exp.Expression", s)
            for s in parsed
            if s is not None and not isinstance(s, exp.Semicolon)
        )
        if not statements:
            raise SqlSyntaxError("no SQL statement in the text")
        return cls(text=text, tokens=tokens, statements=statements)

    def line_of_offset(self, offset: int) -> int:
        """1-based line of a character offset."""
        return self.text.count("\n", 0, offset) + 1

    def position_of_offset(self, offset: int) -> Position:
        line_start = self.text.rfind("\n", 0, offset) + 1
        return Position(self.line_of_offset(offset), offset - line_start + 1)

    def position(self, node: exp.Expression) -> Position:
        """Where ``node`` starts: its keyword for clauses, else its first positioned token."""
        for kind in _KEYWORDS:
            if isinstance(node, kind):
                token = self.keyword_token(node)
                if token is not None:
                    return self.position_of_offset(token.start)
        start = start_of(node)
        return self.position_of_offset(start if start is not None else 0)

    def line(self, node: exp.Expression) -> int:
        return self.position(node).line

    def keyword_line(self, node: exp.Expression) -> int:
        return self.position(node).line

    @cached_property
    def _keyword_map(self) -> dict[int, Token]:
        """``id(node) -> keyword token`` for every clause node of a kind in :data:`_KEYWORDS`."""
        found: dict[int, Token] = {}
        for kind, token_type in _KEYWORDS.items():
            nodes = [n for s in self.statements for n in s.find_all(kind)]
            keyed = []
            for node in nodes:
                start = start_of(node)
                keyed.append((start if start is not None else -1, _depth(node), node))
            keyed.sort(key=lambda item: (item[0], item[1]))
            tokens = [t for t in self.tokens if t.token_type == token_type]
            if len(tokens) == len(keyed):
                for (_, _, node), token in zip(keyed, tokens, strict=True):
                    found[id(node)] = token
            else:
                # Unusual shapes (a keyword sqlglot folds away): nearest keyword before the node.
                for start, _, node in keyed:
                    before = [t for t in tokens if t.start <= start]
                    if before:
                        found[id(node)] = before[-1]
        return found

    def keyword_token(self, node: exp.Expression) -> Token | None:
        return self._keyword_map.get(id(node))

    def name_token_before(self, node: exp.Expression, name: str) -> Token | None:
        """The last token spelled ``name`` (any case) at or before ``node``'s first position."""
        start = start_of(node)
        if start is None:
            return None
        hits = [t for t in self.tokens if t.start <= start and t.text.lower() == name.lower()]
        return hits[-1] if hits else None

    def path_names(self, table: exp.Table) -> list[str]:
        """The identifiers of a table path as written (`` `a.b`.c `` -> ``["a.b", "c"]``).

        sqlglot splits a back-quoted dotted name into parts; ZetaSQL, and so the reference
        tool's messages, keep it as one identifier. Parts that share a token are rejoined.
        """
        parts = [p for p in table.parts if isinstance(p, exp.Identifier)]
        names: list[str] = []
        seen: dict[int, int] = {}
        for part in parts:
            start = part.meta.get("start") if part.meta else None
            if isinstance(start, int) and start in seen:
                names[seen[start]] = f"{names[seen[start]]}.{part.name}"
                continue
            if isinstance(start, int):
                seen[start] = len(names)
            names.append(part.name)
        return names


def children_in_order(node: exp.Expression) -> list[exp.Expression]:
    """Direct children of ``node`` in source order (a ``WITH`` clause first)."""
    children: list[exp.Expression] = []
    for value in node.args.values():
        if isinstance(value, exp.Expression):
            children.append(value)
        elif isinstance(value, list):
            children.extend(v for v in value if isinstance(v, exp.Expression))
    keyed = []
    for index, child in enumerate(children):
        start = -1 if isinstance(child, exp.With) else start_of(child)
        keyed.append((start if start is not None else 1 << 60, index, child))
    keyed.sort(key=lambda item: (item[0], item[1]))
    return [child for _, _, child in keyed]


def _in_order(node: exp.Expression, out: list[exp.Expression]) -> None:
    out.append(node)
    for child in children_in_order(node):
        _in_order(child, out)


# Statement -> its nodes in source order; the strong reference to the statement keeps its id
# from being reused while the entry lives. Bounded: the oldest entries go first.
_ORDER_CACHE: OrderedDict[int, tuple[exp.Expression, list[exp.Expression]]] = OrderedDict()
_ORDER_CACHE_SIZE = 256


def walk_in_order(node: exp.Expression) -> Iterator[exp.Expression]:
    """Pre-order walk with children in source order (a parse-tree visitor's order).

    The order of a whole statement is computed once and cached (every rule walks every
    statement).
    """
    if node.parent is not None:
        order: list[exp.Expression] = []
        _in_order(node, order)
        yield from order
        return
    entry = _ORDER_CACHE.get(id(node))
    if entry is None or entry[0] is not node:
        entry = (node, [])
        _in_order(node, entry[1])
        _ORDER_CACHE[id(node)] = entry
        while len(_ORDER_CACHE) > _ORDER_CACHE_SIZE:
            _ORDER_CACHE.popitem(last=False)
    yield from entry[1]
