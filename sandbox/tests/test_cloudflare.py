"""The stand-in Cloudflare API: envelopes and list shapes, auth, the create-deployment
validation table, faults (429 with retry-after, 5xx, per route class, per count), the
manual "wrangler deploy" switch and the control-API history."""

from __future__ import annotations

import pytest

from sandbox import cloudflare

from .conftest import AE_TOKEN, ACCT, T0, TOKEN, V_NEW, V_OLD, Client, seed_gateway

GW = "/mauntic-gateway"
PLACEHOLDERS = {v for k, v in vars(cloudflare).items() if k.startswith("PLACEHOLDER_")}


def split(*pairs):
    return {"strategy": "percentage", "versions": [{"version_id": v, "percentage": p} for v, p in pairs]}


def codes(answer) -> list[int]:
    return [e["code"] for e in answer.json()["errors"]]


def test_envelope_and_deployment_object(sb: Client):
    seed_gateway(sb)
    a = sb.cf("POST", GW + "/deployments", {**split((V_NEW, 10), (V_OLD, 90)),
                                             "annotations": {"workers/message": "gate: step 1 (10%)"}})
    assert a.status == 200
    body = a.json()
    assert set(body) == {"success", "errors", "messages", "result"} and body["success"] is True
    d = body["result"]
    assert set(d) == {"id", "created_on", "source", "strategy", "author_email", "annotations", "versions"}
    assert d["created_on"] == "2026-11-27T10:00:00.000000Z" and d["strategy"] == "percentage"
    assert d["versions"] == [{"version_id": V_NEW, "percentage": 10}, {"version_id": V_OLD, "percentage": 90}]
    assert d["annotations"] == {"workers/triggered_by": "deployment", "workers/message": "gate: step 1 (10%)"}


def test_deployments_list_is_newest_first(sb: Client):
    seed_gateway(sb, created_on_ms=T0 - 3_600_000)
    sb.cf("POST", GW + "/deployments", split((V_NEW, 10), (V_OLD, 90)))
    sb.ctl("POST", "/clock", {"advance_ms": 60_000})
    sb.cf("POST", GW + "/deployments", split((V_NEW, 50), (V_OLD, 50)))
    deps = sb.cf("GET", GW + "/deployments").json()["result"]["deployments"]
    assert [d["versions"][0]["percentage"] for d in deps] == [50, 10, 100]
    assert deps[0]["created_on"] == "2026-11-27T10:01:00.000000Z"
    hist = sb.ctl("GET", "/scripts/mauntic-gateway/deployments")
    assert hist["splits"] == [[[V_OLD, 100]], [[V_NEW, 10], [V_OLD, 90]], [[V_NEW, 50], [V_OLD, 50]]]


def test_versions_get_and_paged_list(sb: Client):
    seed_gateway(sb)
    v = sb.cf("GET", f"{GW}/versions/{V_OLD}").json()["result"]
    assert v["id"] == V_OLD and v["number"] == 1 and v["annotations"]["workers/tag"] == "old"
    assert v["resources"]["bindings"][0] == {"type": "analytics_engine", "name": "AE", "dataset": "mauntic_logs"}
    assert set(v["resources"]["script"]) >= {"etag", "handlers"}
    assert v["resources"]["script_runtime"]["compatibility_date"]
    assert set(v["metadata"]) >= {"created_on", "source", "author_email"}
    page = sb.cf("GET", GW + "/versions?page=2&per_page=1").json()
    assert [i["id"] for i in page["result"]["items"]] == [V_OLD]
    assert page["result_info"] == {"page": 2, "per_page": 1, "count": 1, "total_count": 2, "total_pages": 2}
    assert "resources" not in page["result"]["items"][0]
    missing = sb.cf("GET", f"{GW}/versions/33333333-3333-4333-8333-333333333333")
    assert missing.status == 404 and missing.json()["success"] is False


def test_an_unknown_token_is_401_authentication_error_10000(sb: Client):
    seed_gateway(sb)
    bad = sb.cf("GET", GW + "/deployments", token="wrong")
    assert bad.status == 401 and bad.json()["errors"] == [{"code": 10000, "message": "Authentication error"}]


def test_another_accounts_token_is_403_code_9109(sb: Client):
    other = sb.call("GET", "/client/v4/accounts/someone-else/workers/scripts/x/deployments",
                    headers={"Authorization": f"Bearer {TOKEN}"})
    assert other.status == 403 and codes(other) == [9109]


def test_a_token_without_the_routes_permission_is_403_code_10000(sb: Client):
    # The two-token setup (docs/deploy.md): the analytics token cannot touch Workers, and an
    # API token made without Account Analytics Read cannot run SQL.
    seed_gateway(sb)
    analytics_only = sb.cf("GET", GW + "/deployments", token=AE_TOKEN)
    assert analytics_only.status == 403 and codes(analytics_only) == [10000]
    assert sb.sql("SELECT 1", token=TOKEN).status == 200, "by default the API token reads analytics"
    sb.ctl("POST", "/accounts", {"account_id": ACCT, "api_token": TOKEN, "analytics_token": AE_TOKEN,
                                 "api_token_analytics": False})
    scripts_only = sb.sql("SELECT 1", token=TOKEN)
    assert scripts_only.status == 403 and codes(scripts_only) == [10000]
    assert sb.sql("SELECT 1", token=AE_TOKEN).status == 200
    assert sb.cf("GET", GW + "/deployments").status == 200
    bad = sb.call("POST", "/_sandbox/accounts", {"account_id": ACCT, "api_token": TOKEN,
                                                 "api_token_analytics": "no"})
    assert bad.status == 400


@pytest.mark.parametrize("headers", [
    {}, {"Authorization": TOKEN}, {"Authorization": f"Basic {TOKEN}"}, {"Authorization": "Bearer "},
    {"Authorization": "Bearer two words"}, {"Authorization": "Bearer tok\u00e9n"},
])
def test_a_missing_or_malformed_authorization_header_is_400_code_6003_with_6111_in_its_chain(sb: Client, headers):
    seed_gateway(sb)
    a = sb.call("GET", f"/client/v4/accounts/{ACCT}/workers/scripts{GW}/deployments", headers=headers)
    assert a.status == 400
    assert a.json()["errors"] == [{"code": 6003, "message": "Invalid request headers", "error_chain": [
        {"code": 6111, "message": "Invalid format for Authorization header"}]}]


def test_an_unknown_worker_is_404_code_10007(sb: Client):
    missing = sb.cf("GET", "/no-such-worker/deployments")
    assert missing.status == 404 and codes(missing) == [10007]


def test_an_unknown_route_is_400_no_route_7000(sb: Client):
    # (`/settings` was the example here until sandbox/wrangler_api.py answered it for wrangler.)
    a = sb.call("GET", f"/client/v4/accounts/{ACCT}/workers/scripts{GW}/no-such-route",
                headers={"Authorization": f"Bearer {TOKEN}"})
    assert a.status == 400 and codes(a) == [7000]


def test_no_answer_reuses_a_real_code_with_another_meaning(sb: Client):
    """10021 (script validation), 10001 (unable to authenticate) and 10220 (the secret
    rollback refusal) must not stand for a bad split, a bad body or a missing version."""
    seed_gateway(sb)
    answers = [
        sb.cf("POST", GW + "/deployments", split((V_NEW, 10), (V_OLD, 80))),
        sb.call("POST", f"/client/v4/accounts/{ACCT}/workers/scripts{GW}/deployments", raw=b"{nope",
                headers={"Authorization": f"Bearer {TOKEN}"}),
        sb.cf("GET", f"{GW}/versions/33333333-3333-4333-8333-333333333333"),
        sb.cf("GET", f"{GW}/deployments/33333333-3333-4333-8333-333333333333"),
        sb.cf("GET", GW + "/versions?page=0"),
        sb.cf("PUT", GW + "/secrets", {"name": "A", "type": "secret_text"}),
    ]
    for a in answers:
        assert a.status in (400, 404) and a.json()["success"] is False
        assert all(c in PLACEHOLDERS for c in codes(a)), (a.status, a.text)


@pytest.mark.parametrize("body,pointer", [
    (split((V_NEW, 10), (V_OLD, 80)), "/versions"),
    (split((V_NEW, 10), (V_OLD, 90.01)), "/versions"),
    (split((V_NEW, 100), (V_OLD, 0), ("33333333-3333-4333-8333-333333333333", 0)), "/versions/2"),
    (split(), "/versions"),
    (split((V_NEW, 50), (V_NEW, 50)), "/versions"),
    (split((V_NEW, 110), (V_OLD, -10)), "/versions/0/percentage"),
    (split(("33333333-3333-4333-8333-333333333333", 100)), "/versions/0/version_id"),
    ({"strategy": "cohort", "versions": [{"version_id": V_NEW, "percentage": 100}]}, "/strategy"),
    ({"versions": [{"version_id": V_NEW, "percentage": 100}]}, "/strategy"),
    (split((V_NEW, "100")), "/versions/0/percentage"),
    (split((V_NEW, True)), "/versions/0/percentage"),
    ({**split((V_NEW, 100)), "annotations": {"workers/message": 5}}, "/annotations/workers~1message"),
    ([1, 2], "/"),
])
def test_create_deployment_validation_table(sb: Client, body, pointer):
    seed_gateway(sb)
    a = sb.cf("POST", GW + "/deployments", body)
    assert a.status == 400, a.text
    env = a.json()
    assert env["success"] is False and env["result"] is None
    assert all(e["code"] == cloudflare.PLACEHOLDER_INVALID_DEPLOYMENT for e in env["errors"])
    assert pointer in [e["source"]["pointer"] for e in env["errors"]]
    assert len(sb.ctl("GET", "/scripts/mauntic-gateway/deployments")["splits"]) == 1  # nothing changed


@pytest.mark.parametrize("body", [
    split((V_NEW, 100)),
    split((V_NEW, 0), (V_OLD, 100)),
    split((V_NEW, 33.3335), (V_OLD, 66.666)),  # within the +-0.001 tolerance
    split((V_NEW, 12.5), (V_OLD, 87.5)),
])
def test_create_deployment_accepts(sb: Client, body):
    seed_gateway(sb)
    assert sb.cf("POST", GW + "/deployments", body).status == 200


def test_a_version_of_another_script_is_refused(sb: Client):
    seed_gateway(sb)
    other = sb.ctl("POST", "/scripts", {"account_id": ACCT, "script": "tenant-cache", "versions": [{}]})
    vid = other["versions"][0]["id"]
    a = sb.cf("POST", GW + "/deployments", split((vid, 100)))
    assert a.status == 400 and "does not exist on this Worker" in a.json()["errors"][0]["message"]


def test_body_that_is_not_json(sb: Client):
    seed_gateway(sb)
    a = sb.call("POST", f"/client/v4/accounts/{ACCT}/workers/scripts{GW}/deployments", raw=b"{nope",
                headers={"Authorization": f"Bearer {TOKEN}", "Content-Type": "application/json"})
    assert a.status == 400 and a.json()["success"] is False


def test_429_with_retry_after_for_k_calls_of_one_route_class(sb: Client):
    seed_gateway(sb)
    sb.ctl("POST", "/faults", {"route": "cf.deployments.write", "status": 429, "retry_after": 7, "count": 2})
    assert sb.cf("GET", GW + "/deployments").status == 200  # reads unaffected
    for _ in range(2):
        a = sb.cf("POST", GW + "/deployments", split((V_NEW, 10), (V_OLD, 90)))
        assert a.status == 429 and a.headers["retry-after"] == "7" and codes(a) == [971]
    assert sb.cf("POST", GW + "/deployments", split((V_NEW, 10), (V_OLD, 90))).status == 200
    assert len(sb.ctl("GET", "/scripts/mauntic-gateway/deployments")["splits"]) == 2
    calls = sb.ctl("GET", "/calls?route=cf.deployments.write")["calls"]
    assert [c["status"] for c in calls] == [429, 429, 200]
    assert calls[0]["note"].startswith("fault") and calls[2]["body"]["versions"][0]["percentage"] == 10


def test_5xx_until_cleared_on_every_cf_route(sb: Client):
    seed_gateway(sb)
    f = sb.ctl("POST", "/faults", {"route": "cf", "status": 503})
    for path in (GW + "/deployments", f"{GW}/versions/{V_NEW}", GW + "/versions"):
        a = sb.cf("GET", path)
        assert a.status == 503 and a.json()["success"] is False and codes(a) == [10013]
    sb.call("DELETE", f"/_sandbox/faults/{f['id']}")
    assert sb.cf("GET", GW + "/deployments").status == 200


def test_fault_window_on_the_sandbox_clock(sb: Client):
    seed_gateway(sb)
    sb.ctl("POST", "/faults", {"route": "cf.deployments.read", "status": 500,
                               "from_ms": T0 + 60_000, "until_ms": T0 + 120_000})
    assert sb.cf("GET", GW + "/deployments").status == 200
    sb.ctl("POST", "/clock", {"now_ms": T0 + 60_000})
    assert sb.cf("GET", GW + "/deployments").status == 500
    sb.ctl("POST", "/clock", {"now_ms": T0 + 120_000})
    assert sb.cf("GET", GW + "/deployments").status == 200


def test_manual_wrangler_deploy_and_rollback_behind_the_gates_back(sb: Client):
    seed_gateway(sb)
    sb.cf("POST", GW + "/deployments", split((V_NEW, 10), (V_OLD, 90)))
    sb.ctl("POST", "/clock", {"advance_ms": 120_000})
    up = sb.ctl("POST", "/scripts/mauntic-gateway/deploy", {"triggered_by": "upload"})
    assert up["author_email"] == "human@example.com" and up["annotations"]["workers/triggered_by"] == "upload"
    new_vid = up["versions"][0]["version_id"]
    assert new_vid not in (V_OLD, V_NEW) and up["versions"][0]["percentage"] == 100
    live = sb.cf("GET", GW + "/deployments").json()["result"]["deployments"][0]
    assert live["id"] == up["id"] and live["created_on"] == "2026-11-27T10:02:00.000000Z"
    back = sb.ctl("POST", "/scripts/mauntic-gateway/deploy", {"triggered_by": "rollback", "version_id": V_OLD})
    assert back["annotations"]["workers/rollback_from"] == up["id"]
    assert back["versions"] == [{"version_id": V_OLD, "percentage": 100}]
    versions = sb.cf("GET", GW + "/versions?per_page=10").json()["result"]["items"]
    assert versions[0]["id"] == new_vid and versions[0]["number"] == 3


def test_control_errors_are_plain(sb: Client):
    a = sb.call("POST", "/_sandbox/scripts", {"account_id": "nope", "script": "x"})
    assert a.status == 404 and a.json()["error"]["code"] == "account_not_found"
    a = sb.call("PUT", "/_sandbox/scripts/none/scenario", {"rps": 1})
    assert a.status == 404
    a = sb.call("POST", "/_sandbox/faults", {"route": "cf.nope", "status": 500})
    assert a.status == 400
