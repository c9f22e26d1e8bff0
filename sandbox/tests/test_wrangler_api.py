"""The endpoints only wrangler calls (sandbox/wrangler_api.py): the multipart version
upload as wrangler 4.86 sends it, the service view, subdomains and script settings, with
the same auth as the rest of the API. tests/ci/test_real_wrangler.py drives them with the
real wrangler."""

from __future__ import annotations

import json
import uuid

from .conftest import ACCT, TOKEN, V_NEW, V_OLD, Client, seed_gateway

GW = "/mauntic-gateway"
BASE = f"/client/v4/accounts/{ACCT}/workers"


def multipart(parts: list[tuple[str, str, bytes]]) -> tuple[bytes, str]:
    """A multipart/form-data body of (name, content type, bytes) parts, like undici's."""
    boundary = "----formdata-undici-" + uuid.uuid4().hex
    out = b""
    for name, ctype, data in parts:
        out += (f"--{boundary}\r\nContent-Disposition: form-data; name=\"{name}\"; filename=\"{name}\"\r\n"
                f"Content-Type: {ctype}\r\n\r\n").encode() + data + b"\r\n"
    out += f"--{boundary}--\r\n".encode()
    return out, f"multipart/form-data; boundary={boundary}"


def upload(sb: Client, metadata: dict, modules: dict[str, bytes] | None = None, token: str = TOKEN,
           script: str = "mauntic-gateway"):
    parts = [("metadata", "application/json", json.dumps(metadata).encode())]
    for name, data in (modules if modules is not None else {"index.js": b"export default {}"}).items():
        parts.append((name, "application/javascript+module", data))
    body, ctype = multipart(parts)
    return sb.call("POST", f"{BASE}/scripts/{script}/versions?bindings_inherit=strict", raw=body,
                   headers={"Authorization": f"Bearer {token}", "Content-Type": ctype})


META = {"main_module": "index.js", "compatibility_date": "2026-04-01",
        "bindings": [{"name": "AE", "type": "analytics_engine", "dataset": "mauntic_logs"},
                     {"name": "KEY", "type": "secret_text", "text": "s3cret"}],
        "annotations": {"workers/message": "release 42", "workers/tag": "9fceb02"}}


def test_an_upload_makes_a_version_that_serves_nobody(sb: Client):
    seed_gateway(sb)
    a = upload(sb, META)
    assert a.status == 200, a.text
    v = a.json()["result"]
    assert v["number"] == 3 and v["metadata"]["has_preview"] is True and v["startup_time_ms"] >= 0
    assert v["annotations"] == {"workers/triggered_by": "upload", "workers/tag": "9fceb02",
                                "workers/message": "release 42"}
    listed = sb.cf("GET", GW + "/versions").json()["result"]["items"]
    assert listed[0]["id"] == v["id"], "the upload is the latest version"
    live = sb.cf("GET", GW + "/deployments").json()["result"]["deployments"][0]
    assert live["versions"] == [{"version_id": V_OLD, "percentage": 100}]
    full = sb.cf("GET", GW + f"/versions/{v['id']}").json()["result"]
    assert {"name": "KEY", "type": "secret_text"} in full["resources"]["bindings"]
    assert "s3cret" not in json.dumps(full), "a secret's text is never shown"


def test_a_malformed_upload_is_refused_and_makes_no_version(sb: Client):
    seed_gateway(sb)
    for metadata, modules in [
        ({**META, "main_module": "worker.js"}, None),  # names no part
        ({**META, "bindings": [{"name": "AE"}]}, None),  # a binding without a type
        ({**META, "annotations": {"workers/tag": 7}}, None),
    ]:
        a = upload(sb, metadata, modules)
        assert a.status == 400 and a.json()["success"] is False, a.text
    plain = sb.call("POST", f"{BASE}/scripts/mauntic-gateway/versions", body={"metadata": META},
                    headers={"Authorization": f"Bearer {TOKEN}"})
    assert plain.status == 400
    assert len(sb.cf("GET", GW + "/versions").json()["result"]["items"]) == 2


def test_uploads_need_the_accounts_token_and_an_existing_worker(sb: Client):
    seed_gateway(sb)
    assert upload(sb, META, token="wrong").status == 401
    missing = upload(sb, META, script="nobody")
    assert missing.status == 404 and missing.json()["errors"][0]["code"] == 10007
    sb.ctl("POST", "/accounts", {"account_id": "other", "api_token": "other-token"})
    assert sb.call("GET", f"/client/v4/accounts/other/workers/services/mauntic-gateway",
                   headers={"Authorization": "Bearer other-token"}).status == 404
    assert sb.call("GET", f"{BASE}/services/mauntic-gateway",
                   headers={"Authorization": "Bearer other-token"}).status == 403


def test_the_service_view_names_the_worker_and_its_tags(sb: Client):
    seed_gateway(sb)
    auth = {"Authorization": f"Bearer {TOKEN}"}
    a = sb.call("PATCH", f"{BASE}/scripts/mauntic-gateway/script-settings",
                body={"tags": ["cf:service=mauntic-gateway", "cf:environment=production"]}, headers=auth)
    assert a.status == 200 and a.json()["result"]["tags"] == ["cf:service=mauntic-gateway", "cf:environment=production"]
    s = sb.call("GET", f"{BASE}/services/mauntic-gateway", headers=auth).json()["result"]
    script = s["default_environment"]["script"]
    assert s["id"] == "mauntic-gateway" and len(script["tag"]) == 32
    assert script["tags"] == ["cf:service=mauntic-gateway", "cf:environment=production"]
    assert script["last_deployed_from"] == "wrangler"
    refused = sb.call("PATCH", f"{BASE}/scripts/mauntic-gateway/script-settings", body={"nonsense": 1},
                      headers=auth)
    assert refused.status == 400


def test_subdomains_and_the_deployed_versions_settings(sb: Client):
    seed_gateway(sb)
    auth = {"Authorization": f"Bearer {TOKEN}"}
    assert sb.call("GET", f"{BASE}/subdomain", headers=auth).json()["result"] == {"subdomain": "sandbox"}
    assert sb.call("GET", f"{BASE}/scripts/mauntic-gateway/subdomain", headers=auth).json()["result"] == {
        "enabled": True, "previews_enabled": True}
    settings = sb.call("GET", f"{BASE}/scripts/mauntic-gateway/settings", headers=auth).json()["result"]
    assert settings["bindings"] == [{"type": "analytics_engine", "name": "AE", "dataset": "mauntic_logs"}], \
        "the live version's (V_OLD's) bindings, not the latest upload's"
    assert sb.call("GET", f"{BASE}/subdomain").status == 401


def test_paths_it_does_not_own_still_reach_the_versions_api(sb: Client):
    seed_gateway(sb)
    a = sb.cf("GET", GW + f"/versions/{V_NEW}")
    assert a.status == 200 and a.json()["result"]["id"] == V_NEW


def test_memberships_list_the_account_the_token_opens(sb: Client):
    a = sb.call("GET", "/client/v4/memberships?page=1", headers={"Authorization": f"Bearer {TOKEN}"})
    assert a.status == 200
    body = a.json()
    assert [m["account"]["id"] for m in body["result"]] == [ACCT]
    assert body["result_info"]["total_pages"] == 1
    assert sb.call("GET", "/client/v4/memberships").status == 401



def test_content_returns_the_uploaded_modules_and_inherit_copies_bindings(sb: Client):
    seed_gateway(sb)
    v = upload(sb, {**META, "main_module": "main.js"},
               {"main.js": b"import x from './lib.js'; export default x;", "lib.js": b"export default {}"}).json()["result"]
    a = sb.call("GET", f"{BASE}/scripts/mauntic-gateway/content/v2?version={v['id']}",
                headers={"Authorization": f"Bearer {TOKEN}"})
    assert a.status == 200 and a.headers["cf-entrypoint"] == "main.js"
    assert a.headers["content-type"].startswith("multipart/form-data; boundary=")
    assert b"import x from './lib.js'" in a.body and b'name="lib.js"' in a.body
    # What `wrangler versions secret put` sends back: every binding inherited, one new secret,
    # the other secrets kept.
    copy = upload(sb, {"main_module": "main.js", "keep_bindings": ["secret_key", "secret_text"],
                       "bindings": [{"name": "AE", "type": "inherit"},
                                    {"name": "OTHER", "type": "secret_text", "text": "x"}]},
                  {"main.js": b"export default {}"}).json()["result"]
    bindings = copy["resources"]["bindings"]
    assert {"name": "AE", "type": "analytics_engine", "dataset": "mauntic_logs"} in bindings
    assert {"name": "KEY", "type": "secret_text"} in bindings and {"name": "OTHER", "type": "secret_text"} in bindings
    nothing = upload(sb, {"main_module": "main.js", "bindings": [{"name": "NOPE", "type": "inherit"}]},
                     {"main.js": b"export default {}"})
    assert nothing.status == 400


def test_a_seeded_version_has_a_placeholder_module(sb: Client):
    seed_gateway(sb)
    a = sb.call("GET", f"{BASE}/scripts/mauntic-gateway/content/v2?version={V_OLD}",
                headers={"Authorization": f"Bearer {TOKEN}"})
    assert a.status == 200 and a.headers["cf-entrypoint"] == "index.js" and b"seeded by the sandbox" in a.body
    assert sb.call("GET", f"{BASE}/scripts/mauntic-gateway/content/v2?version=nope",
                   headers={"Authorization": f"Bearer {TOKEN}"}).status == 404
