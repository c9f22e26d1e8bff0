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
