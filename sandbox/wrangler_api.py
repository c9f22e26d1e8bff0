"""The Cloudflare v4 endpoints that the real wrangler (the pinned 4.86) calls besides the
versions and deployments reads and the deployment write of `cloudflare.py`, so that
`wrangler versions upload`, `versions deploy`, `deployments list/status` and `rollback`
run against the sandbox unchanged (CLOUDFLARE_API_BASE_URL, CLOUDFLARE_ACCOUNT_ID,
CLOUDFLARE_API_TOKEN). `handle` answers the paths it owns and returns None for the rest,
which `server.py` then gives to `cloudflare.py`.

  GET   /accounts/{a}/workers/services/{name}            the Worker's "service" view
  POST  /accounts/{a}/workers/scripts/{name}/versions    multipart version upload
  GET   /accounts/{a}/workers/scripts/{name}/subdomain   workers.dev / preview switches
  GET   /accounts/{a}/workers/subdomain                  the account's workers.dev subdomain
  GET   /accounts/{a}/workers/scripts/{name}/script-settings   non-versioned settings
  PATCH /accounts/{a}/workers/scripts/{name}/script-settings
  GET   /accounts/{a}/workers/scripts/{name}/settings    the deployed version's settings
  GET   /memberships                                     the accounts a token opens
  GET   /accounts/{a}/workers/scripts/{name}/content/v2?version=   a version's modules

Sources for each shape, as wrangler 4.86 (node_modules/wrangler/wrangler-dist/cli.js,
from cloudflare/workers-sdk) reads and writes them:
- services: `versionsUpload` in packages/wrangler/src/versions/upload.ts reads
  `result.default_environment.script.{tag, tags, last_deployed_from}` and treats codes
  10007 / 10090 as "no such Worker" (src/utils/worker-not-found-error.ts).
- versions upload: the body is multipart form data with a `metadata` part (JSON:
  `main_module`, `bindings`, `compatibility_date`, `annotations` {`workers/message`,
  `workers/tag`}, ...) and one part per module, named by the module
  (src/deployment-bundle/create-worker-upload-form.ts); the query carries
  `bindings_inherit=strict`. The answer is a version (cloudflare/cloudflare-typescript
  src/resources/workers/scripts/versions.ts, `VersionCreateResponse`: id, number,
  metadata, resources, startup_time_ms); wrangler reads `id`, `startup_time_ms` and
  `metadata.has_preview`.
- subdomains: `{enabled, previews_enabled}` for a script and `{subdomain}` for the
  account (cloudflare-typescript src/resources/workers/scripts/subdomain.ts and
  src/resources/workers/subdomains.ts); wrangler builds the preview URL from them.
- script-settings: `PATCH` with JSON `{tags}` after an upload with environments
  (`applyServiceAndEnvironmentTags` adds `cf:service=<top-level name>` and
  `cf:environment=<env>`), answered with the settings (cloudflare-typescript
  src/resources/workers/scripts/script-and-version-settings.ts / settings.ts: logpush,
  observability, tags, tail_consumers).
- memberships: without CLOUDFLARE_ACCOUNT_ID wrangler lists `/memberships` page by page
  (`getAccountChoices`, packages/wrangler/src/user/choose-account.ts, via
  `fetchPagedListResult`) and uses each entry's `account` {id, name}; the entry shape is
  cloudflare-typescript src/resources/memberships.ts (`Membership`: id, account,
  permissions, roles, status).
- secrets: `wrangler secret put` (`PUT .../secrets`, refused with 10215 mid-split) is
  cloudflare.py's, with the secrets model of world.py; an upload here feeds that model:
  `secret_text` bindings with their text become the version's secrets, and without
  `secret_text` in `keep_bindings` the previous version's other secrets are dropped.
- content and inherit: `wrangler versions secret put` copies the latest version
  (`copyWorkerVersionWithNewSecrets` and `parseModules`, packages/wrangler/src/versions/
  secrets/index.ts): it reads the modules from `GET .../content/v2?version=<id>` (multipart,
  the main module named by the `cf-entrypoint` header) and uploads them again with every
  other binding as `{"type": "inherit"}` and `keep_bindings: ["secret_key", "secret_text"]`.
  An inherit binding takes the binding of that name (or `old_name`) from `version_id`,
  default the latest version (cloudflare-typescript versions.ts,
  `WorkersBindingKindInherit`); one with nothing to inherit is refused. A version seeded
  through the control API has no code: its content is a one-line placeholder module.
- settings: `GET .../settings` (cloudflare-typescript
  src/resources/workers/scripts/script-and-version-settings.ts: bindings,
  compatibility_date, compatibility_flags, logpush, tags, tail_consumers, usage_model, ...);
  wrangler's upload reads its bindings to decide what to provision
  (`collectPendingResources`, packages/wrangler/src/deployment-bundle/bindings.ts) and
  goes on without them when the call fails.

Error codes: 10000 authentication error and 10007 Worker not found are real (wrangler
source). 10021 for a malformed upload is the code wrangler's upload path treats as a
script validation error (it source-maps its notes); the exact codes the real API gives
for each malformed multipart case are not documented, so the messages here are ours.
"""

from __future__ import annotations

import hashlib
import json
import re
from email.parser import BytesParser
from email.policy import HTTP
from typing import Any

from .httpio import Request, Response, json_response
from .world import Script, World, WorldError, iso

ACCT = r"^/client/v4/accounts/(?P<acct>[^/]+)/workers"
SERVICE_RE = re.compile(ACCT + r"/services/(?P<script>[^/]+)/?$")
UPLOAD_RE = re.compile(ACCT + r"/scripts/(?P<script>[^/]+)/versions/?$")
SCRIPT_SUBDOMAIN_RE = re.compile(ACCT + r"/scripts/(?P<script>[^/]+)/subdomain/?$")
ACCOUNT_SUBDOMAIN_RE = re.compile(ACCT + r"/subdomain/?$")
MEMBERSHIPS_RE = re.compile(r"^/client/v4/memberships/?$")
CONTENT_RE = re.compile(ACCT + r"/scripts/(?P<script>[^/]+)/content/v2/?$")
SETTINGS_RE = re.compile(ACCT + r"/scripts/(?P<script>[^/]+)/script-settings/?$")
VERSIONED_SETTINGS_RE = re.compile(ACCT + r"/scripts/(?P<script>[^/]+)/settings/?$")

ERR_AUTH = (10000, "Authentication error")
ERR_NOT_FOUND = (10007, "This Worker does not exist on your account.")
ERR_NO_ROUTE = (7000, "No route for that URI")  # HTTP 400, as cloudflare.py answers it
ERR_UPLOAD = 10021  # wrangler: script validation error (packages/wrangler/src/versions/upload.ts)
ERR_BAD_JSON = 10001  # placeholder: no source gives the code for a body that is not JSON
ACCOUNT_SUBDOMAIN = "sandbox"
ROUTE = "cf.wrangler"
SETTINGS_KEYS = ("logpush", "observability", "tags", "tail_consumers")
MAX_MODULES = 100


def envelope(result: Any) -> dict[str, Any]:
    """A success envelope."""
    return {"success": True, "errors": [], "messages": [], "result": result}


def error(status: int, code: int, message: str) -> Response:
    """A failure envelope."""
    body = {"success": False, "errors": [{"code": code, "message": message}], "messages": [], "result": None}
    return json_response(status, body, ROUTE)


def handle(world: World, req: Request) -> Response | None:
    """Answers the wrangler-only endpoints; None for every other path."""
    p = req.path
    for regex, methods, fn in (
        (SERVICE_RE, ("GET",), get_service),
        (UPLOAD_RE, ("POST",), upload_version),
        (SCRIPT_SUBDOMAIN_RE, ("GET",), get_script_subdomain),
        (SETTINGS_RE, ("GET", "PATCH"), script_settings),
        (VERSIONED_SETTINGS_RE, ("GET",), versioned_settings),
        (CONTENT_RE, ("GET",), get_content),
    ):
        m = regex.match(p)
        if m is None or (regex is UPLOAD_RE and req.method != "POST"):
            continue  # GET .../versions is cloudflare.py's
        if req.method not in methods:
            return error(400, *ERR_NO_ROUTE)
        return authorized(world, req, m["acct"], lambda: with_script(world, req, m["acct"], m["script"], fn))
    if MEMBERSHIPS_RE.match(p):
        if req.method != "GET":
            return error(400, *ERR_NO_ROUTE)
        return memberships(world, req)
    m = ACCOUNT_SUBDOMAIN_RE.match(p)
    if m is not None:
        if req.method != "GET":
            return error(400, *ERR_NO_ROUTE)
        return authorized(world, req, m["acct"], lambda: json_response(
            200, envelope({"subdomain": ACCOUNT_SUBDOMAIN}), ROUTE))
    return None


def authorized(world: World, req: Request, acct_id: str, then: Any) -> Response:
    """The token must open this account (401 without one, 403 for another account)."""
    account = world.account_for_token(req.bearer())
    if account is None:
        return error(401, *ERR_AUTH)
    if account.id != acct_id:
        return error(403, *ERR_AUTH)
    return then()


def with_script(world: World, req: Request, acct_id: str, name: str, fn: Any) -> Response:
    """Runs `fn(world, script, req)` under the world lock, or answers 10007."""
    with world.lock:
        script = world.scripts.get(name)
        if script is None or script.account_id != acct_id:
            return error(404, *ERR_NOT_FOUND)
        return fn(world, script, req)


def settings_of(script: Script) -> dict[str, Any]:
    """The script's non-versioned settings, kept on the script object."""
    return script.__dict__.setdefault("wrangler_settings", {
        "logpush": False, "observability": None, "tags": [], "tail_consumers": None})


def worker_tag(script: Script) -> str:
    """A stable 32-hex tag per script (the Worker's id that never changes)."""
    return hashlib.md5(f"{script.account_id}/{script.name}".encode()).hexdigest()


def get_service(world: World, script: Script, req: Request) -> Response:
    """GET .../services/{name}: the default environment's script."""
    latest = script.versions[-1] if script.versions else None
    created = iso(script.versions[0].created_on_ms) if script.versions else iso(world.now_ms)
    modified = iso(latest.created_on_ms) if latest else created
    result = {
        "id": script.name, "created_on": created, "modified_on": modified,
        "default_environment": {
            "environment": "production", "created_on": created, "modified_on": modified,
            "script": {
                "id": script.name, "tag": worker_tag(script), "tags": list(settings_of(script)["tags"]),
                "etag": latest.etag if latest else "", "handlers": latest.handlers if latest else [],
                "created_on": created, "modified_on": modified,
                "last_deployed_from": latest.source if latest else "wrangler",
                "usage_model": "standard",
            },
        },
    }
    return json_response(200, envelope(result), ROUTE)


def parse_multipart(req: Request) -> tuple[dict[str, tuple[str | None, bytes]], str | None]:
    """The parts of a multipart/form-data body by name: (content type, bytes), or an error."""
    ctype = req.header("content-type") or ""
    if not ctype.lower().startswith("multipart/form-data") or "boundary=" not in ctype:
        return {}, "the body must be multipart/form-data with a boundary"
    message = BytesParser(policy=HTTP).parsebytes(b"Content-Type: " + ctype.encode("latin-1") + b"\r\n\r\n" + req.body)
    if not message.is_multipart():
        return {}, "the multipart body could not be parsed"
    parts: dict[str, tuple[str | None, bytes]] = {}
    for part in message.iter_parts():
        name = part.get_param("name", header="content-disposition")
        if not name:
            return {}, "a part has no name"
        if name in parts:
            return {}, f"part {name!r} appears twice"
        payload = part.get_payload(decode=True) or b""
        parts[str(name)] = (part.get_content_type() if part.get("content-type") else None, payload)
    if len(parts) > MAX_MODULES + 1:
        return {}, f"at most {MAX_MODULES} modules"
    return parts, None


def upload_version(world: World, script: Script, req: Request) -> Response:
    """POST .../versions: a new version that serves nobody (wrangler versions upload)."""
    parts, problem = parse_multipart(req)
    if problem is not None:
        return error(400, ERR_UPLOAD, problem)
    if "metadata" not in parts:
        return error(400, ERR_UPLOAD, "the upload has no metadata part")
    try:
        metadata = json.loads(parts["metadata"][1].decode("utf-8"))
    except (ValueError, UnicodeDecodeError):
        return error(400, ERR_BAD_JSON, "the metadata part is not JSON")
    if not isinstance(metadata, dict):
        return error(400, ERR_UPLOAD, "metadata must be an object")
    main = metadata.get("main_module") or metadata.get("body_part")
    if not isinstance(main, str) or main not in parts:
        return error(400, ERR_UPLOAD, f"main_module {main!r} names no part of the upload")
    bindings = metadata.get("bindings", [])
    if not isinstance(bindings, list) or not all(isinstance(b, dict) and "name" in b and "type" in b
                                                 for b in bindings):
        return error(400, ERR_UPLOAD, "bindings must be a list of {name, type, ...}")
    annotations = metadata.get("annotations") or {}
    if not isinstance(annotations, dict) or not all(isinstance(v, str) for v in annotations.values()):
        return error(400, ERR_UPLOAD, "annotations must be an object of strings")
    resolved, problem = resolve_bindings(script, bindings, metadata.get("keep_bindings") or [])
    if problem is not None:
        return error(400, ERR_UPLOAD, problem)
    account = world.account_for_token(req.bearer())
    keep = metadata.get("keep_bindings") or []
    latest = script.versions[-1] if script.versions else None
    # Secrets live in the world's secrets model (names and digests, never shown): given ones
    # are set, the previous version's are kept only with "secret_text" in keep_bindings.
    secrets: dict[str, str | None] = {b["name"]: b["text"] for b in resolved
                                      if b["type"] == "secret_text" and isinstance(b.get("text"), str)}
    if "secret_text" not in keep and latest is not None:
        secrets.update({n: None for n in latest.secrets if n not in secrets})
    spec: dict[str, Any] = {
        "author_email": account.author_email if account else "ci@example.com",
        "source": "wrangler",
        "bindings": [b for b in resolved if b["type"] != "secret_text"],
        "secrets": secrets,
        "tag": annotations.get("workers/tag"), "message": annotations.get("workers/message"),
    }
    if isinstance(metadata.get("compatibility_date"), str):
        spec["compatibility_date"] = metadata["compatibility_date"]
    try:
        version = world.add_version(script, spec)
    except WorldError as e:
        return error(400, ERR_UPLOAD, e.message)
    contents_of(script)[version.id] = (main, [(name, ctype, data) for name, (ctype, data) in parts.items()
                                              if name != "metadata"])
    result = version.full()
    result["metadata"] = {**result["metadata"], "has_preview": True}
    return json_response(200, envelope(result), ROUTE,
                         note=f"upload {version.id} tag={version.tag}")


def get_script_subdomain(world: World, script: Script, req: Request) -> Response:
    """GET .../scripts/{name}/subdomain."""
    return json_response(200, envelope({"enabled": True, "previews_enabled": True}), ROUTE)


def script_settings(world: World, script: Script, req: Request) -> Response:
    """GET or PATCH .../script-settings (JSON; unknown keys refused)."""
    current = settings_of(script)
    if req.method == "PATCH":
        try:
            doc = req.json()
        except (ValueError, UnicodeDecodeError):
            return error(400, ERR_BAD_JSON, "Could not parse request body as JSON.")
        if not isinstance(doc, dict):
            return error(400, ERR_UPLOAD, "settings must be an object")
        unknown = sorted(set(doc) - set(SETTINGS_KEYS))
        if unknown:
            return error(400, ERR_UPLOAD, f"unknown settings: {', '.join(unknown)}")
        tags = doc.get("tags", current["tags"])
        if not isinstance(tags, list) or not all(isinstance(t, str) for t in tags):
            return error(400, ERR_UPLOAD, "tags must be a list of strings")
        current.update({k: v for k, v in doc.items()})
    return json_response(200, envelope(dict(current)), ROUTE)


def versioned_settings(world: World, script: Script, req: Request) -> Response:
    """GET .../settings: the settings of the version serving most traffic."""
    live = script.live()
    version = None
    if live is not None:
        main_id = max(live.versions, key=lambda vp: vp[1])[0]
        version = script.version(main_id)
    if version is None and script.versions:
        version = script.versions[-1]
    extra = settings_of(script)
    result = {
        "bindings": version.full()["resources"]["bindings"] if version else [],
        "compatibility_date": version.compatibility_date if version else None,
        "compatibility_flags": [], "usage_model": "standard", "placement": {},
        "limits": {"cpu_ms": 30000},
        **{k: extra[k] for k in SETTINGS_KEYS},
    }
    return json_response(200, envelope(result), ROUTE)


def memberships(world: World, req: Request) -> Response:
    """GET /memberships: the one account this token opens, as one page."""
    account = world.account_for_token(req.bearer())
    if account is None:
        return error(401, *ERR_AUTH)
    entry = {"id": hashlib.md5(f"membership/{account.id}".encode()).hexdigest(), "status": "accepted",
             "account": {"id": account.id, "name": f"{account.id} (sandbox)"},
             "roles": ["Administrator"], "api_access_enabled": True}
    body = {**envelope([entry]),
            "result_info": {"page": 1, "per_page": 20, "count": 1, "total_count": 1, "total_pages": 1}}
    return json_response(200, body, ROUTE)



PLACEHOLDER_MODULE = b"export default { fetch() { return new Response('seeded by the sandbox'); } };\n"


def contents_of(script: Script) -> dict[str, tuple[str, list[tuple[str, str | None, bytes]]]]:
    """Uploaded modules per version id: (main module, [(name, content type, bytes)])."""
    return script.__dict__.setdefault("wrangler_contents", {})


def resolve_bindings(script: Script, bindings: list[dict[str, Any]],
                     keep: list[Any]) -> tuple[list[dict[str, Any]], str | None]:
    """`inherit` bindings replaced by the named version's binding; bindings of the
    `keep_bindings` types carried from the latest version unless given again."""
    latest = script.versions[-1] if script.versions else None
    out: list[dict[str, Any]] = []
    for b in bindings:
        if b["type"] != "inherit":
            out.append(b)
            continue
        source_id = b.get("version_id") or "latest"
        source = latest if source_id == "latest" else script.version(str(source_id))
        wanted = b.get("old_name") or b["name"]
        found = next((x for x in (source.bindings if source else []) if x.get("name") == wanted), None)
        if found is None:
            return [], f"binding {b['name']!r} has nothing to inherit from version {source_id}"
        out.append({**found, "name": b["name"]})
    if not all(isinstance(t, str) for t in keep):
        return [], "keep_bindings must be a list of binding types"
    names = {b["name"] for b in out}
    for b in (latest.bindings if latest else []):
        if b.get("type") in keep and b.get("name") not in names:
            out.append(b)
    return out, None


def get_content(world: World, script: Script, req: Request) -> Response:
    """GET .../content/v2?version=<id>: the version's modules as multipart form data."""
    version_id = req.arg("version") or (script.versions[-1].id if script.versions else "")
    if script.version(version_id) is None:
        return error(404, ERR_UPLOAD, f"Version {version_id} not found.")
    main, modules = contents_of(script).get(
        version_id, ("index.js", [("index.js", "application/javascript+module", PLACEHOLDER_MODULE)]))
    boundary = hashlib.md5(f"content/{version_id}".encode()).hexdigest()
    body = b""
    for name, ctype, data in modules:
        body += (f"--{boundary}\r\nContent-Disposition: form-data; name=\"{name}\"; filename=\"{name}\"\r\n"
                 f"Content-Type: {ctype or 'application/octet-stream'}\r\n\r\n").encode() + data + b"\r\n"
    body += f"--{boundary}--\r\n".encode()
    return Response(200, body, [("Content-Type", f"multipart/form-data; boundary={boundary}"),
                                ("cf-entrypoint", main)], ROUTE)
