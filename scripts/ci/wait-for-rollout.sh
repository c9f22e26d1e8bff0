#!/usr/bin/env bash
# Polls rollout-gate until the rollout of <version_id> on <script> ends, printing one
# line per poll. Fails the CI job unless the rollout completed.
#
# Usage: wait-for-rollout.sh <script> <version_id>
# Env:   GATE_URL, HOOK_TOKEN      as for start-rollout.sh
#        POLL_SECONDS=30           time between polls
#        WAIT_TIMEOUT_SECONDS=7200 give up after this long (the default schedule takes ~35 min;
#                                  a pause waits for a human)
#        FAIL_ON_PAUSE=0           1: stop waiting (exit 3) as soon as the rollout pauses or drifts
# Exit:  0 completed · 1 rolled back, aborted, failed pre-flight, superseded, or another
#        version took over · 2 timed out · 3 paused/drifted with FAIL_ON_PAUSE=1 ·
#        4 usage, token or route problem.
set -euo pipefail

die() { echo "wait-for-rollout: $*" >&2; exit 4; }

[ $# -eq 2 ] || die "usage: wait-for-rollout.sh <script> <version_id>"
SCRIPT="$1"
VERSION_ID="$2"
[ -n "${GATE_URL:-}" ] || die "GATE_URL is not set"
[ -n "${HOOK_TOKEN:-}" ] || die "HOOK_TOKEN is not set"
command -v curl >/dev/null || die "curl is required"
command -v node >/dev/null || die "node is required (wrangler needs it anyway)"
POLL_SECONDS="${POLL_SECONDS:-30}"
WAIT_TIMEOUT_SECONDS="${WAIT_TIMEOUT_SECONDS:-7200}"
FAIL_ON_PAUSE="${FAIL_ON_PAUSE:-0}"
URL="${GATE_URL%/}/v1/rollouts/${SCRIPT}"

ANSWER="$(mktemp)"
trap 'rm -f "$ANSWER"' EXIT

# Reads a RolloutView (GET /v1/rollouts/{script}) and prints two lines: the state
# (completed | failed | paused | running | other | bad) and one line for humans.
read_view() {
  node -e '
    const fs = require("fs");
    const want = process.argv[2].toLowerCase();
    let v;
    try { v = JSON.parse(fs.readFileSync(process.argv[1], "utf8")); }
    catch { console.log("bad"); console.log("the gate answered something that is not JSON"); process.exit(0); }
    const p = v.phase || {};
    const step = v.step ? ` step ${v.step.number}/${v.step.of} (${v.step.percent}%)` : "";
    const live = (v.live_split || []).map(s =>
      `${String(s.version_id).toLowerCase() === want ? "new" : "stable"} ${s.percent}%`).join(" / ");
    // A pause reason ({pause: "no_evidence", minutes: 10, gaps: [...]}) as words.
    const words = r => r && typeof r === "object"
      ? Object.entries(r).filter(([, x]) => x !== null && x !== undefined)
          .map(([k, x]) => k === "pause" ? String(x).replace(/_/g, " ")
            : Array.isArray(x) ? x.join("; ") : `${k} ${x}`).join(", ")
      : "";
    let why = "";
    if (p.cause && Array.isArray(p.cause.reasons)) why = p.cause.reasons.map(r => r.detail).join("; ");
    else if (p.cause) why = `aborted by ${p.cause.by}${p.cause.why ? ": " + p.cause.why : ""}`;
    else if (Array.isArray(p.reasons)) why = p.reasons.join("; ");
    else if (p.reason) why = words(p.reason);
    else if (p.phase === "aborted") why = `by ${p.by}${p.why ? ": " + p.why : ""}`;
    else if (p.observed) why = "someone else deployed: " + (p.observed.versions || [])
      .map(s => `${s.version_id} ${s.percent}%`).join(" / ") + (p.observed.author_email ? ` by ${p.observed.author_email}` : "");
    let state;
    if (String(v.version_id || "").toLowerCase() !== want) state = "other";
    else if (v.terminal) state = p.phase === "completed" ? "completed" : "failed";
    else if (p.phase === "paused" || p.phase === "drifted") state = "paused";
    else state = "running";
    const line = `${v.script} ${v.phase_name}${step}${live ? " · live " + live : ""}` +
      `${why ? " · " + why : ""}${v.dry_run ? " · dry run" : ""}` +
      (state === "other" ? ` · now rolling out ${v.version_id}, not ${process.argv[2]}` : "");
    console.log(state);
    console.log(line.replace(/\s+/g, " "));
  ' "$ANSWER" "$VERSION_ID"
}

START=$(date +%s)
MISSING=0
while :; do
  NOW="$(date -u +%H:%M:%S)"
  STATUS="$(curl -sS --max-time 20 -o "$ANSWER" -w '%{http_code}' \
    -H @<(printf 'Authorization: Bearer %s\n' "$HOOK_TOKEN") "$URL" 2>/dev/null)" || STATUS="000"
  case "$STATUS" in
    200)
      MISSING=0
      mapfile -t VIEW < <(read_view)
      echo "$NOW ${VIEW[1]:-}"
      case "${VIEW[0]:-bad}" in
        completed) echo "wait-for-rollout: completed"; exit 0 ;;
        failed)
          echo "wait-for-rollout: the rollout did not complete; audit log: GET ${URL}/events" >&2
          exit 1 ;;
        other)
          echo "wait-for-rollout: another version took over this script" >&2
          exit 1 ;;
        paused)
          if [ "$FAIL_ON_PAUSE" = 1 ]; then
            echo "wait-for-rollout: paused; a human decides (resume, promote or abort)" >&2
            exit 3
          fi ;;
      esac
      ;;
    401|403) die "the gate refused the token (HTTP $STATUS)" ;;
    404)
      # Right after the hook the rollout exists already; keep going a little in case
      # the gate is being redeployed, then give up: the script name is probably wrong.
      MISSING=$((MISSING + 1))
      echo "$NOW no rollout for $SCRIPT yet (HTTP 404)"
      [ "$MISSING" -lt 3 ] || die "no rollout for $SCRIPT at $URL"
      ;;
    *) echo "$NOW the gate did not answer usefully (HTTP $STATUS); retrying" ;;
  esac
  if [ $(( $(date +%s) - START )) -ge "$WAIT_TIMEOUT_SECONDS" ]; then
    echo "wait-for-rollout: still not finished after ${WAIT_TIMEOUT_SECONDS}s" >&2
    exit 2
  fi
  sleep "$POLL_SECONDS"
done
