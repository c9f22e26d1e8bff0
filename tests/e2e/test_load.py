"""Twenty rollouts at once in one gate for eight simulated minutes, through the load run's
own code (scripts/bench/load.py), claiming only what a small run can: every active
rollout ticks exactly once every minute, a sampled (bad) rollout makes the same decisions
at the same minutes when replayed alone in a fresh gate, and the gate's token stays under
the Cloudflare API's 1,200 requests per 5 minutes. No timing is asserted; the sandbox's
answer times are off to keep the test short (the figures come from the full run)."""

import json
import sys
from pathlib import Path

BENCH = Path(__file__).resolve().parents[2] / "scripts" / "bench"
sys.path.insert(0, str(BENCH))

import load  # noqa: E402  (scripts/bench/load.py)
from load_log import Line, gate_time_text, parse_cron  # noqa: E402

ROLLOUTS, MINUTES = 20, 8


def test_twenty_rollouts_tick_once_a_minute_decide_as_alone_and_stay_under_the_api_limit(tmp_path):
    run = load.measure(ROLLOUTS, MINUTES, k=1, seed=1, rps=20, bad_share=0.05, answer_times="off",
                       out_dir=tmp_path, progress=print)
    s, loaded = run["summary"], run["loaded"]
    assert s["hooks_within_minute"], "every hook landed in the minute before t0, as the replay's did"

    crons = loaded["crons"]
    assert len(crons) == MINUTES
    skipped = [c for c in crons if c["missing"] or c["doubled"] or c["unexpected"] or c["failed"]]
    assert s["every_tick_once"] and not skipped, json.dumps(skipped, indent=1)
    assert all(c["active"] == ROLLOUTS for c in crons[:2]), "all twenty were ticked from the first minute"

    assert s["replayed"] and s["decisions_identical"], json.dumps(run["replays"], indent=1)

    assert s["api_refused"] == 0
    assert 0 < s["api_max_per_5_min"] < load.API_LIMIT, s["api_max_per_5_min"]


def test_the_log_patterns_read_todays_lines_and_lines_with_the_gates_elapsed_ms():
    now = gate_time_text(1_795_773_661_000)
    assert now == "2026-11-27T10:01:01Z"
    lines = [Line(10.0, f"tick {now}: Fresh {{ minute: Timestamp(1795773660000) }}, 2 active rollout(s)"),
             Line(10.5, "rollout tick: phase Some(\"ramping\"), 3 subrequest(s)"),
             Line(10.5, f"tick {now} load-000: phase Some(\"ramping\"), 3 subrequest(s)"),
             Line(11.0, f"\x1b[31mtick {now} load-001: HTTP 500 boom\x1b[0m"),
             Line(11.2, f"tick 2026-11-27T10:02:01Z load-000: phase Some(\"ramping\"), 3 subrequest(s)")]
    today = parse_cron(lines, now, sent_at=10.0)
    assert today.summary.endswith("2 active rollout(s)") and today.gate_ms is None
    assert [(t.script, t.ok, t.gate_ms, t.arrival_ms) for t in today.ticks] == [
        ("load-000", True, None, 500.0), ("load-001", False, None, 1000.0)]

    soon = [Line(12.0, f"tick {now} load-000: phase Some(\"ramping\"), 3 subrequest(s), 2 API call(s), done +840 ms"),
            Line(12.1, f"tick {now}: 1 of 1 rollout(s) ticked, 1 shared counts quer(ies), done +912 ms")]
    changed = parse_cron(soon, now, sent_at=11.0)
    assert changed.gate_ms == 912 and [(t.ok, t.gate_ms) for t in changed.ticks] == [(True, 840)]
