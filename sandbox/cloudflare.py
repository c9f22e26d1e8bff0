"""The stand-in Cloudflare v4 API for Workers versions, deployments and secrets: auth, the
v4 envelope, list shapes (`result.items` + `result_info`, `result.deployments` newest
first), create-deployment validation as the real API enforces it (cohorts included),
the secret-change rollback rule (10220, `?force=true`), and the switchable 429/5xx/slow
faults of the `cf.*` route classes.

Error codes. REAL, each with its source:
  10000  "Authentication error": a well-formed token the API does not know (HTTP 401)
         [cloudflare/workers-sdk issues; platform reference section 1]
  10000  with HTTP 403: a valid token that lacks the permission the route needs
         [cloudflare/terraform-provider-cloudflare issue 1533, a maintainer: "HTTP status
         403: Authentication error (10000)" is the token's permissions; lablabs/
         cloudflare-exporter issue 120 likewise]
  9109   "Unauthorized to access requested resource": a known token used on another
         account (HTTP 403) [third-party clients' captured answers]
  6003   "Invalid request headers" with error_chain 6111 "Invalid format for
         Authorization header": a missing or malformed Authorization header (HTTP 400)
         [a third-party client's captured answer; the platform reference]
  10007  "This Worker does not exist on your account." (HTTP 404)
         [cloudflare/workers-sdk, packages/wrangler/src/worker-not-found-error.ts]
  971    "Please wait and consider throttling your request speed" (HTTP 429 +
         retry-after) [developers.cloudflare.com/fundamentals/api/reference/limits/]
  10013  "workers.api.error.unknown" (5xx) [cloudflare/workers-sdk issues 4724, 6553]
  7000   "No route for that URI" (HTTP 400) [third-party clients' captured answers]
  10220  a deployment back to a version older than a secret change, without
         ?force=true (HTTP 400) [packages/wrangler/src/versions/api.ts,
         CANNOT_ROLLBACK_WITH_MODIFIED_SECERT_CODE; its test mocks the message]
  10215  `PUT .../secrets` while the latest version is not fully deployed
         [packages/wrangler/src/secret/index.ts, VERSION_NOT_DEPLOYED_ERR_CODE]; the
         HTTP status (400) and the message are the sandbox's: wrangler shows neither
PLACEHOLDERS (no source gives the real code): the PLACEHOLDER_* constants below. They sit
in 999000-999999, a range no Cloudflare source uses, so nothing can mistake them for a
real code with another meaning.
"""

from __future__ import annotations

import math
import re
from typing import Any

from .faults import Fault, inject
from .httpio import Request, Response, json_response
from .world import HUMAN_EMAIL, SECRET_NAME_RE, Cohort, Script, World, WorldError, changed_secrets

ROUTE_RE = re.compile(
    r"^/client/v4/accounts/(?P<acct>[^/]+)/workers/scripts/(?P<script>[^/]+)"
    r"/(?P<kind>versions|deployments|secrets)(?:/(?P<id>[^/]+))?/?$"
)
# RFC 6750 b64token: what a well-formed bearer token may contain.
TOKEN_RE = re.compile(r"^[A-Za-z0-9._~+/-]+=*$")
PCT_TOLERANCE = 0.001
DEPLOYABLE_VERSIONS = 100
MESSAGE_MAX_BYTES = 1000
# cohort-based-deployments.mdx, "Cohort limitations".
COHORT_NAME_RE = re.compile(r"^[A-Za-z0-9_-]{1,10}$")
MAX_COHORTS = 5
MAX_DISTINCT_VERSIONS = 2

ERR_AUTH = (10000, "Authentication error")
ERR_FORBIDDEN = (9109, "Unauthorized to access requested resource")
ERR_BAD_HEADERS = (6003, "Invalid request headers")
ERR_AUTH_FORMAT = (6111, "Invalid format for Authorization header")
ERR_NOT_FOUND = (10007, "This Worker does not exist on your account.")
ERR_RATE = (971, "Please wait and consider throttling your request speed")
ERR_SERVER = (10013, "workers.api.error.unknown")
ERR_NO_ROUTE = (7000, "No route for that URI")
ERR_SECRETS_CHANGED = 10220
ERR_VERSION_NOT_DEPLOYED = 10215
# The 10220 message, as wrangler's own test mocks it; wrangler reads the secret names
# after "The following secrets have changed:" split on ", "
# (packages/wrangler/src/__tests__/rollback.test.ts; versions/api.ts createDeployment).
SECRETS_CHANGED_MESSAGE = ("A secret has changed since this version was active. If you are sure this is ok, "
                           "add a ?force=true query parameter to allow the rollback. "
                           "The following secrets have changed: ")
# The 10215 message: wrangler replaces it with its own, so none is known; this is ours.
VERSION_NOT_DEPLOYED_MESSAGE = "The latest version of this Worker is not fully deployed."

# Placeholders: no source gives the real code (HTTP status 400 is documented for a bad
# deployment body in cohort-based-deployments.mdx, "Error handling"; the rest are ours).
PLACEHOLDER_INVALID_DEPLOYMENT = 999001  # no source gives the real code: a bad split or cohorts
PLACEHOLDER_BAD_JSON = 999002  # no source gives the real code: a body that is not JSON
PLACEHOLDER_VERSION_NOT_FOUND = 999003  # no source gives the real code: GET of an unknown version
PLACEHOLDER_DEPLOYMENT_NOT_FOUND = 999004  # no source gives the real code
PLACEHOLDER_BAD_PAGING = 999005  # no source gives the real code: page / per_page out of range
PLACEHOLDER_INVALID_SECRET = 999006  # no source gives the real code: a bad PUT .../secrets body
PLACEHOLDER_SECRET_NOT_FOUND = 999007  # no source gives the real code
PLACEHOLDER_METHOD_NOT_ALLOWED = 999008  # no source gives the real code (nor the HTTP status)
PLACEHOLDER_SANDBOX_CONFLICT = 999009  # sandbox only: a write before generated data (a harness mistake)


def envelope(result: Any, **extra: Any) -> dict[str, Any]:
    """A success envelope."""
    return {"success": True, "errors": [], "messages": [], "result": result, **extra}


def error(status: int, route: str, errors: list[dict[str, Any]],
          headers: list[tuple[str, str]] | None = None, note: str | None = None) -> Response:
    """A failure envelope with HTTP `status`."""
    body = {"success": False, "errors": errors, "messages": [], "result": None}
    return json_response(status, body, route, headers, note)


def err(code: int, message: str, pointer: str | None = None) -> dict[str, Any]:
    """One `errors[]` entry."""
    e: dict[str, Any] = {"code": code, "message": message}
    if pointer is not None:
        e["source"] = {"pointer": pointer}
    return e


def route_class(method: str, kind: str) -> str:
    """The fault/call-log route class of a request."""
    if kind == "versions":
        return "cf.versions"
    return "cf.deployments.write" if method == "POST" else "cf.deployments.read"


def fault_answer(f: Fault) -> Response:
    """The envelope a status fault answers with (429 carries `retry-after`)."""
    if f.body is not None:
        return Response(f.status or 500, f.body.encode(), [("Content-Type", "text/plain")])
    if f.status == 429:
        return error(429, "", [err(*ERR_RATE)], [("retry-after", str(f.retry_after))])
    if f.status == 401:
        return error(401, "", [err(*ERR_AUTH)])
    if f.status == 403:
        return error(403, "", [err(*ERR_FORBIDDEN)])
    return error(f.status or 500, "", [err(*ERR_SERVER)])


def malformed_auth(route: str) -> Response:
    """HTTP 400, 6003 with 6111 in `error_chain`: the Authorization header is missing or
    not `Bearer <token>`."""
    e = err(*ERR_BAD_HEADERS)
    e["error_chain"] = [err(*ERR_AUTH_FORMAT)]
    return error(400, route, [e])


def bearer_token(req: Request) -> str | None:
    """The token of a well-formed `Authorization: Bearer <token>` header, else None."""
    auth = req.header("authorization") or ""
    scheme, _, token = auth.partition(" ")
    if scheme.lower() != "bearer" or not TOKEN_RE.match(token.strip()):
        return None
    return token.strip()


def authorize(world: World, req: Request, acct_id: str, route: str) -> Response | None:
    """None when the request's token opens `acct_id`; else the answer: 400 6003/6111 for a
    malformed header, 401 10000 for an unknown token, 403 10000 for a token without the
    Workers Scripts permission (an account's analytics-only token), 403 9109 for another
    account's."""
    token = bearer_token(req)
    if token is None:
        return malformed_auth(route)
    holder = world.token_holder(token)
    if holder is None:
        return error(401, route, [err(*ERR_AUTH)])
    account, kind = holder
    if kind != "api":
        # A valid token without Workers Scripts permission (the analytics-only token).
        return error(403, route, [err(*ERR_AUTH)])
    if account.id != acct_id:
        return error(403, route, [err(*ERR_FORBIDDEN)])
    return None


ALLOWED_METHODS = {
    ("versions", False): ("GET",), ("versions", True): ("GET",),
    ("deployments", False): ("GET", "POST"), ("deployments", True): ("GET",),
    ("secrets", False): ("GET", "PUT"), ("secrets", True): ("GET", "DELETE"),
}


def handle(world: World, req: Request) -> Response:
    """Dispatches one `/client/v4/...` request (except the SQL API)."""
    m = ROUTE_RE.match(req.path)
    if m is None:
        return error(400, "cf.unknown", [err(*ERR_NO_ROUTE)])
    acct_id, name, kind, item = m["acct"], m["script"], m["kind"], m["id"]
    route = route_class(req.method, kind)
    if req.method not in ALLOWED_METHODS[(kind, item is not None)]:
        return error(405, route, [err(PLACEHOLDER_METHOD_NOT_ALLOWED, f"Method {req.method} is not allowed here.")])
    refused = authorize(world, req, acct_id, route)
    if refused is not None:
        return refused
    injected = inject(world.faults, route, world.now_ms, name, fault_answer)
    if injected is not None:
        return injected
    with world.lock:
        script = world.scripts.get(name)
        if script is None or script.account_id != acct_id:
            return error(404, route, [err(*ERR_NOT_FOUND)])
        if kind == "versions":
            return get_version(script, item, route) if item else list_versions(script, req, route)
        if kind == "secrets":
            return handle_secrets(world, script, req, item, route)
        if req.method == "POST":
            author = world.accounts[acct_id].author_email
            return create_deployment(world, script, req, author, route)
        return get_deployment(script, item, route) if item else list_deployments(script, route)


def route_class(method: str, kind: str) -> str:
    """The fault/call-log route class of a request."""
    if kind == "versions":
        return "cf.versions"
    if kind == "secrets":
        return "cf.secrets"
    return "cf.deployments.write" if method == "POST" else "cf.deployments.read"


def get_version(script: Script, version_id: str, route: str) -> Response:
    """GET .../versions/{id}."""
    v = script.version(version_id)
    if v is None:
        return error(404, route, [err(PLACEHOLDER_VERSION_NOT_FOUND, f"Version {version_id} not found.")])
    return json_response(200, envelope(v.full()), route)


def list_versions(script: Script, req: Request, route: str) -> Response:
    """GET .../versions?page=&per_page=&deployable=: newest first, paged."""
    items = list(reversed(script.versions))
    if (req.arg("deployable") or "").lower() == "true":
        items = items[:DEPLOYABLE_VERSIONS]
        info = {"page": 1, "per_page": len(items), "count": len(items), "total_count": len(items),
                "total_pages": 1}
        return json_response(200, envelope({"items": [v.summary() for v in items]}, result_info=info), route)
    try:
        page = int(req.arg("page", "1") or "1")
        per_page = int(req.arg("per_page", "10") or "10")
    except ValueError:
        return error(400, route, [err(PLACEHOLDER_BAD_PAGING, "page and per_page must be integers")])
    if page < 1 or not 1 <= per_page <= 100:
        return error(400, route, [err(PLACEHOLDER_BAD_PAGING, "page must be >= 1 and per_page in [1, 100]")])
    chunk = items[(page - 1) * per_page: page * per_page]
    info = {"page": page, "per_page": per_page, "count": len(chunk), "total_count": len(items),
            "total_pages": max(1, math.ceil(len(items) / per_page))}
    return json_response(200, envelope({"items": [v.summary() for v in chunk]}, result_info=info), route)


def list_deployments(script: Script, route: str) -> Response:
    """GET .../deployments: newest first; the first is live."""
    deps = [d.to_api() for d in reversed(script.deployments)]
    return json_response(200, envelope({"deployments": deps}), route)


def get_deployment(script: Script, deployment_id: str, route: str) -> Response:
    """GET .../deployments/{id}."""
    d = next((d for d in script.deployments if d.id == deployment_id), None)
    if d is None:
        return error(404, route, [err(PLACEHOLDER_DEPLOYMENT_NOT_FOUND, f"Deployment {deployment_id} not found.")])
    return json_response(200, envelope(d.to_api()), route)


# ---- create-deployment validation ------------------------------------------------


def invalid(message: str, pointer: str) -> dict[str, Any]:
    """One validation error of a deployment body (placeholder code)."""
    return err(PLACEHOLDER_INVALID_DEPLOYMENT, message, pointer)


def validate_split(script: Script, body: Any) -> tuple[list[tuple[str, float]], list[dict[str, Any]]]:
    """Checks a create-deployment body's strategy, default split and annotations; returns
    the split and the errors found. Cohorts: `validate_cohorts`."""
    if not isinstance(body, dict):
        return [], [invalid("Request body must be a JSON object.", "/")]
    errors: list[dict[str, Any]] = []
    if body.get("strategy") != "percentage":
        errors.append(invalid("strategy must be \"percentage\".", "/strategy"))
    split = check_versions(script, body.get("versions"), "/versions", errors)
    check_annotations(body.get("annotations"), errors)
    return split, errors


def check_versions(script: Script, versions: Any, where: str, errors: list[dict[str, Any]]) -> list[tuple[str, float]]:
    """One `versions` array (the default or a cohort's): 1-2 known versions summing to 100."""
    if not isinstance(versions, list) or not versions:
        errors.append(invalid("versions must be a non-empty array.", where))
        return []
    if len(versions) > 2:
        errors.append(invalid("A deployment may reference at most 2 versions.", f"{where}/2"))
    split: list[tuple[str, float]] = []
    for i, entry in enumerate(versions):
        split_entry = check_entry(script, entry, f"{where}/{i}", errors)
        if split_entry is not None:
            split.append(split_entry)
    ids = [v for v, _ in split]
    if len(set(ids)) != len(ids):
        errors.append(invalid("A version may appear only once in a deployment.", where))
    if len(split) == len(versions) and abs(sum(p for _, p in split) - 100) > PCT_TOLERANCE:
        errors.append(invalid("The sum of version percentages must be 100.", where))
    return split


def check_entry(script: Script, entry: Any, where: str, errors: list[dict[str, Any]]) -> tuple[str, float] | None:
    """One `versions[i]` entry: a known version of this script and a percentage in [0, 100]."""
    if not isinstance(entry, dict):
        errors.append(invalid("Each version must be an object.", where))
        return None
    vid, pct = entry.get("version_id"), entry.get("percentage")
    ok = True
    if isinstance(pct, bool) or not isinstance(pct, (int, float)) or not math.isfinite(pct) or not 0 <= pct <= 100:
        errors.append(invalid("percentage must be a number between 0 and 100.", where + "/percentage"))
        ok = False
    if not isinstance(vid, str) or not vid:
        errors.append(invalid("version_id is required.", where + "/version_id"))
        return None
    version = script.version(vid)
    if version is None:
        errors.append(invalid(f"Version {vid} does not exist on this Worker.", where + "/version_id"))
        return None
    newest = script.versions[-1].number
    if version.number <= newest - DEPLOYABLE_VERSIONS:
        errors.append(invalid(f"Version {vid} is too old to deploy; only the last "
                              f"{DEPLOYABLE_VERSIONS} versions can be deployed.", where + "/version_id"))
        return None
    return (vid, float(pct)) if ok else None


def validate_cohorts(script: Script, raw: Any, split: list[tuple[str, float]],
                     errors: list[dict[str, Any]]) -> tuple[Cohort, ...]:
    """`cohorts` (optional): at most 5, names of 1-10 characters [A-Za-z0-9_-] unique
    without regard to case, each with its own split summing to 100, and at most 2
    distinct versions across the default and every cohort (cohort-based-deployments.mdx)."""
    if raw is None:
        return ()
    if not isinstance(raw, list):
        errors.append(invalid("cohorts must be an array.", "/cohorts"))
        return ()
    if len(raw) > MAX_COHORTS:
        errors.append(invalid(f"A deployment may define at most {MAX_COHORTS} cohorts.", f"/cohorts/{MAX_COHORTS}"))
    cohorts: list[Cohort] = []
    seen: set[str] = set()
    for i, c in enumerate(raw):
        where = f"/cohorts/{i}"
        if not isinstance(c, dict):
            errors.append(invalid("Each cohort must be an object.", where))
            continue
        name = c.get("name")
        if not isinstance(name, str) or not COHORT_NAME_RE.match(name):
            errors.append(invalid("A cohort name is 1-10 letters, digits, '-' or '_'.", where + "/name"))
            name = None
        elif name.lower() in seen:
            errors.append(invalid(f"Cohort names must be unique (case-insensitive): {name}.", where + "/name"))
        else:
            seen.add(name.lower())
        before = len(errors)
        c_split = check_versions(script, c.get("versions"), where + "/versions", errors)
        if name is not None and len(errors) == before:
            cohorts.append(Cohort(name, tuple(c_split)))
    distinct = {v for v, _ in split} | {v for c in cohorts for v, _ in c.versions}
    if len(distinct) > MAX_DISTINCT_VERSIONS:
        errors.append(invalid(f"A deployment may reference at most {MAX_DISTINCT_VERSIONS} distinct versions "
                              "across its default and all cohorts.", "/cohorts"))
    return tuple(cohorts)


def check_annotations(annotations: Any, errors: list[dict[str, Any]]) -> None:
    """`annotations` is optional; `workers/message` must be a string."""
    if annotations is None:
        return
    if not isinstance(annotations, dict):
        errors.append(invalid("annotations must be an object.", "/annotations"))
        return
    msg = annotations.get("workers/message")
    if msg is not None and not isinstance(msg, str):
        errors.append(invalid("workers/message must be a string.", "/annotations/workers~1message"))


def validate_deployment(script: Script, body: Any) -> tuple[list[tuple[str, float]], tuple[Cohort, ...],
                                                              list[dict[str, Any]]]:
    """A whole create-deployment body: the default split, cohorts, annotations."""
    split, errors = validate_split(script, body)
    cohorts = validate_cohorts(script, body.get("cohorts"), split, errors) if isinstance(body, dict) else ()
    return split, cohorts, errors


def truncate_bytes(text: str, limit: int) -> str:
    """`text` cut to at most `limit` UTF-8 bytes on a character boundary."""
    return text.encode("utf-8")[:limit].decode("utf-8", "ignore")


# ---- the secret-change rollback rule ------------------------------------------------


def secrets_blocking(script: Script, split: list[tuple[str, float]], cohorts: tuple[Cohort, ...]) -> list[str]:
    """The secrets that make this deployment a refused rollback ([] = allowed).

    The rule as the sandbox models it (no source states the server's exact rule; the SDK
    says force "will create the deployment even if normally blocked by something such
    rolling back to an older version when a secret has changed", cloudflare-typescript
    src/resources/workers/scripts/deployments.ts): a version is moved back to when it is
    OLDER than the newest version of the live deployment and the new deployment gives it
    MORE traffic than the live one does (per cohort, a cohort new to the deployment
    comparing with the live default). It is blocked when its secrets differ from the
    latest version's, which holds the current secrets (every secret change makes a
    version). Forward moves, the newest live version growing, are never blocked.
    """
    live = script.live()
    if live is None or not script.versions:
        return []
    current = script.versions[-1]
    newest_live = max((v.number for vid in live.version_ids() if (v := script.version(vid)) is not None), default=0)
    live_cohorts = {c.name.lower(): c.versions for c in live.cohorts}
    pairs = [(split, live.versions)] + [(list(c.versions), live_cohorts.get(c.name.lower(), live.versions))
                                        for c in cohorts]
    changed: set[str] = set()
    for new, old in pairs:
        old_share = dict(old)
        for vid, pct in new:
            v = script.version(vid)
            if v is None or v.number >= newest_live or pct <= old_share.get(vid, 0.0):
                continue
            changed.update(changed_secrets(v, current))
    return sorted(changed)


def create_deployment(world: World, script: Script, req: Request, author: str, route: str) -> Response:
    """POST .../deployments[?force=true]."""
    try:
        body = req.json()
    except (ValueError, UnicodeDecodeError):
        return error(400, route, [err(PLACEHOLDER_BAD_JSON, "Could not parse request body as JSON.")])
    split, cohorts, errors = validate_deployment(script, body)
    if errors:
        return error(400, route, errors)
    force = (req.arg("force") or "").lower() == "true"
    blocking = secrets_blocking(script, split, cohorts)
    if blocking and not force:
        return error(400, route, [err(ERR_SECRETS_CHANGED, SECRETS_CHANGED_MESSAGE + ", ".join(blocking))],
                     note="refused: secrets changed")
    annotations = {"workers/triggered_by": "deployment"}
    msg = (body.get("annotations") or {}).get("workers/message")
    if msg:
        annotations["workers/message"] = truncate_bytes(msg, MESSAGE_MAX_BYTES)
    try:
        d = world.add_deployment(script, split, source="api", author_email=author, annotations=annotations,
                                 cohorts=cohorts)
    except WorldError as e:  # clock behind generated data: a harness mistake, say so
        return error(409, route, [err(PLACEHOLDER_SANDBOX_CONFLICT, e.message)])
    note = split_note(split) + (" forced" if force and blocking else "")
    return json_response(200, envelope(d.to_api()), route, note=note)


def split_note(split: list[tuple[str, float]]) -> str:
    """`<id>@<pct> <id>@<pct>`, as wrangler spells a split (for the call log)."""
    return " ".join(f"{v}@{p:g}" for v, p in split)


# ---- secrets ---------------------------------------------------------------------------


def handle_secrets(world: World, script: Script, req: Request, name: str | None, route: str) -> Response:
    """`GET|PUT .../secrets` and `GET|DELETE .../secrets/{name}` (cloudflare-typescript
    src/resources/workers/scripts/secrets.ts): names and types only, never values. A PUT
    or DELETE changes the secret for the latest version and deploys the result at 100%,
    which the API refuses with 10215 while the latest version is not fully deployed."""
    latest = script.versions[-1] if script.versions else None
    names = sorted(latest.secrets) if latest is not None else []
    if req.method == "GET":
        if name is None:
            return json_response(200, envelope([{"name": n, "type": "secret_text"} for n in names]), route)
        if name not in names:
            return error(404, route, [err(PLACEHOLDER_SECRET_NOT_FOUND, f"Secret {name} not found.")])
        return json_response(200, envelope({"name": name, "type": "secret_text"}), route)
    if req.method == "PUT":
        try:
            body = req.json()
        except (ValueError, UnicodeDecodeError):
            return error(400, route, [err(PLACEHOLDER_BAD_JSON, "Could not parse request body as JSON.")])
        problem = secret_body_problem(body)
        if problem is not None:
            return error(400, route, [err(PLACEHOLDER_INVALID_SECRET, problem)])
        name, value = body["name"], body["text"]
    else:
        value = None
    author = world.accounts[script.account_id].author_email
    try:
        world.change_secret(script, name, value, deploy=True, author_email=author)
    except WorldError as e:
        if e.code == "version_not_deployed":
            return error(400, route, [err(ERR_VERSION_NOT_DEPLOYED, VERSION_NOT_DEPLOYED_MESSAGE)])
        if e.code == "secret_not_found":
            return error(404, route, [err(PLACEHOLDER_SECRET_NOT_FOUND, f"Secret {name} not found.")])
        return error(409, route, [err(PLACEHOLDER_SANDBOX_CONFLICT, e.message)])
    result = {"name": name, "type": "secret_text"} if value is not None else None
    return json_response(200, envelope(result), route, note=f"secret {name} {'set' if value is not None else 'deleted'}")


def secret_body_problem(body: Any) -> str | None:
    """What is wrong with a `PUT .../secrets` body `{name, text, type: "secret_text"}`."""
    if not isinstance(body, dict):
        return "Request body must be a JSON object."
    if body.get("type") != "secret_text":
        return "type must be \"secret_text\" (secret_key bindings are not modelled)."
    if not isinstance(body.get("name"), str) or not SECRET_NAME_RE.match(body["name"]):
        return "name must be a JavaScript variable name."
    if not isinstance(body.get("text"), str):
        return "text must be a string."
    return None


# ---- "someone ran wrangler" (control API) ---------------------------------------------


def manual_deploy(world: World, script: Script, doc: dict[str, Any]) -> dict[str, Any]:
    """"Someone ran wrangler": a new live deployment behind the gate's back.

    `triggered_by` "upload" (default) uploads a new version unless `version_id` is given
    and deploys it at 100%; "rollback" redeploys `version_id` (default: the main version
    of the deployment before the live one) with `workers/rollback_from`. `versions` gives
    a full split instead; `cohorts` adds cohorts (as a person would through the API).
    A human deploy is not refused by the secret rule: it stands for a forced one.
    """
    with world.lock:
        trigger = doc.get("triggered_by", "upload")
        live = script.live()
        annotations = {"workers/triggered_by": trigger}
        if doc.get("message"):
            annotations["workers/message"] = str(doc["message"])
        cohorts: tuple[Cohort, ...] = ()
        if doc.get("versions") is not None or doc.get("cohorts") is not None:
            versions = doc.get("versions")
            if versions is None:
                versions = [{"version_id": v, "percentage": p} for v, p in live.versions] if live else None
            body = {"strategy": "percentage", "versions": versions, "cohorts": doc.get("cohorts")}
            split, cohorts, errors = validate_deployment(script, body)
            if errors:
                raise WorldError(400, "invalid_split", "; ".join(e["message"] for e in errors))
        else:
            vid = doc.get("version_id") or default_manual_version(world, script, trigger)
            if script.version(vid) is None:
                raise WorldError(404, "version_not_found", f"no version {vid!r} on {script.name}")
            split = [(vid, 100.0)]
        if trigger == "rollback" and live is not None:
            annotations["workers/rollback_from"] = live.id
        d = world.add_deployment(script, split, source=doc.get("source", "wrangler"),
                                 author_email=doc.get("author_email", HUMAN_EMAIL), annotations=annotations,
                                 created_on_ms=doc.get("created_on_ms"), cohorts=cohorts)
        return d.to_api()


def default_manual_version(world: World, script: Script, trigger: str) -> str:
    """The version a manual deploy puts live when none is named."""
    if trigger == "rollback":
        if len(script.deployments) < 2:
            raise WorldError(409, "nothing_to_roll_back", "no earlier deployment to roll back to")
        prev = script.deployments[-2]
        return max(prev.versions, key=lambda vp: vp[1])[0]
    return world.add_version(script, {"author_email": HUMAN_EMAIL, "message": "manual wrangler deploy"}).id

