"""The SQL dialect gate: the allow-list (only what Analytics Engine's SQL reference
documents passes), the translation list, and the gate's own queries (the fixtures the
Rust tests pin, tests/fixtures/analytics/*.sql) passing with only FROM and function
spellings rewritten."""

from __future__ import annotations

from pathlib import Path

import pytest

from sandbox.aesql import SqlRejected, prepare, tokenize

FIXTURES = Path(__file__).resolve().parents[2] / "tests/fixtures/analytics"
KNOWN = {"mauntic_logs", "other_ds"}


def src(name: str) -> str:
    return f"SELECT * FROM rows_of_{name}"


def p(sql: str):
    return prepare(sql, KNOWN, src, now_s=1_795_773_600)


def test_quantile_weighted_alias_becomes_exact_weighted():
    out = p("SELECT quantileWeighted(0.95, double2, _sample_interval) AS p95 FROM mauntic_logs").sql
    assert "quantileExactWeighted(0.95)(double2, _sample_interval) AS p95" in out


def test_quantile_weighted_nested_expressions_and_case():
    out = p("SELECT QUANTILEWEIGHTED(0.5, if(double1 > 0, double2, 0), _sample_interval * 2) FROM mauntic_logs").sql
    assert "quantileExactWeighted(0.5)(if(double1 > 0, double2, 0), _sample_interval * 2)" in out


def test_quantile_weighted_needs_three_arguments():
    with pytest.raises(SqlRejected, match="three arguments"):
        p("SELECT quantileWeighted(0.5, double2) FROM mauntic_logs")


def test_quoted_interval_is_unquoted():
    out = p("SELECT count() FROM mauntic_logs WHERE timestamp > now() - INTERVAL '15' MINUTE").sql
    assert "INTERVAL 15 MINUTE" in out
    assert "toDateTime(1795773600) - INTERVAL 15 MINUTE" in out


def test_string_literals_are_not_translated():
    out = p("SELECT 'quantileWeighted(1, 2, 3) now() JOIN' AS s FROM mauntic_logs").sql
    assert "'quantileWeighted(1, 2, 3) now() JOIN' AS s" in out


def test_from_dataset_becomes_the_visible_rows():
    out = p("SELECT count() FROM mauntic_logs WHERE blob1 = 'http'")
    assert out.sql == "SELECT count() FROM (SELECT * FROM rows_of_mauntic_logs) AS `mauntic_logs` WHERE blob1 = 'http' FORMAT JSON"
    assert out.dataset == "mauntic_logs" and out.format == "JSON"


def test_a_table_alias_is_refused_as_undocumented():
    with pytest.raises(SqlRejected, match="after the FROM source"):
        p("SELECT index1 FROM mauntic_logs AS l")


def test_subquery_on_the_dataset_is_fine():
    out = p("SELECT v, sum(n) FROM (SELECT index1 AS v, _sample_interval AS n FROM mauntic_logs) GROUP BY v").sql
    assert "FROM (SELECT index1 AS v, _sample_interval AS n FROM (SELECT * FROM rows_of_mauntic_logs)" in out


def test_extract_from_is_not_a_table():
    out = p("SELECT EXTRACT(MINUTE FROM timestamp) FROM mauntic_logs").sql
    assert "extract(MINUTE FROM timestamp)" in out


@pytest.mark.parametrize("fmt,canon", [("json", "JSON"), ("JSONEachRow", "JSONEachRow"),
                                       ("TabSeparated", "TabSeparated")])
def test_formats(fmt: str, canon: str):
    assert p(f"SELECT 1 FROM mauntic_logs FORMAT {fmt}").format == canon


def test_trailing_semicolon_is_allowed():
    assert p("SELECT 1 FROM mauntic_logs FORMAT JSON;").sql.endswith("FORMAT JSON")


@pytest.mark.parametrize("sql,why", [
    ("SELECT * FROM mauntic_logs a JOIN mauntic_logs b ON a.index1 = b.index1", "JOIN"),
    ("SELECT * FROM mauntic_logs ARRAY JOIN [1] AS x", "JOIN"),
    ("SELECT 1 FROM mauntic_logs UNION ALL SELECT 2 FROM mauntic_logs", "UNION"),
    ("SELECT * FROM mauntic_logs, other_ds", "one table"),
    ("SELECT * FROM mauntic_logs l, other_ds", "one table"),
    ("SELECT * FROM (SELECT * FROM other_ds) WHERE index1 IN (SELECT index1 FROM mauntic_logs)", "only supported in FROM"),
    ("SELECT * FROM (SELECT * FROM other_ds) AS a", "after the FROM source"),
    ("SELECT * FROM nope", "unknown dataset"),
    ("SELECT * FROM system.tables", "system"),
    ("SELECT * FROM numbers(10)", "table functions"),
    ("SELECT file('/etc/passwd') FROM mauntic_logs", "function file"),
    ("DROP TABLE mauntic_logs", "only SELECT and SHOW"),
    ("SHOW DATABASES", "unsupported statement"),
    ("INSERT INTO mauntic_logs VALUES (1)", "only SELECT"),
    ("SELECT 1 FROM mauntic_logs; SELECT 2 FROM mauntic_logs", "multiple statements"),
    ("SELECT 1 FROM mauntic_logs SETTINGS max_threads = 1", "SETTINGS"),
    ("SELECT 1 FROM mauntic_logs INTO OUTFILE 'x'", "INTO"),
    ("SELECT 1 FROM mauntic_logs FORMAT CSV", "unsupported format"),
    ("SELECT 'oops FROM mauntic_logs", "unterminated"),
    ("", "empty"),
])
def test_rejections(sql: str, why: str):
    with pytest.raises(SqlRejected, match=why):
        p(sql)


def test_comments_do_not_hide_a_second_statement():
    with pytest.raises(SqlRejected, match="multiple"):
        p("SELECT 1 FROM mauntic_logs -- fine\n; DROP TABLE x")
    assert "FORMAT JSON" in p("SELECT 1 /* ; JOIN */ FROM mauntic_logs").sql


@pytest.mark.parametrize("fixture", ["http_query.sql", "queue_query.sql"])
def test_gate_queries_pass_untouched_but_for_from_and_function_spelling(fixture: str):
    sql = (FIXTURES / fixture).read_text()
    out = p(sql)
    expected = (sql.replace("FROM mauntic_logs", "FROM (SELECT * FROM rows_of_mauntic_logs) AS `mauntic_logs`")
                .replace("SUM(", "sum(").replace("MAX(", "max("))
    assert out.sql == " ".join(expected.split())  # whitespace runs become one space


def test_tokenizer_keeps_escaped_quotes_inside_strings():
    toks = [t for t in tokenize(r"SELECT 'o\'brien', 'a''b'") if t.kind == "string"]
    assert [t.text for t in toks] == [r"'o\'brien'", "'a''b'"]


# ---- the allow-list --------------------------------------------------------------------


@pytest.mark.parametrize("sql,why", [
    ("SELECT CASE WHEN double1 > 1 THEN 1 ELSE 0 END FROM mauntic_logs", "unsupported expression type: CASE"),
    ("SELECT quantile(0.5)(double2) FROM mauntic_logs", "unknown function quantile"),
    ("SELECT uniq(blob1) FROM mauntic_logs", "unknown function uniq"),
    ("SELECT arrayJoin([1]) FROM mauntic_logs", "unknown function arrayJoin"),
    ("SELECT toString(double1) FROM mauntic_logs", "unknown function toString"),
    ("SELECT count() FROM mauntic_logs WHERE blob1 IS NULL", "unsupported expression type: IS"),
    ("SELECT double1::String FROM mauntic_logs", "unsupported operator '::'"),
    ("SELECT blob1 || 'x' FROM mauntic_logs", "unsupported operator"),
    ("SELECT 1 == 1 FROM mauntic_logs", "unsupported operator '=='"),
    ("SELECT [1, 2] FROM mauntic_logs", "unsupported operator"),
    ("SELECT DISTINCT blob1 FROM mauntic_logs", "SELECT DISTINCT"),
    ("SELECT max(DISTINCT double1) FROM mauntic_logs", "DISTINCT is not supported in max"),
    ("SELECT sum(double1)(double2) FROM mauntic_logs", "one argument list"),
    ("WITH 1 AS x SELECT x FROM mauntic_logs", "only SELECT and SHOW"),
    ("SELECT 1 FROM mauntic_logs LIMIT 1, 2", "LIMIT takes one integer"),
    ("SELECT 1 FROM mauntic_logs LIMIT 1 BY blob1", "LIMIT takes one integer"),
    ("SELECT 1 FROM mauntic_logs ORDER BY blob1 WHERE double1 > 0", "in the order"),
    ("SELECT 1 FROM mauntic_logs WHERE timestamp > now() - INTERVAL 5 MINUTE", "quoted integer"),
    ("SELECT 1 FROM mauntic_logs WHERE timestamp > now() - INTERVAL '5' WEEK", "INTERVAL unit"),
    ("SELECT 1 FROM mauntic_logs FINAL", "after the FROM source"),
    ("SELECT \"blob1\" FROM mauntic_logs", "quoted identifiers"),
    ("SELECT nope FROM mauntic_logs", "unknown column or alias nope"),
    ("SELECT blob1 # a comment\nFROM mauntic_logs", "unsupported operator '#'"),
])
def test_undocumented_sql_is_refused(sql: str, why: str):
    with pytest.raises(SqlRejected, match=why):
        p(sql)


# One query per reference page (and every clause); test_analytics runs them in chdb too.
DOCUMENTED = [
    # every documented aggregate, with DISTINCT and the parametric forms
    "SELECT count(), count(DISTINCT blob1), sum(DISTINCT double1), avg(double1), min(double1), max(double1),"
    " argMax(blob1, double1), argMin(blob1, double1), first_value(blob1), last_value(blob1), topK(blob1),"
    " topK(15)(blob1), topKWeighted(blob1, _sample_interval), topKWeighted(5)(blob1, _sample_interval),"
    " countIf(double1 > 5), sumIf(double1, double2 > 0), avgIf(double1, double2 > 0) FROM mauntic_logs",
    # bit, encoding, maths, type conversion
    "SELECT bitAnd(1, 3), bitCount(toUInt32(double1)), bitHammingDistance(3, 0), bitNot(1), bitOr(1, 2),"
    " bitRotateLeft(1, 1), bitRotateRight(1, 1), bitShiftLeft(1, 1), bitShiftRight(12, 2), bitTest(3, 1),"
    " bitXor(1, 2), bin(1), hex('abc'), intDiv(7, 2), log(double1), ln(double1), pow(double1, 2),"
    " round(3.14, 1), floor(5.5), ceil(3.14, 1), toUInt8(double1) FROM mauntic_logs",
    # date and time, including the 2025-11-12 additions
    "SELECT toDateTime(double1), toDateTime('2022-12-01 16:17:00', 'America/New_York'), toUnixTimestamp(now()),"
    " formatDateTime(now(), '%Y-%m-%d'), toStartOfInterval(timestamp, INTERVAL '15' MINUTE), toYear(timestamp),"
    " toMonth(timestamp), toDayOfMonth(timestamp), toDayOfWeek(timestamp), toHour(timestamp),"
    " toMinute(timestamp), toSecond(timestamp), toStartOfYear(timestamp), toStartOfMonth(timestamp),"
    " toStartOfWeek(timestamp), toStartOfDay(timestamp), toStartOfHour(timestamp),"
    " toStartOfFifteenMinutes(timestamp), toStartOfTenMinutes(timestamp), toStartOfFiveMinutes(timestamp),"
    " toStartOfMinute(timestamp), today(), toYYYYMM(timestamp) FROM mauntic_logs",
    # strings and conditionals
    "SELECT length(blob1), empty(blob1), lower(blob1), lowerUTF8(blob1), toLower(blob1), upper(blob1),"
    " upperUTF8(blob1), toUpper(blob1), startsWith(blob1, 'a'), endsWith(blob1, 'b'),"
    " position(':' IN blob1), substring(blob1, 1, 2), format('blob1: {}', blob1),"
    " extract(SECOND from timestamp), if(double1 > 1, 'a', 'b') FROM mauntic_logs",
    # operators and literals
    "SELECT -double1 % 3, double1 * 1.8 + 32, double1 / 2 FROM mauntic_logs WHERE (double1 = 1 OR double1 <> 2)"
    " AND double1 != 3 AND double1 <= 4 AND double1 >= 0 AND NOT double1 < 0 AND blob1 NOT IN ('a', 'b')"
    " AND double1 NOT BETWEEN 10 AND 20 AND blob1 LIKE 'a%' AND blob1 NOT ILIKE '%debug%' AND true",
    # every clause, in order
    "SELECT blob1 AS probe, avg(double1) AS t FROM mauntic_logs WHERE double1 > 0 GROUP BY probe"
    " HAVING t > 10 ORDER BY t DESC, probe ASC LIMIT 10 OFFSET 5 FORMAT JSONEachRow",
    "SELECT 1",
    "SHOW TABLES",
    "SHOW TIMEZONES FORMAT TabSeparated",
    "SHOW TIMEZONE",
]


@pytest.mark.parametrize("sql", DOCUMENTED)
def test_documented_sql_is_accepted(sql: str):
    assert p(sql).sql


def test_function_names_are_matched_without_regard_to_case_and_sent_in_clickhouse_spelling():
    out = p("SELECT SUM(double1), Count(), NOW(), LENGTH(blob1), toLower(blob1) FROM mauntic_logs").sql
    assert "sum(double1), count(), toDateTime(1795773600), lengthUTF8(blob1), lowerUTF8(blob1)" in out


def test_limit_all_means_no_limit():
    assert p("SELECT 1 FROM mauntic_logs LIMIT ALL").sql.endswith("AS `mauntic_logs` FORMAT JSON")


def test_show_tables_lists_the_known_datasets():
    out = p("SHOW TABLES")
    assert "'mauntic_logs', 'other_ds'" in out.sql and out.dataset is None and out.format == "JSON"
