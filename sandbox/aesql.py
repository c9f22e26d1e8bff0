"""The Analytics Engine SQL dialect gate: lexes one query, accepts only what Cloudflare's
Analytics Engine SQL reference documents (an ALLOW-LIST of statements, clauses, functions,
operators and literals), and rewrites the few Analytics-Engine-only spellings into
ClickHouse so chdb can execute the rest unchanged.

Pure: no I/O, no chdb. `prepare()` is the entry point.

The allow-list and where each entry comes from (cloudflare/cloudflare-docs,
src/content/docs/analytics/analytics-engine/sql-reference/*.mdx, and the changelog):
  statements   SELECT; SHOW TABLES, SHOW TIMEZONES, SHOW TIMEZONE (statements.mdx)
  clauses      SELECT <expr> [AS alias], ...  FROM <table>|(<subquery>)  WHERE  GROUP BY
               HAVING  ORDER BY <expr> [ASC|DESC], ...  LIMIT <n>|ALL  OFFSET <n>
               FORMAT JSON|JSONEachRow|TabSeparated, in that order, each at most once
               (statements.mdx: "queries can only operate on a single table. UNION, JOIN
               etc. are not currently supported")
  operators    + - * / %   = < > <= >= <> !=   IN, NOT IN, [NOT] BETWEEN .. AND ..,
               [NOT] LIKE, [NOT] ILIKE   AND OR NOT   unary - (operators.mdx)
  literals     integers, doubles, 'strings', true/false, INTERVAL '<n>' YEAR|MONTH|DAY|
               HOUR|MINUTE|SECOND (literals.mdx)
  functions    FUNCTIONS below, one row per reference page. Names are matched without
               regard to case: Cloudflare's own examples write both `sum` and `SUM`, `now`
               and `NOW` (sql-reference pages; analytics-engine/grafana.mdx).
Anything else (CASE, IS NULL, casts `::`, arrays, table aliases, `x IN (SELECT ...)`,
SELECT DISTINCT, LIMIT BY, WITH, SETTINGS, JOIN, UNION, quoted identifiers, any function
not listed) is refused. The real service answers such a query with HTTP 422 and a plain
text body "Input was invalid: unsupported expression type: CASE WHEN ..." (seen by a
client in cloudflare/skills pull request 87; third-party); the sandbox uses that prefix
for every refusal, and its wording after the prefix is its own (no source gives it).

The translation list (keep it short; each item is unit-tested):
  1. `quantileWeighted(q, x, w)`   -> `quantileExactWeighted(q)(x, w)`   (AE alias)
  2. `INTERVAL '15' MINUTE`        -> `INTERVAL 15 MINUTE`               (AE quoting)
  3. `now()`                       -> `toDateTime(<sandbox clock>)`      (sandbox time)
  4. `FROM <dataset>`              -> `FROM (<rows of that dataset>) AS <dataset>`
  5. function names                -> ClickHouse's spelling (`SUM` -> `sum`); `length` ->
     `lengthUTF8`, `toLower`/`toUpper` -> `lowerUTF8`/`upperUTF8` (string-functions.mdx)
  6. `LIMIT ALL`                   -> dropped (no limit)
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Callable

# Formats the SQL API documents (`FORMAT JSON` is the default).
FORMATS = {"json": "JSON", "jsoneachrow": "JSONEachRow", "tabseparated": "TabSeparated"}

# The documented functions, by reference page, in ClickHouse's spelling. Keys of
# `FUNCTIONS` are lower-case; values are what chdb is sent.
_FUNCTION_PAGES = {
    "aggregate-functions.mdx": [
        "count", "sum", "avg", "min", "max", "quantileExactWeighted", "quantileWeighted",
        "argMax", "argMin", "first_value", "last_value", "topK", "topKWeighted",
        "countIf", "sumIf", "avgIf"],
    "bit-functions.mdx": [
        "bitAnd", "bitCount", "bitHammingDistance", "bitNot", "bitOr", "bitRotateLeft",
        "bitRotateRight", "bitShiftLeft", "bitShiftRight", "bitTest", "bitXor"],
    "conditional-functions.mdx": ["if"],
    "date-time-functions.mdx": [
        "toDateTime", "now", "toUnixTimestamp", "formatDateTime", "toStartOfInterval"],
    # https://developers.cloudflare.com/changelog/2025-11-12-analytics-engine-further-sql-enhancements
    "changelog 2025-11-12": [
        "toYear", "toMonth", "toDayOfMonth", "toDayOfWeek", "toHour", "toMinute", "toSecond",
        "toStartOfYear", "toStartOfMonth", "toStartOfWeek", "toStartOfDay", "toStartOfHour",
        "toStartOfFifteenMinutes", "toStartOfTenMinutes", "toStartOfFiveMinutes",
        "toStartOfMinute", "today", "toYYYYMM"],
    "encoding-functions.mdx": ["bin", "hex"],
    "mathematical-functions.mdx": ["intDiv", "log", "ln", "pow", "round", "floor", "ceil"],
    "string-functions.mdx": [
        "length", "empty", "lower", "lowerUTF8", "toLower", "upper", "upperUTF8", "toUpper",
        "startsWith", "endsWith", "position", "substring", "format", "extract"],
    "type-conversion-functions.mdx": ["toUInt8", "toUInt32"],
}
FUNCTIONS = {name.lower(): name for names in _FUNCTION_PAGES.values() for name in names}
# AE semantics that ClickHouse spells differently (string-functions.mdx).
FUNCTIONS.update({"length": "lengthUTF8", "tolower": "lowerUTF8", "toupper": "upperUTF8"})
# Functions written `f(params)(args)` (aggregate-functions.mdx).
PARAMETRIC = {"quantileexactweighted", "topk", "topkweighted"}
# Aggregates that take `DISTINCT` before their argument (aggregate-functions.mdx).
DISTINCT_OK = {"count", "sum", "avg"}
INTERVAL_UNITS = {"year", "month", "day", "hour", "minute", "second"}
# The table's columns (the platform reference, section 2 "Table columns").
COLUMNS = ({"dataset", "timestamp", "_sample_interval", "index1"}
           | {f"blob{i}" for i in range(1, 21)} | {f"double{i}" for i in range(1, 21)})
# Words an expression may hold (operators.mdx, literals.mdx).
EXPR_WORDS = {"and", "or", "not", "in", "between", "like", "ilike", "true", "false"}
# Clause keywords, in the only order a SELECT may use them (statements.mdx).
CLAUSES = ("select", "from", "where", "group", "having", "order", "limit", "offset")
OPERATORS = {"+", "-", "*", "/", "%", "=", "<", ">", "<=", ">=", "<>", "!=", ",", "(", ")"}
# How the real service's 422 body begins (cloudflare/skills pull request 87, third-party).
# analytics.py, which writes the answer, still uses its own "Query rejected: ".
REFUSAL_PREFIX = "Input was invalid: "

_TOKEN_RE = re.compile(
    r"""
    (?P<ws>\s+)
  | (?P<comment>--[^\n]*|/\*.*?\*/)
  | (?P<string>'(?:[^'\\]|\\.|'')*')
  | (?P<qident>`(?:[^`\\]|\\.|``)*`|"(?:[^"\\]|\\.|"")*")
  | (?P<number>(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?)
  | (?P<ident>[A-Za-z_][A-Za-z0-9_]*)
  | (?P<punct><=|>=|<>|!=|==|\|\||::|.)
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

    def is_punct(self, text: str) -> bool:
        """True when this is the punctuation `text`."""
        return self.kind == "punct" and self.text == text


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
        if toks[i].is_punct("("):
            depth += 1
        elif toks[i].is_punct(")"):
            depth -= 1
            if depth == 0:
                return i
    raise SqlRejected("unbalanced parentheses")


def split_args(toks: list[Token]) -> list[list[Token]]:
    """Splits a call's argument tokens (without the parens) at top-level commas."""
    args: list[list[Token]] = [[]]
    depth = 0
    for t in toks:
        if t.is_punct("("):
            depth += 1
        elif t.is_punct(")"):
            depth -= 1
        if depth == 0 and t.is_punct(","):
            args.append([])
        else:
            args[-1].append(t)
    return [] if args == [[]] else args


def strip_statement(toks: list[Token]) -> list[Token]:
    """One statement: strips one trailing `;`, refuses an empty query or a second one."""
    if toks and toks[-1].is_punct(";"):
        toks = toks[:-1]
    if not toks:
        raise SqlRejected("empty query")
    if any(t.is_punct(";") for t in toks):
        raise SqlRejected("multiple statements are not supported")
    return toks


def split_format(toks: list[Token]) -> tuple[list[Token], str]:
    """Removes a trailing top-level `FORMAT <name>` and returns the canonical name."""
    depth = 0
    for i, t in enumerate(toks):
        if t.is_punct("("):
            depth += 1
        elif t.is_punct(")"):
            depth -= 1
        elif depth == 0 and t.word == "format" and not (i + 1 < len(toks) and toks[i + 1].is_punct("(")):
            rest = toks[i + 1:]
            if len(rest) != 1 or rest[0].kind != "ident":
                raise SqlRejected("FORMAT must be the last clause and name one format")
            fmt = FORMATS.get(rest[0].text.lower())
            if fmt is None:
                raise SqlRejected(f"unsupported format {rest[0].text!r}; use JSON, JSONEachRow or TabSeparated")
            return toks[:i], fmt
    return toks, "JSON"


# ---- the allow-list ----------------------------------------------------------------


def collect_aliases(toks: list[Token]) -> set[str]:
    """Every name introduced by `AS <name>` (select-list aliases, at any depth)."""
    return {toks[i + 1].text.lower() for i, t in enumerate(toks[:-1])
            if t.word == "as" and toks[i + 1].kind == "ident"}


def clause_starts(toks: list[Token], lo: int, hi: int) -> list[tuple[str, int]]:
    """The clause keywords at this query's own depth in `toks[lo:hi]`, in order."""
    out: list[tuple[str, int]] = []
    depth = 0
    for i in range(lo, hi):
        t = toks[i]
        if t.is_punct("("):
            depth += 1
        elif t.is_punct(")"):
            depth -= 1
        elif depth == 0 and t.word in CLAUSES:
            out.append((t.word, i))
    return out


def check_query(toks: list[Token], lo: int, hi: int, aliases: set[str]) -> dict[int, str]:
    """Validates the SELECT in `toks[lo:hi]`; returns index -> dataset for its FROM tables
    (and those of nested subqueries)."""
    starts = clause_starts(toks, lo, hi)
    if not starts or starts[0] != ("select", lo):
        raise SqlRejected(f"expected SELECT, found {toks[lo].text!r}")
    names = [w for w, _ in starts]
    if names.count("select") > 1:
        raise SqlRejected("only one SELECT per query: UNION and similar are not supported")
    order = [CLAUSES.index(w) for w in names]
    if order != sorted(order) or len(set(order)) != len(order):
        raise SqlRejected(f"clauses must appear once each, in the order {' '.join(c.upper() for c in CLAUSES)}")
    tables: dict[int, str] = {}
    bounds = [i for _, i in starts] + [hi]
    for (word, start), end in zip(starts, bounds[1:]):
        body_lo = start + 1
        if word in ("group", "order"):
            if body_lo >= end or toks[body_lo].word != "by":
                raise SqlRejected(f"{word.upper()} must be followed by BY")
            body_lo += 1
        body = toks[body_lo:end]
        if not body:
            raise SqlRejected(f"{word.upper()} needs an argument")
        if word == "select" and body[0].word in ("distinct", "all"):
            raise SqlRejected(f"SELECT {body[0].text.upper()} is not supported")
        if word == "from":
            tables.update(check_from(toks, body_lo, end, aliases))
        elif word in ("limit", "offset"):
            check_count(word, body)
        else:
            check_expression(body, aliases, order_by=word == "order")
    return tables


def check_from(toks: list[Token], lo: int, hi: int, aliases: set[str]) -> dict[int, str]:
    """`FROM <dataset>` or `FROM (<subquery>)`, nothing after it (no alias, no join)."""
    first = toks[lo]
    if first.is_punct("("):
        end = matching_paren(toks, lo)
        if lo + 1 >= end or toks[lo + 1].word != "select":
            raise SqlRejected("FROM takes a dataset name or a parenthesised SELECT")
        tables = check_query(toks, lo + 1, end, aliases)
        rest = toks[end + 1:hi]
    elif first.kind == "ident":
        if lo + 1 < hi and toks[lo + 1].is_punct("("):
            raise SqlRejected(f"table functions are not supported ({first.text})")
        tables = {lo: first.text}
        rest = toks[lo + 1:hi]
    elif first.kind == "qident":
        raise SqlRejected(f"quoted identifiers are not supported ({first.text})")
    else:
        raise SqlRejected(f"unexpected {first.text!r} after FROM")
    if rest:
        word = rest[0].word
        if word == "join" or any(t.word == "join" for t in rest):
            raise SqlRejected("JOIN is not supported: a query reads one dataset")
        if any(t.is_punct(",") for t in rest):
            raise SqlRejected("only one table may be queried (no comma joins)")
        if rest[0].is_punct("."):
            raise SqlRejected(f"unknown dataset {first.text}.{rest[1].text if len(rest) > 1 else ''}")
        raise SqlRejected(f"unsupported syntax after the FROM source: {rest[0].text!r} "
                          "(table aliases, JOIN, SAMPLE, FINAL, ... are not supported)")
    return tables


def check_count(word: str, body: list[Token]) -> None:
    """`LIMIT <n>|ALL` and `OFFSET <n>`: one non-negative integer literal."""
    if len(body) == 1 and (body[0].kind == "number" and body[0].text.isdigit()
                           or (word == "limit" and body[0].word == "all")):
        return
    raise SqlRejected(f"{word.upper()} takes one integer{' or ALL' if word == 'limit' else ''}, "
                      f"not {' '.join(t.text for t in body)!r}")


def check_expression(toks: list[Token], aliases: set[str], order_by: bool = False) -> None:
    """An expression list of documented functions, operators, literals, columns and
    aliases. `order_by` also allows ASC/DESC after each item."""
    stack: list[str] = []  # per open paren: the function called ('' = grouping)
    closed = ""  # the function whose argument list the previous token closed
    i = 0
    while i < len(toks):
        t = toks[i]
        nxt = toks[i + 1] if i + 1 < len(toks) else None
        just_closed, closed = closed, ""
        if t.kind in ("number", "string"):
            pass
        elif t.kind == "qident":
            raise SqlRejected(f"quoted identifiers are not supported ({t.text})")
        elif t.kind == "punct":
            closed = check_punct(t, nxt, stack, just_closed)
        elif nxt is not None and nxt.is_punct("(") and t.word not in EXPR_WORDS:
            if t.word not in FUNCTIONS:
                raise SqlRejected(f"unknown function {t.text}")
            stack.append(t.word)
            i += 2
            if i < len(toks) and toks[i].word == "distinct":
                if t.word not in DISTINCT_OK:
                    raise SqlRejected(f"DISTINCT is not supported in {t.text}()")
                i += 1
            continue
        elif t.word == "interval":
            check_interval(toks, i)
            i += 3
            continue
        elif t.word == "as":
            if nxt is None or nxt.kind != "ident" or nxt.word in CLAUSES:
                raise SqlRejected("AS must be followed by an alias name")
            i += 2
            continue
        else:
            check_word(t, stack, order_by, aliases)
        i += 1
    if stack:
        raise SqlRejected("unbalanced parentheses")


def check_punct(t: Token, nxt: Token | None, stack: list[str], just_closed: str) -> str:
    """One operator or bracket; keeps the open parentheses in `stack`. Returns the
    function whose argument list a `)` closed ('' otherwise)."""
    if t.text not in OPERATORS:
        raise SqlRejected(f"unsupported operator {t.text!r}")
    if t.text == "(":
        # A function's own `(` is consumed with its name; this is a grouping paren or
        # the second argument list of a parametric aggregate.
        if nxt is not None and nxt.word == "select":
            raise SqlRejected("subqueries are only supported in FROM")
        if just_closed:
            if just_closed not in PARAMETRIC:
                raise SqlRejected(f"{just_closed}(...) takes one argument list; only "
                                  "quantileExactWeighted, topK and topKWeighted take two")
            stack.append("args")
        else:
            stack.append("")
    elif t.text == ")":
        if not stack:
            raise SqlRejected("unbalanced parentheses")
        return stack.pop()
    return ""


def check_interval(toks: list[Token], i: int) -> None:
    """`INTERVAL '<n>' <unit>` with a documented unit."""
    value = toks[i + 1] if i + 1 < len(toks) else None
    unit = toks[i + 2] if i + 2 < len(toks) else None
    if value is None or value.kind != "string" or not re.fullmatch(r"'\s*\d+\s*'", value.text):
        raise SqlRejected("INTERVAL takes a quoted integer: INTERVAL '<n>' <unit>")
    if unit is None or unit.word not in INTERVAL_UNITS:
        raise SqlRejected(f"INTERVAL unit must be one of {', '.join(u.upper() for u in sorted(INTERVAL_UNITS))}")


def check_word(t: Token, stack: list[str], order_by: bool, aliases: set[str]) -> None:
    """A bare word: an operator word, a column, an alias, or a word one function allows."""
    w = t.word
    inner = stack[-1] if stack else ""
    if w in EXPR_WORDS or w in COLUMNS or w in aliases:
        return
    if order_by and w in ("asc", "desc"):
        return
    if inner == "extract" and (w == "from" or w in INTERVAL_UNITS):
        return
    if w == "distinct":
        raise SqlRejected("DISTINCT is only supported as count(DISTINCT x), sum(DISTINCT x), avg(DISTINCT x)")
    if w in ("join", "union", "intersect", "except"):
        raise SqlRejected(f"{t.text.upper()} is not supported: a query reads one dataset")
    if w in ("case", "when", "then", "else", "end", "is", "null", "cast", "with", "settings",
             "into", "array", "over", "partition", "exists", "any", "global", "prewhere",
             "sample", "final", "using", "on", "by", "limit", "asc", "desc", "all", "from"):
        raise SqlRejected(f"unsupported expression type: {t.text.upper()}")
    raise SqlRejected(f"unknown column or alias {t.text}")


def check_dialect(toks: list[Token]) -> dict[int, str]:
    """The whole allow-list for one SELECT; returns index -> dataset of its FROM tables."""
    return check_query(toks, 0, len(toks), collect_aliases(toks))


# ---- SHOW statements ----------------------------------------------------------------


def show_statement(toks: list[Token], known_datasets: set[str]) -> str | None:
    """`SHOW TABLES|TIMEZONES|TIMEZONE` as chdb SQL, or None for anything else.

    The column names (`name`, `timezone`) are the sandbox's guess: no source shows the
    real answer's columns."""
    words = [t.word for t in toks]
    if words == ["show", "tables"]:
        items = ", ".join("'" + d.replace("\\", "\\\\").replace("'", "\\'") + "'" for d in sorted(known_datasets))
        return f"SELECT name FROM (SELECT arrayJoin([{items}]) AS name) ORDER BY name"
    if words == ["show", "timezones"]:
        return "SELECT time_zone AS name FROM system.time_zones ORDER BY name"
    if words == ["show", "timezone"]:
        return "SELECT 'Etc/UTC' AS timezone"  # "This should always be Etc/UTC" (statements.mdx)
    if words and words[0] == "show":
        raise SqlRejected(f"unsupported statement {' '.join(t.text for t in toks)!r}; "
                          "SHOW TABLES, SHOW TIMEZONES and SHOW TIMEZONE are supported")
    return None


# ---- translation --------------------------------------------------------------------


def translate(toks: list[Token], tables: dict[int, str], source: Callable[[str], str],
              now_s: int) -> str:
    """Rebuilds the query text from significant tokens, applying the translation list.

    `tables` maps token indexes to the dataset named there (from `check_dialect`).
    """
    out: list[str] = []
    i = 0
    while i < len(toks):
        t = toks[i]
        nxt = toks[i + 1] if i + 1 < len(toks) else None
        if out and t.space:
            out.append(" ")
        if i in tables:
            out.append(f"({source(tables[i])}) AS {quote_ident(tables[i])}")
            i += 1
        elif t.word == "quantileweighted" and nxt is not None and nxt.is_punct("("):
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
        elif (t.word == "now" and nxt is not None and nxt.is_punct("(")
              and i + 2 < len(toks) and toks[i + 2].is_punct(")")):
            out.append(f"toDateTime({now_s})")
            i += 3
        elif t.word == "limit" and nxt is not None and nxt.word == "all":
            if out and out[-1] == " ":
                out.pop()
            i += 2  # `LIMIT ALL` = no limit; ClickHouse has no such spelling
        elif t.word in FUNCTIONS and nxt is not None and nxt.is_punct("("):
            out.append(FUNCTIONS[t.word])
            i += 1
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
    toks = strip_statement(significant(tokenize(sql)))
    toks, fmt = split_format(toks)
    show = show_statement(toks, known_datasets)
    if show is not None:
        return Prepared(sql=f"{show} FORMAT {fmt}", dataset=None, format=fmt)
    if toks[0].word != "select":
        raise SqlRejected(f"only SELECT and SHOW statements are supported, not {toks[0].text!r}")
    tables = check_dialect(toks)
    names = set(tables.values())
    for name in sorted(names):
        if name not in known_datasets:
            raise SqlRejected(f"unknown dataset {name!r}")
    if len(names) > 1:
        raise SqlRejected(f"a query may read one dataset, not {sorted(names)}")
    body = translate(toks, tables, source, now_s)
    return Prepared(sql=f"{body} FORMAT {fmt}", dataset=next(iter(names), None), format=fmt)
