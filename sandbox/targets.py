"""The stand-in target Workers and asset host.

`GET /targets/{script}/healthz`: picks the version that answers as Cloudflare does. The
`Cloudflare-Workers-Version-Overrides` header (an RFC 8941 dictionary, `script="<uuid>"`,
several pairs allowed) pins a version only if that version is in the script's current
deployment; otherwise (or when the header does not parse) the request falls back to the
deployment's percentages. The answer names the version: 200
`{"ok": true, "status": "ok", "version_id": ...}`, 500 when the scenario switches that
version to `healthz: "fail"`, and no answer for `"timeout"` (it hangs
`healthz_timeout_s`, then drops the connection). Faults: route class `targets.healthz`.

`GET|HEAD /assets/{env}/styles/{sha}.css`: 200 for published (env, sha), else 404.
Faults: route class `assets`.
"""

from __future__ import annotations

import json
import re
import time

from .faults import inject
from .httpio import Request, Response, json_response, text_response
from .world import World

HEALTHZ_RE = re.compile(r"^/targets/(?P<script>[^/]+)/healthz/?$")
ASSET_RE = re.compile(r"^/assets/(?P<env>[^/]+)/styles/(?P<sha>[^/]+)\.css$")
OVERRIDE_HEADER = "cloudflare-workers-version-overrides"
_KEY_RE = re.compile(r"[a-z*][a-z0-9_\-.*]*")


class SfError(ValueError):
    """The header is not a valid RFC 8941 dictionary."""


def parse_sf_dictionary(value: str) -> dict[str, object]:
    """Parses an RFC 8941 dictionary; string members become `str`, others a marker.

    Only what the override header needs: keys, sf-strings, tokens/numbers/booleans as
    opaque items, and parameters (skipped). Raises SfError on malformed input.
    """
    out: dict[str, object] = {}
    i, n = 0, len(value)

    def skip_sp(j: int) -> int:
        while j < n and value[j] in " \t":
            j += 1
        return j

    i = skip_sp(i)
    while i < n:
        m = _KEY_RE.match(value, i)
        if m is None:
            raise SfError(f"bad key at {i}")
        key, i = m.group(), m.end()
        item: object = True
        if i < n and value[i] == "=":
            item, i = parse_item(value, i + 1)
        i = skip_params(value, i)
        out[key] = item
        i = skip_sp(i)
        if i >= n:
            break
        if value[i] != ",":
            raise SfError(f"expected ',' at {i}")
        i = skip_sp(i + 1)
        if i >= n:
            raise SfError("trailing comma")
    return out


def parse_item(value: str, i: int) -> tuple[object, int]:
    """A bare item at `i`: an sf-string (unescaped) or an opaque token/number."""
    if i < len(value) and value[i] == '"':
        chars, i = [], i + 1
        while i < len(value):
            c = value[i]
            if c == "\\":
                if i + 1 >= len(value) or value[i + 1] not in '"\\':
                    raise SfError("bad escape")
                chars.append(value[i + 1])
                i += 2
            elif c == '"':
                return "".join(chars), i + 1
            elif not 0x20 <= ord(c) <= 0x7E:
                raise SfError("bad character in string")
            else:
                chars.append(c)
                i += 1
        raise SfError("unterminated string")
    m = re.compile(r"[A-Za-z*][!#$%&'*+\-.^_`|~:/A-Za-z0-9]*|-?\d+(\.\d+)?|\?[01]").match(value, i)
    if m is None:
        raise SfError(f"bad item at {i}")
    return ("opaque", m.group()), m.end()


def skip_params(value: str, i: int) -> int:
    """Skips `;key[=item]` parameters."""
    while i < len(value) and value[i] == ";":
        m = _KEY_RE.match(value, i + 1)
        if m is None:
            raise SfError("bad parameter")
        i = m.end()
        if i < len(value) and value[i] == "=":
            _, i = parse_item(value, i + 1)
    return i


def requested_override(req: Request, script: str) -> str | None:
    """The version the override header asks for this script (None when absent/invalid)."""
    raw = req.header_joined(OVERRIDE_HEADER)
    if not raw:
        return None
    try:
        pinned = parse_sf_dictionary(raw).get(script)
    except SfError:
        return None
    return pinned if isinstance(pinned, str) else None


def healthz(world: World, req: Request) -> Response:
    """GET /targets/{script}/healthz."""
    m = HEALTHZ_RE.match(req.path)
    route = "targets.healthz"
    if m is None or req.method not in ("GET", "HEAD"):
        return text_response(404, "Not found", route)
    name = m["script"]
    injected = inject(world.faults, route, world.now_ms, name,
                      lambda f: json_response(f.status or 500, {"ok": False, "error": "sandbox fault"}, route))
    if injected is not None:
        return injected
    with world.lock:
        script = world.scripts.get(name)
        live = script.live() if script else None
        if script is None or live is None:
            return text_response(404, "There is nothing here yet", route)
        wanted = requested_override(req, name)
        pinned = wanted is not None and any(v == wanted for v, _ in live.versions)
        chosen = wanted if pinned else live.split().pick(world.rng.random())
        scenario = script.scenario_at(world.now_ms)
        profile = scenario.profile(chosen) if scenario else None
        timeout_s = scenario.healthz_timeout_s if scenario else 30.0
    mode = profile.healthz if profile else "ok"
    note = f"version={chosen} override={'applied' if pinned else ('ignored' if wanted else 'none')} {mode}"
    headers = [("x-version-id", chosen)]
    if mode == "timeout":
        time.sleep(timeout_s)
        return Response(0, route=route, drop=True, note=note)
    if mode == "fail":
        body = {"ok": False, "status": "error", "version_id": chosen, "error": "sandbox: version switched to failing"}
        return json_response(500, body, route, headers, note)
    return json_response(200, {"ok": True, "status": "ok", "version_id": chosen}, route, headers, note)


def asset(world: World, req: Request) -> Response:
    """GET|HEAD /assets/{env}/styles/{sha}.css."""
    route = "assets"
    injected = inject(world.faults, route, world.now_ms, None,
                      lambda f: text_response(f.status or 500, "sandbox fault", route))
    if injected is not None:
        return injected
    m = ASSET_RE.match(req.path)
    if req.method not in ("GET", "HEAD"):
        return text_response(405, "Method not allowed", route)
    with world.lock:
        published = m is not None and (m["env"], m["sha"]) in world.assets
    if not published:
        return text_response(404, "Not Found", route)
    css = f"/* styles for {m['sha']} ({m['env']}) */\nbody {{ margin: 0; }}\n"
    return text_response(200, css, route, content_type="text/css; charset=utf-8",
                         headers=[("Cache-Control", "public, max-age=31536000, immutable"),
                                  ("ETag", json.dumps(m["sha"]))])
