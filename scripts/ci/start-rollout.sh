#!/usr/bin/env bash
# Calls rollout-gate's deploy hook for the version `wrangler versions upload` just made.
# Reads wrangler's ND-JSON output (the `version-upload` entry: worker_name, version_id,
# wrangler_environment; format: cloudflare/workers-sdk packages/wrangler/src/output.ts,
# OutputEntryVersionUpload), checks that wrangler uploaded to the Worker named here,
# POSTs /v1/rollouts, and prints the version id on stdout.
#
# Usage: start-rollout.sh <worker-name> <wrangler-output-dir-or-file>
#   <worker-name>  the Worker wrangler uploaded to, as Cloudflare names it: with
#                  `--env production` that is `<name>-production` (wrangler appends the
#                  environment to the top-level name unless [env.production] sets `name`).
#   <wrangler-output-dir-or-file>  best: a fresh WRANGLER_OUTPUT_FILE_DIRECTORY made for
#                  this upload alone (`mktemp -d`). Exactly one `version-upload` entry
#                  must be in it, so an older upload's entry is never taken.
# Env:   GATE_URL     the gate, e.g. https://rollout-gate-production.example.workers.dev
#        HOOK_TOKEN   the gate's hook token (sent as a bearer token, never printed)
#        CF_ACCESS_CLIENT_ID, CF_ACCESS_CLIENT_SECRET  a Cloudflare Access service token,
#                     when the gate sits behind Access (docs/deploy.md); both or neither
#        GIT_SHA      commit of the version (default: git rev-parse HEAD, if in a repo)
#        ROLLOUT_MESSAGE  free text for Slack and the audit log (optional)
#        DRY_RUN=1    decide and report, but never change a deployment (optional)
#        SCHEDULE_JSON    e.g. '{"steps":[{"percent":10,"dwell_minutes":10},{"percent":100,"dwell_minutes":10}]}'
#        START_ATTEMPTS=5  tries on a 5xx, a 429 or a connection failure (the hook is
#                     idempotent per version, so a retry never starts a second rollout)
#        RETRY_SECONDS=2   first back-off; doubles each try (at most 60 s; a 429's
#                     Retry-After is honoured up to 60 s)
#        BUDGET_WAIT_SECONDS=900  how long to keep waiting while the gate answers 503
#                     `api_budget_in_use` (its Cloudflare API budget is kept for the
#                     rollouts already running): each such answer's Retry-After is waited
#                     out in full and is not counted as a try
# Exit:  0 started (or already started: the hook is idempotent); 1 refused by the gate
#        (the gate's error code and message are printed); 2 the gate could not be
#        reached, or answered 5xx/429, on every try; 4 usage or setup problem (including
#        an output that names another Worker, or holds no or several uploads).
set -euo pipefail

die() { echo "start-rollout: $*" >&2; exit 4; }

[ $# -eq 2 ] || die "usage: start-rollout.sh <worker-name> <wrangler-output-dir-or-file>"
SCRIPT="$1"
OUTPUT="$2"
[ -n "${GATE_URL:-}" ] || die "GATE_URL is not set"
[ -n "${HOOK_TOKEN:-}" ] || die "HOOK_TOKEN is not set"
if { [ -n "${CF_ACCESS_CLIENT_ID:-}" ] && [ -z "${CF_ACCESS_CLIENT_SECRET:-}" ]; } ||
   { [ -z "${CF_ACCESS_CLIENT_ID:-}" ] && [ -n "${CF_ACCESS_CLIENT_SECRET:-}" ]; }; then
  die "set both CF_ACCESS_CLIENT_ID and CF_ACCESS_CLIENT_SECRET (an Access service token), or neither"
fi
START_ATTEMPTS="${START_ATTEMPTS:-5}"
RETRY_SECONDS="${RETRY_SECONDS:-2}"
[[ "$START_ATTEMPTS" =~ ^[1-9][0-9]*$ ]] || die "START_ATTEMPTS must be a whole number ≥ 1, not '$START_ATTEMPTS'"
[[ "$RETRY_SECONDS" =~ ^[0-9]+(\.[0-9]+)?$ ]] || die "RETRY_SECONDS must be a number of seconds, not '$RETRY_SECONDS'"
BUDGET_WAIT_SECONDS="${BUDGET_WAIT_SECONDS:-900}"
[[ "$BUDGET_WAIT_SECONDS" =~ ^[0-9]+$ ]] || die "BUDGET_WAIT_SECONDS must be a whole number of seconds, not '$BUDGET_WAIT_SECONDS'"
[ -e "$OUTPUT" ] || die "$OUTPUT does not exist (set WRANGLER_OUTPUT_FILE_DIRECTORY for wrangler versions upload)"
[ -r "$OUTPUT" ] || die "cannot read $OUTPUT"
command -v curl >/dev/null || die "curl is required"
command -v node >/dev/null || die "node is required (wrangler needs it anyway)"

# Prints `<version_id> <worker_name> <wrangler_environment>` of the one version-upload
# entry in the output file (or in every file of the output directory), or an error.
# wrangler writes one file per run into WRANGLER_OUTPUT_FILE_DIRECTORY
# (wrangler-output-<time>-<random>.json) and appends to WRANGLER_OUTPUT_FILE_PATH.
UPLOAD="$(node -e '
  const fs = require("fs"), path = require("path");
  const where = process.argv[1];
  const files = fs.statSync(where).isDirectory()
    ? fs.readdirSync(where).filter(f => f.endsWith(".json")).map(f => path.join(where, f))
    : [where];
  const uploads = [];
  for (const file of files) {
    for (const line of fs.readFileSync(file, "utf8").split("\n")) {
      if (!line.trim()) continue;
      let e; try { e = JSON.parse(line); } catch { continue; }
      if (e && e.type === "version-upload") uploads.push(e);
    }
  }
  const fail = m => { process.stdout.write("ERROR " + m); process.exit(0); };
  if (uploads.length === 0)
    fail(`no {"type":"version-upload"} entry in ${where} (did wrangler versions upload run with ` +
         `WRANGLER_OUTPUT_FILE_DIRECTORY set to it? WRANGLER_OUTPUT_FILE_PATH, if also set, wins)`);
  if (uploads.length > 1)
    fail(`${where} holds ${uploads.length} version-upload entries (${uploads.map(u => u.version_id).join(", ")}); ` +
         `give each upload a fresh WRANGLER_OUTPUT_FILE_DIRECTORY (mktemp -d) so an older one is never taken`);
  const u = uploads[0];
  if (!u.version_id) fail("the version-upload entry has no version_id");
  if (!u.worker_name) fail("the version-upload entry has no worker_name, so the Worker cannot be checked");
  process.stdout.write(`${u.version_id} ${u.worker_name} ${u.wrangler_environment || ""}`);
' "$OUTPUT")"
case "$UPLOAD" in ERROR*) die "${UPLOAD#ERROR }" ;; esac
read -r VERSION_ID WORKER_NAME WRANGLER_ENV <<<"$UPLOAD"
if [ "$WORKER_NAME" != "$SCRIPT" ]; then
  die "wrangler uploaded version $VERSION_ID to the Worker '$WORKER_NAME'${WRANGLER_ENV:+ (--env $WRANGLER_ENV)}, not '$SCRIPT': pass '$WORKER_NAME', the name the gate and the Cloudflare API know it by"
fi

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

WORK="$(mktemp -d)"
trap 'rm -rf "$WORK"' EXIT
# Secrets go through a header file descriptor, so they never show up in `ps`.
secret_headers() {
  printf 'Authorization: Bearer %s\n' "$HOOK_TOKEN"
  if [ -n "${CF_ACCESS_CLIENT_ID:-}" ]; then
    printf 'CF-Access-Client-Id: %s\nCF-Access-Client-Secret: %s\n' \
      "$CF_ACCESS_CLIENT_ID" "$CF_ACCESS_CLIENT_SECRET"
  fi
}

attempt=1
budget_waited=0
while :; do
  : > "$WORK/headers"
  CURL_EXIT=0
  STATUS="$(curl -sS --connect-timeout 15 --max-time 60 -o "$WORK/answer" -D "$WORK/headers" \
    -w '%{http_code}' -X POST -H 'Content-Type: application/json' -H @<(secret_headers) \
    --data-binary "$BODY" "${GATE_URL%/}/v1/rollouts" 2>"$WORK/curl-error")" || CURL_EXIT=$?
  WAIT=""
  if [ "$CURL_EXIT" -ne 0 ]; then
    # 1 unsupported protocol, 3 malformed URL: no retry fixes the URL.
    case "$CURL_EXIT" in 1|3) die "GATE_URL is not a usable URL: $(cat "$WORK/curl-error")" ;; esac
    WHY="could not reach $GATE_URL: $(tr -d '\r' < "$WORK/curl-error" | tail -n1)"
  else
    case "$STATUS" in
      200|201)
        [ "$STATUS" = 201 ] && what="started" || what="already started (same version)"
        echo "start-rollout: $SCRIPT $VERSION_ID $what" >&2
        echo "$VERSION_ID"
        exit 0
        ;;
      429|5??)
        WHY="the gate answered HTTP $STATUS"
        WAIT="$(tr -d '\r' < "$WORK/headers" | awk 'tolower($1) == "retry-after:" && $2 ~ /^[0-9]+$/ {print $2}' | tail -n1)"
        if [ "$STATUS" = 503 ] && grep -q '"api_budget_in_use"' "$WORK/answer"; then
          # Not a failure: the gate keeps its API budget for the running rollouts and
          # says when to come back. Wait that long, within BUDGET_WAIT_SECONDS in all.
          WAIT="${WAIT:-60}"
          if [ $((budget_waited + WAIT)) -gt "$BUDGET_WAIT_SECONDS" ]; then
            echo "start-rollout: the gate's API budget stayed in use for ${budget_waited}s (BUDGET_WAIT_SECONDS=$BUDGET_WAIT_SECONDS); gave up" >&2
            exit 2
          fi
          MESSAGE="$(node -e 'process.stdout.write(JSON.parse(require("fs").readFileSync(process.argv[1], "utf8")).error.message)' "$WORK/answer" 2>/dev/null || true)"
          [ -n "$MESSAGE" ] || MESSAGE="its Cloudflare API budget is in use"
          echo "start-rollout: waiting ${WAIT}s: $MESSAGE" >&2
          sleep "$WAIT"
          budget_waited=$((budget_waited + WAIT))
          continue
        fi
        ;;
      *)
        MESSAGE="$(node -e '
          const text = require("fs").readFileSync(process.argv[1], "utf8");
          try { const e = JSON.parse(text).error; process.stdout.write(`${e.code}: ${e.message}`); }
          catch { process.stdout.write(text.slice(0, 500)); }
        ' "$WORK/answer")"
        HINT=""
        case "$STATUS" in
          30?|401|403)
            # Cloudflare Access answers an unauthenticated request with a redirect to its
            # login page (or 403); the gate's own refusals are JSON (401, or 403
            # missing_scope for a token without the start scope).
            [ -n "${CF_ACCESS_CLIENT_ID:-}" ] ||
              HINT=" (if the gate sits behind Cloudflare Access, set CF_ACCESS_CLIENT_ID and CF_ACCESS_CLIENT_SECRET)" ;;
        esac
        echo "start-rollout: the gate refused $SCRIPT $VERSION_ID (HTTP $STATUS) $MESSAGE$HINT" >&2
        exit 1
        ;;
    esac
  fi
  if [ "$attempt" -ge "$START_ATTEMPTS" ]; then
    echo "start-rollout: $WHY; gave up after $attempt tries" >&2
    exit 2
  fi
  BACKOFF="$(awk -v b="$RETRY_SECONDS" -v n="$attempt" -v r="${WAIT:-0}" \
    'BEGIN { s = b * 2 ^ (n - 1); if (r > s) s = r; if (s > 60) s = 60; print s }')"
  echo "start-rollout: $WHY; try $attempt of $START_ATTEMPTS, again in ${BACKOFF}s" >&2
  sleep "$BACKOFF"
  attempt=$((attempt + 1))
done
