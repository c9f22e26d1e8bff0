"""Who may act, on the real runtime (`wrangler dev`): Cloudflare Access JWTs verified with
WebCrypto against keys the sandbox serves (generated in the test), and named tokens with
scopes. The validation table: every bad credential gets its status and error code, and
the rollout it aimed at is unchanged (same phase, same audit log)."""

from __future__ import annotations

import json

import pytest

from access_tokens import (AUD, EMAIL, TEAM, Key, b64url, claims, flip_signature, hs256, jwks,
                           rs256, unsigned)
from gate import HOOK_TOKEN

CI_TOKEN, ONCALL_TOKEN, READER_TOKEN = "ci-token-value", "oncall-token-value", "reader-token-value"
TOKENS = {
    "API_TOKENS": json.dumps([{"name": "ci", "scopes": ["start"]},
                              {"name": "oncall", "scopes": ["operate", "read"]},
                              {"name": "reader", "scopes": ["read"]}]),
    "TOKEN_CI": CI_TOKEN, "TOKEN_ONCALL": ONCALL_TOKEN, "TOKEN_READER": READER_TOKEN,
}


ACCESS_VARS = {"STATUS_PAGE_AUTH": "access", "ACCESS_TEAM_DOMAIN": TEAM, "ACCESS_AUD": AUD,
               "ACCESS_CERTS_URL": "{sandbox}/access/cdn-cgi/access/certs", "ACCESS_SCOPES": "read,operate"}


@pytest.fixture(scope="module")
def keys():
    """k1 and k3 are the team's (k3 arrives by rotation); k2 is nobody's."""
    return {kid: Key.generate(kid) for kid in ("k1", "k2", "k3")}


def call(world, method: str, path: str, jwt: str | None = None, token: str | None = None,
         body: dict | None = None) -> tuple[int, dict[str, str], dict]:
    headers = {"content-type": "application/json"}
    if jwt is not None:
        headers["cf-access-jwt-assertion"] = jwt
    if token is not None:
        headers["authorization"] = f"Bearer {token}"
    data = json.dumps(body).encode() if body is not None else None
    status, answer_headers, raw = world.gate.exchange(method, path, body=data, headers=headers)
    try:
        doc = json.loads(raw) if raw else {}
    except ValueError:
        doc = {"html": raw.decode(errors="replace")}
    return status, answer_headers, doc


def code(doc: dict) -> str | None:
    return doc.get("error", {}).get("code")


def snapshot(world, rel) -> tuple:
    return world.status(rel)["phase_name"], len(world.events(rel))


def started(world):
    rel = world.release("mauntic-gateway")
    assert world.hook(rel)[0] == 201
    return rel


@pytest.mark.gate_vars(**ACCESS_VARS)
def test_only_a_verified_access_jwt_lets_a_request_in_and_every_bad_one_is_refused_by_name(world, keys):
    rel = started(world)
    world.sb.access_certs(jwks(keys["k1"]))  # after the release's sandbox reset
    before = snapshot(world, rel)
    pause = f"/v1/rollouts/{rel.script}/pause"
    k1, k2 = keys["k1"], keys["k2"]
    now = claims()["iat"]
    assert world.sb.access_fetches() == 0, "no key is fetched before a JWT arrives"

    # Good tokens: RS256 by a published key, aud as an array or a plain string, exp just
    # inside the 60 s skew.
    for good in (rs256(k1), rs256(k1, claims(aud=AUD)), rs256(k1, claims(exp=now - 30))):
        status, _, doc = call(world, "GET", "/", jwt=good)
        assert status == 200 and "mauntic-gateway" in doc["html"], (status, doc)
    assert world.sb.access_fetches() == 1, "the keys are cached in the isolate"

    none_variants = [unsigned({"alg": alg, "kid": "k1"}, claims()) + "." for alg in ("none", "None", "NONE", "nOnE")]
    confusion = [hs256(secret, "k1") for secret in (k1.pem(), json.dumps(k1.jwk()).encode(), k1.der())]
    garbage = ["abc", "a.b", "a.b.c.d", "!!!.@@@.###", f"{b64url(b'not json')}.{b64url(b'{}')}.c2ln",
               rs256(k1) + "=", "x" * 65_536]
    table = [
        ("wrong signature", [flip_signature(rs256(k1))], 401, "access_invalid"),
        ("wrong audience", [rs256(k1, claims(aud=["another-app"]))], 401, "access_wrong_audience"),
        ("wrong issuer", [rs256(k1, claims(iss="https://other-team.cloudflareaccess.com"))], 401, "access_wrong_issuer"),
        ("expired", [rs256(k1, claims(exp=now - 120))], 401, "access_expired"),
        ("not yet valid", [rs256(k1, claims(nbf=now + 120))], 401, "access_not_yet_valid"),
        ("alg none", none_variants, 401, "access_invalid"),
        ("HS256 keyed with the public key", confusion, 401, "access_invalid"),
        ("signed by another key, labelled k1", [rs256(k2, kid="k1")], 401, "access_invalid"),
        ("no kid", [rs256(k1, kid=None)], 401, "access_invalid"),
        ("garbage", garbage, 401, "access_invalid"),
    ]
    for name, tokens, want_status, want_code in table:
        for token in tokens:
            for method, path in (("GET", "/"), ("GET", f"/v1/rollouts/{rel.script}"), ("POST", pause)):
                status, _, doc = call(world, method, path, jwt=token)
                assert (status, code(doc)) == (want_status, want_code), (name, method, path, token[:80], doc)
                assert token not in doc["error"]["message"]
    # A bad JWT is not passed on to the token check: the hook token does not rescue it.
    status, _, doc = call(world, "POST", pause, jwt=rs256(k1, claims(exp=now - 120)), token=HOOK_TOKEN)
    assert (status, code(doc)) == (401, "access_expired")
    assert snapshot(world, rel) == before, "no refused request changed the rollout"

    # Without the header, the token check applies as before.
    status, headers, doc = call(world, "GET", "/")
    assert (status, code(doc)) == (401, "unauthorized") and "basic" in headers.get("www-authenticate", "").lower()
    assert call(world, "GET", "/", token=HOOK_TOKEN)[0] == 200

    # Rotation: the team publishes k3; a token signed by it is accepted after one refetch.
    world.sb.access_certs(jwks(keys["k3"], k1))
    fetches = world.sb.access_fetches()
    assert call(world, "GET", "/", jwt=rs256(keys["k3"]))[0] == 200
    assert world.sb.access_fetches() == fetches + 1

    # An unknown kid: refused, and a flood of them costs at most one more fetch.
    fetches = world.sb.access_fetches()
    for _ in range(5):
        status, _, doc = call(world, "GET", "/", jwt=rs256(k2))
        assert (status, code(doc)) == (401, "access_unknown_key"), doc
    assert world.sb.access_fetches() - fetches <= 1

    # A verified identity with ACCESS_SCOPES=read,operate acts.
    status, _, doc = call(world, "POST", pause, jwt=rs256(k1), body={"reason": "e2e", "by": "mallory"})
    assert status == 200, doc
    view = world.status(rel)
    assert view["phase_name"] == "paused"
    assert view["phase"]["reason"]["by"] == f"access:{EMAIL}", view["phase"]
    assert any(f"access:{EMAIL}" in json.dumps(row) for row in world.events(rel)), "the audit log names the identity"


@pytest.mark.gate_vars(**ACCESS_VARS)
def test_keys_that_cannot_be_fetched_with_none_cached_refuse_with_503_never_allow(world, keys):
    rel = world.release("mauntic-gateway")  # no keys put: the certs URL answers 404
    jwt = rs256(keys["k1"])
    for path in ("/", f"/v1/rollouts/{rel.script}"):
        status, headers, doc = call(world, "GET", path, jwt=jwt)
        assert (status, code(doc)) == (503, "access_keys_unavailable"), doc
        assert headers.get("retry-after") == "30"
    world.sb.access_certs(jwks(keys["k1"]))
    world.sb.fault("access", status=500, count=1)
    status, _, doc = call(world, "POST", "/v1/rollouts", jwt=jwt, body={"script": rel.script, "version_id": rel.new})
    assert (status, code(doc)) == (503, "access_keys_unavailable"), doc
    assert world.splits(rel) == [], "nothing started"
    assert world.sb.access_fetches() == 3, "each request tried once"
    # The certs answer again: the next request fetches them and is let in.
    status, _, doc = call(world, "GET", f"/v1/rollouts/{rel.script}", jwt=jwt)
    assert (status, code(doc)) == (404, "not_found"), doc


@pytest.mark.gate_vars(**TOKENS)
def test_each_named_token_does_only_what_its_scopes_allow(world):
    rel = world.release("mauntic-gateway")
    hook = {"script": rel.script, "version_id": rel.new, "git_sha": rel.git_sha}
    status, doc = world.gate.api("POST", "/v1/rollouts", hook, token=READER_TOKEN)
    assert (status, code(doc)) == (403, "missing_scope") and "'start'" in doc["error"]["message"]
    assert world.splits(rel) == []
    status, doc = world.gate.api("POST", "/v1/rollouts", hook, token=CI_TOKEN)
    assert status == 201, doc
    assert world.gate.api("GET", f"/v1/rollouts/{rel.script}", token=CI_TOKEN)[0] == 200
    before = snapshot(world, rel)

    forbidden = [
        (CI_TOKEN, "POST", f"/v1/rollouts/{rel.script}/pause", "token:ci lacks scope 'operate'"),
        (CI_TOKEN, "POST", f"/v1/rollouts/{rel.script}/abort", "token:ci lacks scope 'operate'"),
        (CI_TOKEN, "POST", "/v1/parity", "token:ci lacks scope 'operate'"),
        (CI_TOKEN, "GET", f"/v1/rollouts/{rel.script}/events", "token:ci lacks scope 'read'"),
        (CI_TOKEN, "GET", "/v1/rollouts", "token:ci lacks scope 'read'"),
        (CI_TOKEN, "GET", "/", "token:ci lacks scope 'read'"),
        (READER_TOKEN, "POST", f"/v1/rollouts/{rel.script}/promote", "token:reader lacks scope 'operate'"),
    ]
    for token, method, path, message in forbidden:
        status, _, doc = call(world, method, path, token=token, body={} if method == "POST" else None)
        assert (status, code(doc), doc["error"]["message"]) == (403, "missing_scope", message), (path, doc)
        assert token not in json.dumps(doc)
    for token in ("nobody-knows-this", CI_TOKEN[:-1] + "X", ""):
        status, _, doc = call(world, "POST", f"/v1/rollouts/{rel.script}/pause", token=token, body={})
        assert (status, code(doc)) == (401, "unauthorized"), token
    assert snapshot(world, rel) == before, "no refused request changed the rollout"

    assert call(world, "GET", "/", token=READER_TOKEN)[0] == 200
    assert world.gate.api("GET", f"/v1/rollouts/{rel.script}/events", token=READER_TOKEN)[0] == 200
    status, doc = world.gate.api("POST", f"/v1/rollouts/{rel.script}/pause", {"by": "alice", "reason": "db"},
                                 token=ONCALL_TOKEN)
    assert status == 200, doc
    # Who acted is the token's name; the typed `by` is only a note.
    reason = world.status(rel)["phase"]["reason"]
    assert (reason["by"], reason["why"]) == ("token:oncall", "db (note: by alice, unverified)"), reason
    # Slack and the status page say who acted, from the credential.
    assert any("paused by token:oncall" in t for t in world.slack()), world.slack()
    status, _, page = world.gate.exchange("GET", f"/rollouts/{rel.script}",
                                          headers={"authorization": f"Bearer {READER_TOKEN}"})
    assert status == 200 and b"token:oncall" in page and b"by alice, unverified" in page
    # HOOK_TOKEN still does everything, and /healthz says it should go.
    status, doc = world.gate.api("POST", f"/v1/rollouts/{rel.script}/resume", {}, token=HOOK_TOKEN)
    assert status == 200, doc
    status, health = world.gate.get_json("/healthz")
    assert any("HOOK_TOKEN" in w for w in health["warnings"]), health
    assert health["auth"]["tokens"][0] == {"name": "ci", "scopes": ["start"]}
    for secret in (CI_TOKEN, ONCALL_TOKEN, READER_TOKEN, HOOK_TOKEN):
        assert secret not in json.dumps(health)


@pytest.mark.gate_vars(STATUS_PAGE_AUTH="access", ACCESS_TEAM_DOMAIN=TEAM)
def test_access_mode_without_an_aud_is_a_config_error_and_lets_no_jwt_in(world, keys):
    status, health = world.gate.get_json("/healthz")
    assert status == 503 and any("ACCESS_AUD" in p for p in health["problems"]), health
    world.sb.access_certs(jwks(keys["k1"]))
    status, _, doc = call(world, "GET", "/", jwt=rs256(keys["k1"]))
    assert (status, code(doc)) == (401, "unauthorized"), "the token is needed; the JWT counts for nothing"
    assert world.sb.access_fetches() == 0
