"""The stand-in Cloudflare Access certs endpoint: `GET /access/cdn-cgi/access/certs`
serves the team's JWKS as the real `https://<team>.cloudflareaccess.com/cdn-cgi/access/certs`
does (`keys` as JWKs with `kid`, `kty`, `alg`, `use`, `e`, `n`; `public_cert` and
`public_certs` as PEM). The keys are whatever the test put there with
`PUT /_sandbox/access/certs` (tests generate their own key pairs); a rotation is another
PUT. Every fetch is counted (`GET /_sandbox/access/certs` says how many), so a test can
check how often the gate asks. Faults of route class `access` make it answer 5xx, slowly,
or not at all. With no keys put, it answers 404 (an unknown team).

Shape: https://developers.cloudflare.com/cloudflare-one/identity/authorization-cookie/validating-json/
"""

from __future__ import annotations

from typing import Any

from .faults import Fault, inject
from .httpio import Request, Response, json_response, text_response
from .world import World, WorldError

ROUTE = "access"
PATH = "/access/cdn-cgi/access/certs"


def handle(world: World, req: Request) -> Response:
    """Serves the certs (GET only), counting each request."""
    with world.lock:
        world.access_fetches += 1
        doc = world.access_jwks
    if req.path != PATH:
        return text_response(404, "not found", ROUTE)
    if req.method != "GET":
        return text_response(405, "method not allowed", ROUTE)
    resp = inject(world.faults, ROUTE, world.now_ms, None, fault_answer)
    if resp is not None:
        return resp
    if doc is None:
        return text_response(404, "no such team (no keys put)", ROUTE)
    return json_response(200, doc, ROUTE)


def fault_answer(f: Fault) -> Response:
    """A status fault: a plain-text error page, as Cloudflare's edge gives."""
    return text_response(f.status or 500, f.body if f.body is not None else "error", ROUTE)


def put_certs(world: World, doc: Any) -> dict[str, Any]:
    """Replaces the served JWKS; it must look like the real one (a `keys` list of RSA JWKs
    with kid, n and e)."""
    keys = doc.get("keys") if isinstance(doc, dict) else None
    if not isinstance(keys, list) or not keys:
        raise WorldError(400, "bad_request", "body must be a JWKS: {\"keys\": [...]} with at least one key")
    for key in keys:
        if not isinstance(key, dict) or not all(isinstance(key.get(k), str) for k in ("kid", "kty", "n", "e")):
            raise WorldError(400, "bad_request", "each key needs kid, kty, n and e (strings)")
    with world.lock:
        world.access_jwks = doc
    return {"ok": True, "kids": [k["kid"] for k in keys]}


def certs_status(world: World) -> dict[str, Any]:
    with world.lock:
        return {"fetches": world.access_fetches, "jwks": world.access_jwks}
