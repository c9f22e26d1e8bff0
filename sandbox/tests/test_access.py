"""The stand-in Cloudflare Access certs endpoint: serves what the test put, in the real
shape, counts every fetch, refuses a JWKS without keys, and takes `access` faults."""

from __future__ import annotations

from .conftest import Client

CERTS = "/access/cdn-cgi/access/certs"
JWKS = {"keys": [{"kid": "k1", "kty": "RSA", "alg": "RS256", "use": "sig", "e": "AQAB", "n": "sXch"}],
        "public_cert": {"kid": "k1", "cert": "-----BEGIN PUBLIC KEY-----\n..."},
        "public_certs": [{"kid": "k1", "cert": "-----BEGIN PUBLIC KEY-----\n..."}]}


def test_no_keys_put_is_an_unknown_team_and_each_fetch_is_counted(sb: Client):
    assert sb.call("GET", CERTS).status == 404
    assert sb.ctl("GET", "/access/certs") == {"fetches": 1, "jwks": None}


def test_serves_the_jwks_put_and_a_rotation_replaces_it(sb: Client):
    assert sb.ctl("PUT", "/access/certs", JWKS)["kids"] == ["k1"]
    a = sb.call("GET", CERTS)
    assert a.status == 200 and a.json() == JWKS
    rotated = {"keys": [dict(JWKS["keys"][0], kid="k2"), JWKS["keys"][0]]}
    sb.ctl("PUT", "/access/certs", rotated)
    assert [k["kid"] for k in sb.call("GET", CERTS).json()["keys"]] == ["k2", "k1"]
    assert sb.ctl("GET", "/access/certs")["fetches"] == 2
    assert sb.call("POST", CERTS, {}).status == 405


def test_a_jwks_without_usable_keys_is_refused(sb: Client):
    for bad in ({}, {"keys": []}, {"keys": [{"kid": "k1", "kty": "RSA"}]}, {"keys": "k1"}):
        assert sb.call("PUT", "/_sandbox/access/certs", bad).status == 400, bad


def test_access_faults_answer_5xx_then_the_keys_again(sb: Client):
    sb.ctl("PUT", "/access/certs", JWKS)
    sb.ctl("POST", "/faults", {"route": "access", "status": 503, "count": 1})
    assert sb.call("GET", CERTS).status == 503
    assert sb.call("GET", CERTS).status == 200
    assert sb.ctl("GET", "/access/certs")["fetches"] == 2


def test_a_reset_forgets_the_keys_and_the_count(sb: Client):
    sb.ctl("PUT", "/access/certs", JWKS)
    sb.call("GET", CERTS)
    sb.ctl("POST", "/reset", {})
    assert sb.ctl("GET", "/access/certs") == {"fetches": 0, "jwks": None}
