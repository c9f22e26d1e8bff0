"""The stand-in Analytics Engine SQL API: `POST /client/v4/accounts/{acct}/analytics_engine/sql`
with the raw SQL as the body. The query is validated and translated (`aesql`), then
EXECUTED BY chdb over the data points the traffic model generated for that account, and
chdb's own `FORMAT JSON` output is the answer (64-bit integers quoted, as ClickHouse
does by default). Points are generated lazily, up to the last whole minute before the
sandbox clock, before each query.

Errors: rejected or failing SQL -> 422 with a plain-text reason (the real error bodies are
undocumented); a missing or malformed Authorization header -> 400 6003/6111, bad token -> 401
10000, another account's -> 403 9109, in the v4 envelope. Faults of route class `analytics`: status
(e.g. 500, 422, 429 + retry-after), slow, hang, late_data (newest M minutes not visible).
"""

from __future__ import annotations

import json
import os
import re
import threading
import time
from dataclasses import dataclass
from operator import itemgetter
from pathlib import Path
from typing import Any

from . import aesql, traffic
from .cloudflare import (  # auth failures answer in the v4 envelope
    ERR_AUTH, ERR_FORBIDDEN, bearer_token, err, error, malformed_auth)
from .faults import Fault, inject
from .httpio import Request, Response, text_response
from .world import MINUTE_MS, World, floor_minute

ROUTE = "analytics"
PATH_RE = re.compile(r"^/client/v4/accounts/(?P<acct>[^/]+)/analytics_engine/sql/?$")
WAE_COLUMNS = (
    ["dataset String", "timestamp DateTime", "_sample_interval UInt32", "index1 String"]
    + [f"blob{i} String" for i in range(1, 21)]
    + [f"double{i} Float64" for i in range(1, 21)]
)
HIDDEN_COLUMNS = ["_account String", "_script String"]
# The file's column order: a Row's strings first (formatted once per distinct tuple).
INSERT_COLUMNS = ("dataset", "index1", "blob1", "blob2", "timestamp", "_sample_interval",
                  "double1", "double2", "double3", "double4", "_account", "_script")
INSERT_TYPES = ("String", "String", "String", "String", "DateTime", "UInt32",
                "Float64", "Float64", "Float64", "Float64", "String", "String")
STRING_KEY = itemgetter(0, 3, 4, 5)
MAX_ROWS_PER_GENERATION = 20_000_000
# Rows gathered across scripts before one INSERT: few large parts rather than one a script.
ROWS_PER_INSERT = 1_000_000
# Sorted like the gate's queries filter (account, dataset, version, time), so a query for a
# few versions over a few minutes reads those granules, not every point of every script.
ENGINE = "MergeTree ORDER BY (_account, dataset, index1, timestamp)"


def fault_answer(f: Fault) -> Response:
    """A status fault: plain text (429 carries `retry-after`)."""
    headers = [("retry-after", str(f.retry_after))] if f.status == 429 else []
    text = f.body if f.body is not None else {
        429: "Too many requests", 422: "sandbox fault: the query could not be executed",
    }.get(f.status or 500, "sandbox fault: internal error while executing the query")
    return text_response(f.status or 500, text, ROUTE, headers=headers)


def sql_string(s: str) -> str:
    """A ClickHouse string literal."""
    return "'" + s.replace("\\", "\\\\").replace("'", "\\'") + "'"


def tsv(s: str) -> str:
    """A TabSeparated field."""
    return s.replace("\\", "\\\\").replace("\t", "\\t").replace("\n", "\\n")


class Store:
    """The chdb session holding the `points` table. One query at a time."""

    def __init__(self, state_dir: Path):
        from chdb import session  # imported here so pure modules load without chdb

        self.dir = Path(state_dir)
        self.dir.mkdir(parents=True, exist_ok=True)
        self.lock = threading.Lock()
        self.session = session.Session(str(self.dir / "chdb"))
        self.session.query("SET output_format_json_quote_64bit_integers = 1")
        self.session.query("SET session_timezone = 'UTC'")
        self.session.query("DROP TABLE IF EXISTS points")
        cols = ", ".join(WAE_COLUMNS + HIDDEN_COLUMNS)
        self.session.query(f"CREATE TABLE points ({cols}) ENGINE = {ENGINE}")

    def insert(self, batches: list[tuple[list[traffic.Row], str, str]]) -> None:
        """Bulk-inserts (rows, account, script) batches in one INSERT through a
        TabSeparated file (the fastest path measured; one insert, one part)."""
        lines: list[str] = []
        for rows, account, script in batches:
            strings = {key: "\t".join(tsv(x) for x in key) for key in set(map(STRING_KEY, rows))}
            tail = f"\t{tsv(account)}\t{tsv(script)}\n"
            lines.extend("%s\t%d\t%d\t%r\t%r\t%r\t%r%s"
                         % (strings[r[0], r[3], r[4], r[5]], r[1], r[2], r[6], r[7], r[8], r[9], tail)
                         for r in rows)
        if not lines:
            return
        path = self.dir / "insert.tsv"
        structure = ", ".join(f"{c} {t}" for c, t in zip(INSERT_COLUMNS, INSERT_TYPES))
        with self.lock:
            path.write_text("".join(lines), encoding="utf-8")
            self.session.query(
                f"INSERT INTO points ({', '.join(INSERT_COLUMNS)}) SELECT * FROM "
                f"file({sql_string(str(path))}, 'TabSeparated', {sql_string(structure)})")
            os.unlink(path)

    def query(self, sql: str) -> bytes:
        """Runs one query; raises chdb's error on failure."""
        with self.lock:
            return self.session.query(sql).bytes()

    def clear(self) -> None:
        """Deletes every point."""
        with self.lock:
            self.session.query("TRUNCATE TABLE points")

    def close(self) -> None:
        """Ends the chdb session."""
        with self.lock:
            self.session.close()


@dataclass
class GenerationReport:
    """What one `ensure_generated` call did."""

    rows: int = 0
    minutes: int = 0
    seconds: float = 0.0


class Analytics:
    """The SQL API stand-in: generation + query execution."""

    def __init__(self, world: World, state_dir: Path):
        self.world = world
        self.store = Store(state_dir)
        self.gen_lock = threading.Lock()
        self.queries = 0

    # ---- generation ---------------------------------------------------------------

    def ensure_generated(self, account_id: str | None = None) -> GenerationReport:
        """Generates every missing whole minute before the clock, for the account's scripts
        (all accounts when None)."""
        report = GenerationReport()
        t0 = time.perf_counter()
        with self.gen_lock:
            # (rows, account, script) batches not yet inserted, and each script's queue depth
            # at their end.
            pending: list[tuple[tuple[list[traffic.Row], str, str], float | None]] = []
            pending_rows = 0

            def flush() -> None:
                # Scripts' minutes go in together (one part per flush, not per script); the
                # queue depths move only once their rows are in.
                nonlocal pending_rows
                self.store.insert([batch for batch, _ in pending])
                with self.world.lock:
                    for (_, _, name), depth in pending:
                        if (script := self.world.scripts.get(name)) is not None:
                            script.queue_depth = depth
                pending.clear()
                pending_rows = 0

            try:
                for name in self._script_names(account_id):
                    batch, depth, minutes = self._generate_script(name)
                    report.minutes += minutes
                    if batch is None:
                        continue
                    pending.append((batch, depth))
                    pending_rows += len(batch[0])
                    report.rows += len(batch[0])
                    if pending_rows >= ROWS_PER_INSERT:
                        flush()
            finally:  # a script refused (too many rows) keeps the others' reserved minutes
                flush()
        report.seconds = time.perf_counter() - t0
        return report

    def _script_names(self, account_id: str | None) -> list[str]:
        with self.world.lock:
            return [s.name for s in self.world.scripts.values()
                    if account_id is None or s.account_id == account_id]

    def _generate_script(self, name: str) -> tuple[tuple[list[traffic.Row], str, str] | None, float | None, int]:
        """One script's missing minutes: its (rows, account, script) batch to insert (None
        when nothing is missing), the queue depth at their end, and how many minutes."""
        with self.world.lock:
            s = self.world.scripts.get(name)
            if s is None or not s.deployments or not s.scenarios:
                return None, None, 0
            start = max(s.generated_until_ms, s.traffic_start_ms() or 0)
            end = floor_minute(self.world.now_ms)
            if end <= start:
                return None, None, 0
            splits = [d.split() for d in s.deployments]
            scenarios = {m: s.scenario_at(m) for m in range(start, end, MINUTE_MS)}
            traffic_start = s.traffic_start_ms() or 0
            depth = s.queue_depth
            account = s.account_id
            estimate = sum(sc.rps * 60 / sc.sample_interval for sc in scenarios.values() if sc)
            if estimate > MAX_ROWS_PER_GENERATION:
                raise RuntimeError(f"refusing to generate ~{int(estimate)} rows for {name}: "
                                   "move the clock in smaller steps or seed a later first deployment")
            s.generated_until_ms = end  # reserve: nothing may now be inserted before `end`
        rows: list[traffic.Row] = []
        for minute, sc in scenarios.items():
            if sc is None:
                continue
            minute_rows, depth = traffic.minute_rows(name, minute, sc, splits, traffic_start, depth)
            rows.extend(minute_rows)
        return (rows, account, name), depth, len(scenarios)

    # ---- the SQL endpoint -------------------------------------------------------

    def handle(self, req: Request, acct_id: str) -> Response:
        """POST .../analytics_engine/sql."""
        if req.method != "POST":
            return text_response(405, "method not allowed: POST the SQL text", ROUTE)
        # The same answers as the rest of the v4 API (sandbox/cloudflare.py `authorize`):
        # 400 6003/6111 for a missing or malformed header, 401 10000, 403 10000 for an API
        # token without Account Analytics Read, 403 9109.
        token = bearer_token(req)
        if token is None:
            return malformed_auth(ROUTE)
        holder = self.world.token_holder(token)
        if holder is None:
            return error(401, ROUTE, [err(*ERR_AUTH)])
        account, kind = holder
        if kind == "api" and not account.api_token_analytics:
            return error(403, ROUTE, [err(*ERR_AUTH)])
        if account.id != acct_id:
            return error(403, ROUTE, [err(*ERR_FORBIDDEN)])
        injected = inject(self.world.faults, ROUTE, self.world.now_ms, None, fault_answer)
        if injected is not None:
            return injected
        now_ms = self.world.now_ms  # generation covers at least this; the query sees no further
        late = self.world.faults.take(ROUTE, "late_data", now_ms)
        try:
            sql = req.body.decode("utf-8")
        except UnicodeDecodeError:
            return text_response(400, "query must be UTF-8 text", ROUTE)
        try:
            self.ensure_generated(account.id)
        except RuntimeError as e:
            return text_response(500, f"sandbox: {e}", ROUTE)
        return self.run(sql, account.id, now_ms, late.minutes if late else 0)

    def run(self, sql: str, account_id: str, now_ms: int, late_minutes: int = 0) -> Response:
        """Validates, translates and executes one query for an account as of `now_ms`."""
        visible_until_s = (floor_minute(now_ms) - late_minutes * MINUTE_MS) // 1000

        def source(dataset: str) -> str:
            return (f"SELECT * EXCEPT (_account, _script) FROM points WHERE _account = {sql_string(account_id)}"
                    f" AND dataset = {sql_string(dataset)} AND timestamp < toDateTime({visible_until_s})")

        try:
            prepared = aesql.prepare(sql, self.world.known_datasets(account_id), source, now_ms // 1000)
        except aesql.SqlRejected as e:
            return text_response(422, f"Query rejected: {e}", ROUTE, note="rejected")
        self.queries += 1
        try:
            out = self.store.query(prepared.sql)
        except Exception as e:  # chdb raises its own error types for bad SQL
            return text_response(422, clean_chdb_error(str(e)), ROUTE, note="sql error")
        ctype = "application/json" if prepared.format == "JSON" else "text/plain; charset=utf-8"
        note = f"late={late_minutes}m" if late_minutes else None
        return Response(200, out, [("Content-Type", ctype)], ROUTE, note=note)

    def stats(self) -> dict[str, Any]:
        """Stored rows per script and version (control API)."""
        out = self.store.query(
            "SELECT _script AS script, index1 AS version, blob1 AS event, count() AS rows, "
            "sum(_sample_interval) AS weight FROM points GROUP BY script, version, event "
            "ORDER BY script, version, event FORMAT JSON")
        data = json.loads(out)["data"]
        return {"groups": data, "queries": self.queries}

    def clear(self) -> None:
        """Forgets every point (with the world's reset)."""
        with self.gen_lock:
            self.store.clear()


def clean_chdb_error(message: str) -> str:
    """chdb's message without the sandbox's internal rewrite (`In scope ...`) or stack."""
    first = message.strip().splitlines()[0] if message.strip() else "query failed"
    return re.sub(r"\s*In scope .*?(\(\w+\))?$", r" \1", first).strip()
