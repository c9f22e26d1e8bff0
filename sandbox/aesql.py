"""The Analytics Engine SQL dialect gate: lexes one query, rejects what the real SQL API
rejects (anything but one SELECT on one dataset: no JOIN, UNION, table functions,
system tables, SETTINGS, INTO, several statements), and rewrites the few
Analytics-Engine-only spellings into ClickHouse so chdb can execute the rest unchanged.

Pure: no I/O, no chdb. `prepare()` is the entry point.

The translation list (keep it short; each item is unit-tested):
  1. `quantileWeighted(q, x, w)`   -> `quantileExactWeighted(q)(x, w)`   (AE alias)
  2. `INTERVAL '15' MINUTE`        -> `INTERVAL 15 MINUTE`               (AE quoting)
  3. `now()`                       -> `toDateTime(<sandbox clock>)`      (sandbox time)
  4. `FROM <dataset>`              -> `FROM (<rows of that dataset>) AS <dataset>`
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Callable

# Formats the SQL API documents (`FORMAT JSON` is the default).
FORMATS = {"json": "JSON", "jsoneachrow": "JSONEachRow", "tabseparated": "TabSeparated"}

# Keywords whose presence alone means "not something the SQL API runs".
REJECTED_KEYWORDS = {
    "join": "JOIN is not supported: a query reads one dataset",
    "union": "UNION is not supported",
    "intersect": "INTERSECT is not supported",
    "except": "EXCEPT is not supported",
    "into": "INTO is not supported: the SQL API is read-only",
    "settings": "SETTINGS is not supported",
}

# Scalar functions that reach outside the dataset (chdb would happily run them).
REJECTED_FUNCTIONS = {"file", "url", "s3", "remote", "remotesecure", "executable", "input"}

_TOKEN_RE = re.compile(
    r"""
    (?P<ws>\s+)
  | (?P<comment>--[^\n]*|\#[^\n]*|/\*.*?\*/)
  | (?P<string>'(?:[^'\\]|\\.|'')*')
  | (?P<qident>`(?:[^`\\]|\\.|``)*`|"(?:[^"\\]|\\.|"")*")
  | (?P<number>(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?)
  | (?P<ident>[A-Za-z_][A-Za-z0-9_$]*)
  | (?P<punct>.)
    """,
    re.VERBOSE | re.DOTALL,
)


class SqlRejected(ValueError):
    """The query is not one the Analytics Engine SQL API would run."""


@dataclass(frozen=True)
class Token:
    """One lexical token: `kind` is ws/comment/string/qident/number/ident/punct."""

    kind: str
    text: str
    space: bool = False  # whitespace or a comment came before it

    @property
    def word(self) -> str:
        """Lower-cased identifier text, or '' for other kinds."""
        return self.text.lower() if self.kind == "ident" else ""


@dataclass(frozen=True)
class Prepared:
    """A query ready for chdb: the rewritten text, the dataset it reads, its format."""

    sql: str
    dataset: str | None
    format: str


def tokenize(sql: str) -> list[Token]:
    """Splits `sql` into tokens; unterminated literals or comments are rejected."""
    tokens = []
    for m in _TOKEN_RE.finditer(sql):
        kind = m.lastgroup or "punct"
        text = m.group()
        if kind == "punct" and text in "'\"`":
            raise SqlRejected(f"unterminated quoted literal starting {sql[m.start():m.start() + 20]!r}")
        if kind == "punct" and sql.startswith("/*", m.start()):
            raise SqlRejected("unterminated /* comment")
        tokens.append(Token(kind, text))
    return tokens


def significant(tokens: list[Token]) -> list[Token]:
    """The tokens without whitespace and comments, each marking whether space preceded it."""
    out: list[Token] = []
    gap = False
    for t in tokens:
        if t.kind in ("ws", "comment"):
            gap = True
        else:
            out.append(Token(t.kind, t.text, gap))
            gap = False
    return out


def matching_paren(toks: list[Token], open_idx: int) -> int:
    """Index of the `)` closing the `(` at `open_idx` in significant tokens."""
    depth = 0
    for i in range(open_idx, len(toks)):
        if toks[i].text == "(" and toks[i].kind == "punct":
            depth += 1
        elif toks[i].text == ")" and toks[i].kind == "punct":
            depth -= 1
            if depth == 0:
                return i
    raise SqlRejected("unbalanced parentheses")


def split_args(toks: list[Token]) -> list[list[Token]]:
    """Splits a call's argument tokens (without the parens) at top-level commas."""
    args: list[list[Token]] = [[]]
    depth = 0
    for t in toks:
        if t.kind == "punct" and t.text in "([":
            depth += 1
        elif t.kind == "punct" and t.text in ")]":
            depth -= 1
        if depth == 0 and t.kind == "punct" and t.text == ",":
            args.append([])
        else:
            args[-1].append(t)
    return [] if args == [[]] else args


def check_statement(toks: list[Token]) -> list[Token]:
    """One SELECT statement: strips one trailing `;`, rejects everything else."""
    if toks and toks[-1].text == ";" and toks[-1].kind == "punct":
        toks = toks[:-1]
    if not toks:
        raise SqlRejected("empty query")
    if any(t.kind == "punct" and t.text == ";" for t in toks):
        raise SqlRejected("multiple statements are not supported")
    if toks[0].word != "select":
        raise SqlRejected(f"only SELECT statements are supported, not {toks[0].text!r}")
    for i, t in enumerate(toks):
        if t.word in REJECTED_KEYWORDS:
            raise SqlRejected(REJECTED_KEYWORDS[t.word])
        nxt = toks[i + 1].text if i + 1 < len(toks) else ""
        if t.word in REJECTED_FUNCTIONS and nxt == "(":
            raise SqlRejected(f"function {t.text} is not supported")
        if t.word == "system" and nxt == ".":
            raise SqlRejected("system tables are not available")
    return toks


def split_format(toks: list[Token]) -> tuple[list[Token], str]:
    """Removes a trailing top-level `FORMAT <name>` and returns the canonical name."""
    depth = 0
    for i, t in enumerate(toks):
        if t.kind == "punct" and t.text == "(":
            depth += 1
        elif t.kind == "punct" and t.text == ")":
            depth -= 1
        elif depth == 0 and t.word == "format":
            rest = toks[i + 1:]
            if len(rest) != 1 or rest[0].kind != "ident":
                raise SqlRejected("FORMAT must be the last clause and name one format")
            fmt = FORMATS.get(rest[0].text.lower())
            if fmt is None:
                raise SqlRejected(f"unsupported format {rest[0].text!r}; use JSON, JSONEachRow or TabSeparated")
            return toks[:i], fmt
    return toks, "JSON"


def table_name(tok: Token) -> str:
    """The name a table token spells (back-quoted or double-quoted names unquoted)."""
    if tok.kind == "qident":
        return tok.text[1:-1]
    return tok.text


def find_tables(toks: list[Token]) -> dict[int, str]:
    """Index -> dataset name for every `FROM <table>` clause (not `EXTRACT(x FROM y)`).

    A FROM belongs to a query when it stands at the top level or directly inside a
    parenthesised SELECT; a FROM inside a function call is part of that call.
    """
    tables: dict[int, str] = {}
    stack: list[bool] = []  # per open paren: is it a subquery?
    for i, t in enumerate(toks):
        if t.kind == "punct" and t.text == "(":
            stack.append(i + 1 < len(toks) and toks[i + 1].word == "select")
        elif t.kind == "punct" and t.text == ")":
            if stack:
                stack.pop()
        elif t.word == "from" and (not stack or stack[-1]):
            tables.update(read_from_clause(toks, i))
    return tables


def read_from_clause(toks: list[Token], i: int) -> dict[int, str]:
    """Checks the FROM clause at `i`: a subquery or one plain dataset name, no list."""
    if i + 1 >= len(toks):
        raise SqlRejected("FROM without a table")
    target = toks[i + 1]
    if target.kind == "punct" and target.text == "(":
        end = matching_paren(toks, i + 1)
        check_single_source(toks, end + 1)
        return {}
    if target.kind not in ("ident", "qident"):
        raise SqlRejected(f"unexpected {target.text!r} after FROM")
    after = toks[i + 2].text if i + 2 < len(toks) else ""
    if after == "(":
        raise SqlRejected(f"table functions are not supported ({target.text})")
    if after == ".":
        raise SqlRejected(f"unknown dataset {target.text}.{toks[i + 3].text if i + 3 < len(toks) else ''}")
    check_single_source(toks, i + 2)
    return {i + 1: table_name(target)}


def check_single_source(toks: list[Token], j: int) -> None:
    """After a FROM source (and an optional alias) a comma would be an implicit join."""
    if j < len(toks) and toks[j].word == "as":
        j += 2
    elif j < len(toks) and toks[j].kind in ("ident", "qident") and toks[j].word not in CLAUSE_WORDS:
        j += 1
    if j < len(toks) and toks[j].kind == "punct" and toks[j].text == ",":
        raise SqlRejected("only one table may be queried (no comma joins)")


CLAUSE_WORDS = {"where", "group", "order", "limit", "having", "format", "prewhere", "sample",
                "final", "offset", "with", "window", "qualify"}


def has_alias(toks: list[Token], j: int) -> bool:
    """True when the table token at `j - 1` is followed by an alias of its own."""
    if j >= len(toks):
        return False
    t = toks[j]
    return t.word == "as" or (t.kind in ("ident", "qident") and t.word not in CLAUSE_WORDS)


def translate(toks: list[Token], tables: dict[int, str], source: Callable[[str], str],
              now_s: int) -> str:
    """Rebuilds the query text from significant tokens, applying the translation list.

    `tables` maps token indexes to the dataset named there (from `find_tables`).
    """
    out: list[str] = []
    i = 0
    while i < len(toks):
        t = toks[i]
        nxt = toks[i + 1] if i + 1 < len(toks) else None
        if out and t.space:
            out.append(" ")
        if i in tables:
            name = tables[i]
            alias = "" if has_alias(toks, i + 1) else f" AS {quote_ident(name)}"
            out.append(f"({source(name)}){alias}")
            i += 1
        elif t.word == "quantileweighted" and nxt is not None and nxt.text == "(":
            end = matching_paren(toks, i + 1)
            args = split_args(toks[i + 2:end])
            if len(args) != 3:
                raise SqlRejected("quantileWeighted takes three arguments: (level, column, weight)")
            q, x, w = (translate(a, {}, source, now_s) for a in args)
            out.append(f"quantileExactWeighted({q})({x}, {w})")
            i = end + 1
        elif (t.word == "interval" and nxt is not None and nxt.kind == "string"
              and re.fullmatch(r"'\s*\d+\s*'", nxt.text)
              and i + 2 < len(toks) and toks[i + 2].kind == "ident"):
            out.append(f"INTERVAL {nxt.text.strip(chr(39)).strip()}")
            i += 2
        elif (t.word == "now" and nxt is not None and nxt.text == "("
              and i + 2 < len(toks) and toks[i + 2].text == ")"):
            out.append(f"toDateTime({now_s})")
            i += 3
        else:
            out.append(t.text)
            i += 1
    return "".join(out)


def quote_ident(name: str) -> str:
    """A back-quoted ClickHouse identifier."""
    return "`" + name.replace("\\", "\\\\").replace("`", "\\`") + "`"


def prepare(sql: str, known_datasets: set[str], source: Callable[[str], str], now_s: int) -> Prepared:
    """Validates and translates one SQL API query.

    `source(dataset)` returns a SELECT yielding that dataset's visible rows; it replaces
    the dataset name in FROM. Raises `SqlRejected` with a message for the caller.
    """
    toks = check_statement(significant(tokenize(sql)))
    toks, fmt = split_format(toks)
    tables = find_tables(toks)
    names = set(tables.values())
    for name in sorted(names):
        if name not in known_datasets:
            raise SqlRejected(f"unknown dataset {name!r}")
    if len(names) > 1:
        raise SqlRejected(f"a query may read one dataset, not {sorted(names)}")
    body = translate(toks, tables, source, now_s)
    return Prepared(sql=f"{body} FORMAT {fmt}", dataset=next(iter(names), None), format=fmt)
