"""The platform's edge cases the sandbox models: secrets per version and the secret-change
rollback rule (10220, `?force=true`), `PUT .../secrets` (10215 mid-split), cohorts on
deployments, and the placeholder codes."""

from __future__ import annotations

import pytest

from sandbox import cloudflare

from .conftest import ACCT, T0, TOKEN, V_NEW, V_OLD, Client, seed_gateway

GW = "/mauntic-gateway"
S = "mauntic-gateway"
TARGET = "The following secrets have changed:"


def split(*pairs, **extra):
    return {"strategy": "percentage", "versions": [{"version_id": v, "percentage": p} for v, p in pairs], **extra}


def codes(answer) -> list[int]:
    return [e["code"] for e in answer.json()["errors"]]


def wrangler_changed_secrets(answer) -> list[str]:
    """What wrangler's createDeployment reads from a 10220 (packages/wrangler/src/versions/
    api.ts): the note text minus ` [code: 10220]`, after the target string, split on ', '."""
    e = answer.json()["errors"][0]
    note = f"{e['message']} [code: {e['code']}]".replace(" [code: 10220]", "")
    return note[note.index(TARGET) + len(TARGET) + 1:].split(", ")


def ramp(sb: Client, new_pct: float) -> None:
    a = sb.cf("POST", GW + "/deployments", split((V_NEW, new_pct), (V_OLD, 100 - new_pct)))
    assert a.status == 200, a.text


def splits(sb: Client) -> list:
    return sb.ctl("GET", f"/scripts/{S}/deployments")["splits"]


# ---- secrets and the rollback rule -------------------------------------------------------


def test_a_version_carries_its_secrets_as_secret_text_bindings_without_values(sb: Client):
    sb.ctl("POST", "/scripts", {"account_id": ACCT, "script": S, "versions": [
        {"id": V_OLD, "secrets": {"API_KEY": "one"}}, {"id": V_NEW}]})
    v = sb.cf("GET", f"{GW}/versions/{V_NEW}").json()["result"]
    assert {"type": "secret_text", "name": "API_KEY"} in v["resources"]["bindings"]
    assert "one" not in sb.cf("GET", f"{GW}/versions/{V_NEW}").text  # inherited, never shown
    assert sb.cf("GET", GW + "/secrets").json()["result"] == [{"name": "API_KEY", "type": "secret_text"}]


def test_rolling_back_past_a_secret_change_is_refused_400_10220_naming_the_secrets(sb: Client):
    sb.ctl("POST", "/scripts", {"account_id": ACCT, "script": S, "versions": [
        {"id": V_OLD, "secrets": {"API_KEY": "one", "DB_URL": "x", "KEEP": "k"}},
        {"id": V_NEW, "secrets": {"API_KEY": "two", "DB_URL": None}}],  # the candidate rotates and drops
        "deployment": {"versions": [{"version_id": V_OLD, "percentage": 100}]}})
    ramp(sb, 10)
    back = sb.cf("POST", GW + "/deployments", split((V_OLD, 100)))
    assert back.status == 400 and codes(back) == [10220]
    assert back.json()["errors"][0]["message"].startswith("A secret has changed since this version was active.")
    assert wrangler_changed_secrets(back) == ["API_KEY", "DB_URL"]
    assert splits(sb)[-1] == [[V_NEW, 10], [V_OLD, 90]]  # nothing written


def test_the_same_rollback_with_force_true_succeeds(sb: Client):
    sb.ctl("POST", "/scripts", {"account_id": ACCT, "script": S, "versions": [
        {"id": V_OLD, "secrets": {"API_KEY": "one"}}, {"id": V_NEW, "secrets": {"API_KEY": "two"}}],
        "deployment": {"versions": [{"version_id": V_OLD, "percentage": 100}]}})
    ramp(sb, 50)
    a = sb.call("POST", f"/client/v4/accounts/{ACCT}/workers/scripts{GW}/deployments?force=true",
                split((V_OLD, 100)), headers={"Authorization": f"Bearer {TOKEN}"})
    assert a.status == 200 and a.json()["result"]["versions"] == [{"version_id": V_OLD, "percentage": 100}]
    assert sb.ctl("GET", "/calls?route=cf.deployments.write")["calls"][-1]["note"].endswith("forced")


def test_forward_moves_to_the_newest_version_are_never_refused(sb: Client):
    sb.ctl("POST", "/scripts", {"account_id": ACCT, "script": S, "versions": [
        {"id": V_OLD, "secrets": {"API_KEY": "one"}}, {"id": V_NEW, "secrets": {"API_KEY": "two"}}],
        "deployment": {"versions": [{"version_id": V_OLD, "percentage": 100}]}})
    for pct in (10, 50, 100):
        ramp(sb, pct)
    assert splits(sb)[-1] == [[V_NEW, 100], [V_OLD, 0]]


def test_a_secret_put_mid_split_is_refused_10215_and_a_versions_secret_put_makes_an_undeployed_version(sb: Client):
    seed_gateway(sb)
    ramp(sb, 10)
    put = sb.cf("PUT", GW + "/secrets", {"name": "API_KEY", "text": "two", "type": "secret_text"})
    assert put.status == 400 and codes(put) == [10215]
    changed = sb.ctl("POST", f"/scripts/{S}/secrets", {"name": "API_KEY", "value": "two"})
    assert changed["deployment"] is None
    assert changed["version"]["annotations"]["workers/triggered_by"] == "secret"
    assert splits(sb)[-1] == [[V_NEW, 10], [V_OLD, 90]]  # traffic untouched
    # The gate may still step forward; going back to the stable version is now refused.
    ramp(sb, 50)
    back = sb.cf("POST", GW + "/deployments", split((V_OLD, 100)))
    assert back.status == 400 and wrangler_changed_secrets(back) == ["API_KEY"]


def test_a_secret_put_deploys_a_new_version_and_a_wrangler_style_rollback_is_then_refused(sb: Client):
    sb.ctl("POST", "/scripts", {"account_id": ACCT, "script": S, "versions": [{"id": V_OLD}]})
    put = sb.cf("PUT", GW + "/secrets", {"name": "TOKEN", "text": "s3cret", "type": "secret_text"})
    assert put.status == 200 and put.json()["result"] == {"name": "TOKEN", "type": "secret_text"}
    live = sb.cf("GET", GW + "/deployments").json()["result"]["deployments"][0]
    assert live["annotations"]["workers/triggered_by"] == "secret"
    new_vid = live["versions"][0]["version_id"]
    assert new_vid != V_OLD and live["versions"][0]["percentage"] == 100
    back = sb.cf("POST", GW + "/deployments", split((V_OLD, 100)))
    assert back.status == 400 and wrangler_changed_secrets(back) == ["TOKEN"]
    gone = sb.call("DELETE", f"/client/v4/accounts/{ACCT}/workers/scripts{GW}/secrets/TOKEN",
                   headers={"Authorization": f"Bearer {TOKEN}"})
    assert gone.status == 200 and sb.cf("GET", GW + "/secrets").json()["result"] == []


def test_an_unchanged_secret_does_not_block_a_rollback(sb: Client):
    sb.ctl("POST", "/scripts", {"account_id": ACCT, "script": S, "versions": [
        {"id": V_OLD, "secrets": {"API_KEY": "one"}}, {"id": V_NEW}],  # inherits API_KEY unchanged
        "deployment": {"versions": [{"version_id": V_OLD, "percentage": 100}]}})
    ramp(sb, 10)
    assert sb.cf("POST", GW + "/deployments", split((V_OLD, 100))).status == 200


@pytest.mark.parametrize("body,why", [
    ({"name": "A", "type": "secret_text"}, "text"),
    ({"name": "1bad", "text": "x", "type": "secret_text"}, "name"),
    ({"name": "A", "text": "x", "type": "plain_text"}, "type"),
])
def test_a_bad_secret_body_is_400_with_a_placeholder_code(sb: Client, body, why):
    seed_gateway(sb)
    a = sb.cf("PUT", GW + "/secrets", body)
    assert a.status == 400 and codes(a) == [cloudflare.PLACEHOLDER_INVALID_SECRET] and why in a.text


# ---- cohorts -----------------------------------------------------------------------------


COHORTS = [{"name": "employee", "versions": [{"version_id": V_NEW, "percentage": 100}]},
           {"name": "beta", "versions": [{"version_id": V_NEW, "percentage": 50},
                                         {"version_id": V_OLD, "percentage": 50}]}]


def test_a_deployment_with_cohorts_is_stored_and_returned(sb: Client):
    seed_gateway(sb)
    a = sb.cf("POST", GW + "/deployments", split((V_OLD, 100), cohorts=COHORTS))
    assert a.status == 200 and a.json()["result"]["cohorts"] == COHORTS
    live = sb.cf("GET", GW + "/deployments").json()["result"]["deployments"][0]
    assert live["cohorts"] == COHORTS
    assert sb.cf("GET", f"{GW}/deployments/{live['id']}").json()["result"]["cohorts"] == COHORTS


def test_a_deployment_without_cohorts_has_no_cohorts_key(sb: Client):
    seed_gateway(sb)
    assert "cohorts" not in sb.cf("POST", GW + "/deployments", split((V_OLD, 100))).json()["result"]


def test_a_post_without_cohorts_replaces_the_deployment_and_the_cohorts_are_gone(sb: Client):
    seed_gateway(sb)
    sb.ctl("POST", f"/scripts/{S}/deploy", {"versions": [{"version_id": V_OLD, "percentage": 100}],
                                            "cohorts": COHORTS})  # a human's
    ramp(sb, 10)
    live = sb.cf("GET", GW + "/deployments").json()["result"]["deployments"]
    assert "cohorts" not in live[0] and live[1]["cohorts"] == COHORTS


def test_the_control_hook_sets_cohorts_on_the_live_split_when_no_versions_are_given(sb: Client):
    seed_gateway(sb)
    d = sb.ctl("POST", f"/scripts/{S}/deploy", {"cohorts": COHORTS})
    assert d["versions"] == [{"version_id": V_OLD, "percentage": 100}] and d["cohorts"] == COHORTS
    assert d["author_email"] == "human@example.com"


@pytest.mark.parametrize("cohorts,pointer", [
    ([{"name": "much-too-long", "versions": [{"version_id": V_NEW, "percentage": 100}]}], "/cohorts/0/name"),
    ([{"name": "bad name", "versions": [{"version_id": V_NEW, "percentage": 100}]}], "/cohorts/0/name"),
    ([{"name": "beta", "versions": [{"version_id": V_NEW, "percentage": 100}]},
      {"name": "BETA", "versions": [{"version_id": V_NEW, "percentage": 100}]}], "/cohorts/1/name"),
    ([{"name": "beta", "versions": [{"version_id": V_NEW, "percentage": 60}]}], "/cohorts/0/versions"),
    ([{"name": "beta", "versions": []}], "/cohorts/0/versions"),
    ([{"name": f"c{i}", "versions": [{"version_id": V_NEW, "percentage": 100}]} for i in range(6)], "/cohorts/5"),
    ("beta", "/cohorts"),
])
def test_invalid_cohorts_are_refused_400_with_the_placeholder_code(sb: Client, cohorts, pointer):
    seed_gateway(sb)
    a = sb.cf("POST", GW + "/deployments", split((V_OLD, 100), cohorts=cohorts))
    assert a.status == 400, a.text
    assert set(codes(a)) == {cloudflare.PLACEHOLDER_INVALID_DEPLOYMENT}
    assert pointer in [e["source"]["pointer"] for e in a.json()["errors"]]
    assert len(splits(sb)) == 1


def test_cohorts_may_not_bring_a_third_version(sb: Client):
    seed_gateway(sb)
    third = sb.ctl("POST", f"/scripts/{S}/versions", {})["id"]
    a = sb.cf("POST", GW + "/deployments", split((V_NEW, 10), (V_OLD, 90), cohorts=[
        {"name": "beta", "versions": [{"version_id": third, "percentage": 100}]}]))
    assert a.status == 400 and "at most 2 distinct versions" in a.text


def test_the_rollback_rule_applies_inside_a_cohort(sb: Client):
    sb.ctl("POST", "/scripts", {"account_id": ACCT, "script": S, "versions": [
        {"id": V_OLD, "secrets": {"API_KEY": "one"}}, {"id": V_NEW, "secrets": {"API_KEY": "two"}}],
        "deployment": {"versions": [{"version_id": V_OLD, "percentage": 100}], "cohorts": COHORTS}})
    # The default stays; "employee" goes back from V_NEW to V_OLD: a rollback within the cohort.
    back = sb.cf("POST", GW + "/deployments", split((V_OLD, 100), cohorts=[
        {"name": "employee", "versions": [{"version_id": V_OLD, "percentage": 100}]}]))
    assert back.status == 400 and codes(back) == [10220]


# ---- placeholders ----------------------------------------------------------------------


def test_placeholder_codes_are_distinct_and_outside_every_range_cloudflare_uses():
    values = [v for k, v in vars(cloudflare).items() if k.startswith("PLACEHOLDER_")]
    assert len(values) == len(set(values)) >= 8
    assert all(999_000 <= v <= 999_999 for v in values)
    real = {cloudflare.ERR_AUTH[0], cloudflare.ERR_FORBIDDEN[0], cloudflare.ERR_BAD_HEADERS[0],
            cloudflare.ERR_AUTH_FORMAT[0], cloudflare.ERR_NOT_FOUND[0], cloudflare.ERR_RATE[0],
            cloudflare.ERR_SERVER[0], cloudflare.ERR_NO_ROUTE[0], cloudflare.ERR_SECRETS_CHANGED,
            cloudflare.ERR_VERSION_NOT_DEPLOYED}
    assert not real & set(values)


def test_a_human_deploy_is_not_held_to_the_secret_rule(sb: Client):
    """The control hook stands for a person who confirmed wrangler's prompt (a forced write)."""
    sb.ctl("POST", "/scripts", {"account_id": ACCT, "script": S, "versions": [
        {"id": V_OLD, "secrets": {"API_KEY": "one"}}, {"id": V_NEW, "secrets": {"API_KEY": "two"}}],
        "deployment": {"versions": [{"version_id": V_NEW, "percentage": 100}], "created_on_ms": T0}})
    d = sb.ctl("POST", f"/scripts/{S}/deploy", {"triggered_by": "rollback", "version_id": V_OLD})
    assert d["versions"] == [{"version_id": V_OLD, "percentage": 100}]
