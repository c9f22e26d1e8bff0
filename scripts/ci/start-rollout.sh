#!/usr/bin/env bash
# Calls rollout-gate's deploy hook for the version `wrangler versions upload` just made.
# Reads the version id from wrangler's ND-JSON output file ({"type":"version-upload",
# "version_id":...}), POSTs /v1/rollouts, and prints the version id on stdout.
#
# Usage: start-rollout.sh <script> <wrangler-output-file>
# Env:   GATE_URL     the gate, e.g. https://rollout-gate-production.example.workers.dev
#        HOOK_TOKEN   the gate's hook token (sent as a bearer token, never printed)
#        GIT_SHA      commit of the version (default: git rev-parse HEAD, if in a repo)
#        ROLLOUT_MESSAGE  free text for Slack and the audit log (optional)
#        DRY_RUN=1    decide and report, but never change a deployment (optional)
#        SCHEDULE_JSON    e.g. '{"steps":[{"percent":10,"dwell_minutes":10},{"percent":100,"dwell_minutes":10}]}'
# Exit:  0 started (or already started: the hook is idempotent); 1 refused by the gate
#        (the gate's error code and message are printed); 4 usage or setup problem.
set -euo pipefail

die() { echo "start-rollout: $*" >&2; exit 4; }

[ $# -eq 2 ] || die "usage: start-rollout.sh <script> <wrangler-output-file>"
SCRIPT="$1"
OUTPUT_FILE="$2"
[ -n "${GATE_URL:-}" ] || die "GATE_URL is not set"
[ -n "${HOOK_TOKEN:-}" ] || die "HOOK_TOKEN is not set"
[ -r "$OUTPUT_FILE" ] || die "cannot read $OUTPUT_FILE (set WRANGLER_OUTPUT_FILE_PATH for wrangler versions upload)"
command -v curl >/dev/null || die "curl is required"
command -v node >/dev/null || die "node is required (wrangler needs it anyway)"

# The last version-upload entry wins (the file is appended to by every wrangler command).
VERSION_ID="$(node -e '
  const lines = require("fs").readFileSync(process.argv[1], "utf8").split("\n");
  let id = "";
  for (const line of lines) {
    if (!line.trim()) continue;
    try { const e = JSON.parse(line); if (e.type === "version-upload" && e.version_id) id = e.version_id; } catch {}
  }
  process.stdout.write(id);
' "$OUTPUT_FILE")"
[ -n "$VERSION_ID" ] || die "no {\"type\":\"version-upload\"} entry with a version_id in $OUTPUT_FILE"

if [ -z "${GIT_SHA:-}" ] && git rev-parse HEAD >/dev/null 2>&1; then
  GIT_SHA="$(git rev-parse HEAD)"
fi

BODY="$(SCRIPT="$SCRIPT" VERSION_ID="$VERSION_ID" node -e '
  const e = process.env;
  const body = { script: e.SCRIPT, version_id: e.VERSION_ID };
  if (e.GIT_SHA) body.git_sha = e.GIT_SHA;
  if (e.ROLLOUT_MESSAGE) body.message = e.ROLLOUT_MESSAGE;
  if (e.DRY_RUN === "1" || e.DRY_RUN === "true") body.dry_run = true;
  if (e.SCHEDULE_JSON) body.schedule = JSON.parse(e.SCHEDULE_JSON);
  process.stdout.write(JSON.stringify(body));
')" || die "SCHEDULE_JSON is not valid JSON"

ANSWER="$(mktemp)"
trap 'rm -f "$ANSWER"' EXIT
# The token goes through a header file descriptor, so it never shows up in `ps`.
STATUS="$(curl -sS --max-time 60 -o "$ANSWER" -w '%{http_code}' \
  -X POST -H 'Content-Type: application/json' \
  -H @<(printf 'Authorization: Bearer %s\n' "$HOOK_TOKEN") \
  --data-binary "$BODY" "${GATE_URL%/}/v1/rollouts")" || die "could not reach $GATE_URL"

case "$STATUS" in
  200|201)
    [ "$STATUS" = 201 ] && what="started" || what="already started (same version)"
    echo "start-rollout: $SCRIPT $VERSION_ID $what" >&2
    echo "$VERSION_ID"
    ;;
  *)
    MESSAGE="$(node -e '
      try { const e = JSON.parse(require("fs").readFileSync(process.argv[1], "utf8")).error;
            process.stdout.write(`${e.code}: ${e.message}`); }
      catch { process.stdout.write(require("fs").readFileSync(process.argv[1], "utf8").slice(0, 500)); }
    ' "$ANSWER")"
    echo "start-rollout: the gate refused $SCRIPT $VERSION_ID (HTTP $STATUS) $MESSAGE" >&2
    exit 1
    ;;
esac
