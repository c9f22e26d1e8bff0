"""The stand-in Cloudflare v4 API for Workers versions and deployments: auth, the v4
envelope, list shapes (`result.items` + `result_info`, `result.deployments` newest
first), create-deployment validation as the real API enforces it, and the switchable
429/5xx/slow faults of the `cf.*` route classes.

Error codes. Real (seen in Cloudflare answers or wrangler source): 10000 Authentication
error, 10007 Worker not found, 971 rate limited, 10013 unknown error, 7000 no route.
INVENTED for the sandbox (the real codes are undocumented): 10021 for every split
validation error, 10001 for a body that is not JSON, 10220 version not found.
"""

from __future__ import annotations

import math
import re
from typing import Any

from .faults import Fault, inject
from .httpio import Request, Response, json_response
from .world import HUMAN_EMAIL, Script, World, WorldError

ROUTE_RE = re.compile(
    r"^/client/v4/accounts/(?P<acct>[^/]+)/workers/scripts/(?P<script>[^/]+)"
    r"/(?P<kind>versions|deployments)(?:/(?P<id>[^/]+))?/?$"
)
PCT_TOLERANCE = 0.001
DEPLOYABLE_VERSIONS = 100
MESSAGE_MAX_BYTES = 1000

ERR_AUTH = (10000, "Authentication error")
ERR_NOT_FOUND = (10007, "This Worker does not exist on your account.")
ERR_RATE = (971, "Please wait and consider throttling your request speed")
ERR_SERVER = (10013, "An unknown error has occurred. If this error persists, please file a report in workers-sdk.")
ERR_NO_ROUTE = (7000, "No route for that URI")
ERR_VALIDATION = 10021  # invented: split validation
ERR_BAD_JSON = 10001  # invented: body not JSON
ERR_VERSION_NOT_FOUND = 10220  # invented


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
    if f.status in (401, 403):
        return error(f.status, "", [err(*ERR_AUTH)])
    return error(f.status or 500, "", [err(*ERR_SERVER)])


def handle(world: World, req: Request) -> Response:
    """Dispatches one `/client/v4/...` request (except the SQL API)."""
    m = ROUTE_RE.match(req.path)
    if m is None:
        return error(404, "cf.unknown", [err(*ERR_NO_ROUTE)])
    acct_id, name, kind, item = m["acct"], m["script"], m["kind"], m["id"]
    route = route_class(req.method, kind)
    allowed = {"versions": ("GET",), "deployments": ("GET",) if item else ("GET", "POST")}[kind]
    if req.method not in allowed:
        return error(405, route, [err(*ERR_NO_ROUTE)])
    account = world.account_for_token(req.bearer())
    if account is None:
        return error(401, route, [err(*ERR_AUTH)])
    if account.id != acct_id:
        return error(403, route, [err(*ERR_AUTH)])
    injected = inject(world.faults, route, world.now_ms, name, fault_answer)
    if injected is not None:
        return injected
    with world.lock:
        script = world.scripts.get(name)
        if script is None or script.account_id != acct_id:
            return error(404, route, [err(*ERR_NOT_FOUND)])
        if kind == "versions":
            return get_version(script, item, route) if item else list_versions(script, req, route)
        if req.method == "POST":
            return create_deployment(world, script, req, account.author_email, route)
        return get_deployment(script, item, route) if item else list_deployments(script, route)


def get_version(script: Script, version_id: str, route: str) -> Response:
    """GET .../versions/{id}."""
    v = script.version(version_id)
    if v is None:
        return error(404, route, [err(ERR_VERSION_NOT_FOUND, f"Version {version_id} not found.")])
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
        return error(400, route, [err(ERR_VALIDATION, "page and per_page must be integers")])
    if page < 1 or not 1 <= per_page <= 100:
        return error(400, route, [err(ERR_VALIDATION, "page must be >= 1 and per_page in [1, 100]")])
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
        return error(404, route, [err(ERR_VALIDATION, f"Deployment {deployment_id} not found.")])
    return json_response(200, envelope(d.to_api()), route)


def validate_split(script: Script, body: Any) -> tuple[list[tuple[str, float]], list[dict[str, Any]]]:
    """Checks a create-deployment body; returns the split and the errors found."""
    if not isinstance(body, dict):
        return [], [err(ERR_VALIDATION, "Request body must be a JSON object.", "/")]
    errors: list[dict[str, Any]] = []
    if body.get("strategy") != "percentage":
        errors.append(err(ERR_VALIDATION, "strategy must be \"percentage\".", "/strategy"))
    versions = body.get("versions")
    if not isinstance(versions, list) or not versions:
        errors.append(err(ERR_VALIDATION, "versions must be a non-empty array.", "/versions"))
        return [], errors
    if len(versions) > 2:
        errors.append(err(ERR_VALIDATION, "A deployment may reference at most 2 versions.", "/versions/2"))
    split: list[tuple[str, float]] = []
    for i, entry in enumerate(versions):
        split_entry = check_entry(script, entry, i, errors)
        if split_entry is not None:
            split.append(split_entry)
    ids = [v for v, _ in split]
    if len(set(ids)) != len(ids):
        errors.append(err(ERR_VALIDATION, "A version may appear only once in a deployment.", "/versions"))
    if len(split) == len(versions) and abs(sum(p for _, p in split) - 100) > PCT_TOLERANCE:
        errors.append(err(ERR_VALIDATION, "The sum of version percentages must be 100.", "/versions"))
    check_annotations(body.get("annotations"), errors)
    return split, errors


def check_entry(script: Script, entry: Any, i: int, errors: list[dict[str, Any]]) -> tuple[str, float] | None:
    """One `versions[i]` entry: a known version of this script and a percentage in [0, 100]."""
    where = f"/versions/{i}"
    if not isinstance(entry, dict):
        errors.append(err(ERR_VALIDATION, "Each version must be an object.", where))
        return None
    vid, pct = entry.get("version_id"), entry.get("percentage")
    ok = True
    if isinstance(pct, bool) or not isinstance(pct, (int, float)) or not math.isfinite(pct) or not 0 <= pct <= 100:
        errors.append(err(ERR_VALIDATION, "percentage must be a number between 0 and 100.", where + "/percentage"))
        ok = False
    if not isinstance(vid, str) or not vid:
        errors.append(err(ERR_VALIDATION, "version_id is required.", where + "/version_id"))
        return None
    version = script.version(vid)
    if version is None:
        errors.append(err(ERR_VALIDATION, f"Version {vid} does not exist on this Worker.", where + "/version_id"))
        return None
    newest = script.versions[-1].number
    if version.number <= newest - DEPLOYABLE_VERSIONS:
        errors.append(err(ERR_VALIDATION, f"Version {vid} is too old to deploy; only the last "
                          f"{DEPLOYABLE_VERSIONS} versions can be deployed.", where + "/version_id"))
        return None
    return (vid, float(pct)) if ok else None


def check_annotations(annotations: Any, errors: list[dict[str, Any]]) -> None:
    """`annotations` is optional; `workers/message` must be a string."""
    if annotations is None:
        return
    if not isinstance(annotations, dict):
        errors.append(err(ERR_VALIDATION, "annotations must be an object.", "/annotations"))
        return
    msg = annotations.get("workers/message")
    if msg is not None and not isinstance(msg, str):
        errors.append(err(ERR_VALIDATION, "workers/message must be a string.", "/annotations/workers~1message"))


def truncate_bytes(text: str, limit: int) -> str:
    """`text` cut to at most `limit` UTF-8 bytes on a character boundary."""
    return text.encode("utf-8")[:limit].decode("utf-8", "ignore")


def create_deployment(world: World, script: Script, req: Request, author: str, route: str) -> Response:
    """POST .../deployments[?force=true]."""
    try:
        body = req.json()
    except (ValueError, UnicodeDecodeError):
        return error(400, route, [err(ERR_BAD_JSON, "Could not parse request body as JSON.")])
    split, errors = validate_split(script, body)
    if errors:
        return error(400, route, errors)
    annotations = {"workers/triggered_by": "deployment"}
    msg = (body.get("annotations") or {}).get("workers/message")
    if msg:
        annotations["workers/message"] = truncate_bytes(msg, MESSAGE_MAX_BYTES)
    try:
        d = world.add_deployment(script, split, source="api", author_email=author, annotations=annotations)
    except WorldError as e:  # clock behind generated data: a harness mistake, say so
        return error(409, route, [err(ERR_VALIDATION, e.message)])
    return json_response(200, envelope(d.to_api()), route, note=split_note(split))


def split_note(split: list[tuple[str, float]]) -> str:
    """`<id>@<pct> <id>@<pct>`, as wrangler spells a split (for the call log)."""
    return " ".join(f"{v}@{p:g}" for v, p in split)


def manual_deploy(world: World, script: Script, doc: dict[str, Any]) -> dict[str, Any]:
    """"Someone ran wrangler": a new live deployment behind the gate's back.

    `triggered_by` "upload" (default) uploads a new version unless `version_id` is given
    and deploys it at 100%; "rollback" redeploys `version_id` (default: the main version
    of the deployment before the live one) with `workers/rollback_from`. `versions` gives
    a full split instead.
    """
    with world.lock:
        trigger = doc.get("triggered_by", "upload")
        live = script.live()
        annotations = {"workers/triggered_by": trigger}
        if doc.get("message"):
            annotations["workers/message"] = str(doc["message"])
        if doc.get("versions") is not None:
            split, errors = validate_split(script, {"strategy": "percentage", "versions": doc["versions"]})
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
                                 created_on_ms=doc.get("created_on_ms"))
        return d.to_api()


def default_manual_version(world: World, script: Script, trigger: str) -> str:
    """The version a manual deploy puts live when none is named."""
    if trigger == "rollback":
        if len(script.deployments) < 2:
            raise WorldError(409, "nothing_to_roll_back", "no earlier deployment to roll back to")
        prev = script.deployments[-2]
        return max(prev.versions, key=lambda vp: vp[1])[0]
    return world.add_version(script, {"author_email": HUMAN_EMAIL, "message": "manual wrangler deploy"}).id
