"""The SQL dialect gate: the translation list, rejection of what the real SQL API rejects,
and the gate's two query shapes passing through untouched (apart from FROM)."""

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


def test_own_alias_is_kept():
    out = p("SELECT l.index1 FROM mauntic_logs AS l").sql
    assert "(SELECT * FROM rows_of_mauntic_logs) AS l" in out and "`mauntic_logs`" not in out


def test_subquery_on_the_dataset_is_fine():
    out = p("SELECT v, sum(n) FROM (SELECT index1 AS v, _sample_interval AS n FROM mauntic_logs) GROUP BY v").sql
    assert "FROM (SELECT index1 AS v, _sample_interval AS n FROM (SELECT * FROM rows_of_mauntic_logs)" in out


def test_extract_from_is_not_a_table():
    out = p("SELECT EXTRACT(MINUTE FROM timestamp) FROM mauntic_logs").sql
    assert "EXTRACT(MINUTE FROM timestamp)" in out


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
    ("SELECT * FROM (SELECT * FROM other_ds) WHERE index1 IN (SELECT index1 FROM mauntic_logs)", "one dataset"),
    ("SELECT * FROM nope", "unknown dataset"),
    ("SELECT * FROM system.tables", "system"),
    ("SELECT * FROM numbers(10)", "table functions"),
    ("SELECT file('/etc/passwd') FROM mauntic_logs", "function file"),
    ("DROP TABLE mauntic_logs", "only SELECT"),
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
def test_gate_queries_pass_untouched_but_for_from(fixture: str):
    sql = (FIXTURES / fixture).read_text()
    out = p(sql)
    expected = sql.replace("FROM mauntic_logs", "FROM (SELECT * FROM rows_of_mauntic_logs) AS `mauntic_logs`")
    assert out.sql == " ".join(expected.split())  # whitespace runs become one space


def test_tokenizer_keeps_escaped_quotes_inside_strings():
    toks = [t for t in tokenize(r"SELECT 'o\'brien', 'a''b'") if t.kind == "string"]
    assert [t.text for t in toks] == [r"'o\'brien'", "'a''b'"]
