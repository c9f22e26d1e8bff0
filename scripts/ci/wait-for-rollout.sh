#!/usr/bin/env bash
# Polls rollout-gate until the rollout of <version_id> on <worker-name> ends, printing one
# line per poll. Fails the CI job unless the rollout completed.
#
# Usage: wait-for-rollout.sh <worker-name> <version_id>
#   <worker-name>  the Worker as Cloudflare names it (with `--env production`,
#                  `<name>-production`): the name start-rollout.sh was given.
# Env:   GATE_URL, HOOK_TOKEN      as for start-rollout.sh
#        CF_ACCESS_CLIENT_ID, CF_ACCESS_CLIENT_SECRET  as for start-rollout.sh
#        POLL_SECONDS=30           time between polls (a positive number)
#        WAIT_TIMEOUT_SECONDS=7200 give up after this long, a whole number of seconds (the
#                                  default schedule takes ~35 min; a pause waits for a human)
#        UNREACHABLE_TRIES=3       polls in a row that get no answer or no JSON before the
#                                  gate counts as unreachable (exit 5)
#        FAIL_ON_PAUSE=0           1: stop waiting (exit 3) as soon as the rollout pauses or drifts
# Exit:  0 completed · 1 rolled back, aborted, failed pre-flight, superseded, or another
#        version took over · 2 timed out · 3 paused/drifted with FAIL_ON_PAUSE=1 ·
#        4 usage, token or route problem · 5 the gate is unreachable or does not answer
#        JSON (curl's error or the start of the answer is printed).
set -euo pipefail

die() { echo "wait-for-rollout: $*" >&2; exit 4; }

[ $# -eq 2 ] || die "usage: wait-for-rollout.sh <worker-name> <version_id>"
SCRIPT="$1"
VERSION_ID="$2"
[ -n "${GATE_URL:-}" ] || die "GATE_URL is not set"
[ -n "${HOOK_TOKEN:-}" ] || die "HOOK_TOKEN is not set"
if { [ -n "${CF_ACCESS_CLIENT_ID:-}" ] && [ -z "${CF_ACCESS_CLIENT_SECRET:-}" ]; } ||
   { [ -z "${CF_ACCESS_CLIENT_ID:-}" ] && [ -n "${CF_ACCESS_CLIENT_SECRET:-}" ]; }; then
  die "set both CF_ACCESS_CLIENT_ID and CF_ACCESS_CLIENT_SECRET (an Access service token), or neither"
fi
command -v curl >/dev/null || die "curl is required"
command -v node >/dev/null || die "node is required (wrangler needs it anyway)"
POLL_SECONDS="${POLL_SECONDS:-30}"
WAIT_TIMEOUT_SECONDS="${WAIT_TIMEOUT_SECONDS:-7200}"
UNREACHABLE_TRIES="${UNREACHABLE_TRIES:-3}"
FAIL_ON_PAUSE="${FAIL_ON_PAUSE:-0}"
[[ "$WAIT_TIMEOUT_SECONDS" =~ ^[1-9][0-9]*$ ]] ||
  die "WAIT_TIMEOUT_SECONDS must be a whole number of seconds ≥ 1, not '$WAIT_TIMEOUT_SECONDS'"
[[ "$POLL_SECONDS" =~ ^([0-9]+(\.[0-9]*)?|\.[0-9]+)$ ]] && awk -v p="$POLL_SECONDS" 'BEGIN { exit !(p > 0) }' ||
  die "POLL_SECONDS must be a positive number of seconds, not '$POLL_SECONDS'"
[[ "$UNREACHABLE_TRIES" =~ ^[1-9][0-9]*$ ]] || die "UNREACHABLE_TRIES must be a whole number ≥ 1, not '$UNREACHABLE_TRIES'"
case "$FAIL_ON_PAUSE" in 0|1) ;; *) die "FAIL_ON_PAUSE must be 0 or 1, not '$FAIL_ON_PAUSE'" ;; esac
URL="${GATE_URL%/}/v1/rollouts/${SCRIPT}"

WORK="$(mktemp -d)"
trap 'rm -rf "$WORK"' EXIT
ANSWER="$WORK/answer"
# Secrets go through a header file descriptor, so they never show up in `ps`.
secret_headers() {
  printf 'Authorization: Bearer %s\n' "$HOOK_TOKEN"
  if [ -n "${CF_ACCESS_CLIENT_ID:-}" ]; then
    printf 'CF-Access-Client-Id: %s\nCF-Access-Client-Secret: %s\n' \
      "$CF_ACCESS_CLIENT_ID" "$CF_ACCESS_CLIENT_SECRET"
  fi
}

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

# One poll's trouble: a gate that is not there (no answer, or an answer that is not JSON:
# a wrong URL, an Access login page, a proxy's error page) fails promptly with exit 5 after
# UNREACHABLE_TRIES polls in a row; a gate that answers JSON but is struggling (its own 5xx
# or 429) is waited for until the timeout.
UNREACHABLE=0
unreachable() {
  UNREACHABLE=$((UNREACHABLE + 1))
  echo "$NOW $1 ($UNREACHABLE of $UNREACHABLE_TRIES)"
  if [ "$UNREACHABLE" -ge "$UNREACHABLE_TRIES" ]; then
    echo "wait-for-rollout: the gate at $GATE_URL is unreachable or not answering JSON: $1" >&2
    exit 5
  fi
}
is_json() { node -e 'try { JSON.parse(require("fs").readFileSync(process.argv[1], "utf8")); } catch { process.exit(1); }' "$ANSWER"; }
snippet() { head -c 200 "$ANSWER" | tr -s '\r\n\t ' ' '; }

START=$(date +%s)
MISSING=0
while :; do
  NOW="$(date -u +%H:%M:%S)"
  : > "$ANSWER"
  CURL_EXIT=0
  STATUS="$(curl -sS --connect-timeout 10 --max-time 20 -o "$ANSWER" -w '%{http_code}' \
    -H @<(secret_headers) "$URL" 2>"$WORK/curl-error")" || CURL_EXIT=$?
  if [ "$CURL_EXIT" -ne 0 ]; then
    case "$CURL_EXIT" in 1|3) die "GATE_URL is not a usable URL: $(cat "$WORK/curl-error")" ;; esac
    unreachable "no answer from the gate: $(tr -d '\r' < "$WORK/curl-error" | tail -n1)"
  elif ! is_json; then
    unreachable "the gate answered HTTP $STATUS with something that is not JSON: $(snippet)"
  else
    UNREACHABLE=0
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
      401|403) die "the gate refused the token (HTTP $STATUS): $(snippet)" ;;
      404)
        # Right after the hook the rollout exists already; keep going a little in case
        # the gate is being redeployed, then give up: the Worker name is probably wrong.
        MISSING=$((MISSING + 1))
        echo "$NOW no rollout for $SCRIPT yet (HTTP 404)"
        [ "$MISSING" -lt 3 ] || die "no rollout for $SCRIPT at $URL (is it the full Worker name, e.g. $SCRIPT-production with --env production?)"
        ;;
      *) echo "$NOW the gate did not answer usefully (HTTP $STATUS: $(snippet)); retrying" ;;
    esac
  fi
  if [ $(( $(date +%s) - START )) -ge "$WAIT_TIMEOUT_SECONDS" ]; then
    echo "wait-for-rollout: still not finished after ${WAIT_TIMEOUT_SECONDS}s" >&2
    exit 2
  fi
  sleep "$POLL_SECONDS"
done
