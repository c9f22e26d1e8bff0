"""The control API under `/_sandbox/`: the test harness seeds accounts, scripts and
versions, sets scenarios and the clock, switches faults, deploys "by hand", publishes
assets, and reads back what the stand-ins saw (deployment history, the API call log,
Slack messages, stored points). JSON in and out; errors are
`{"error": {"code", "message"}}` with 400/404/409. See README.md for every route.
"""

from __future__ import annotations

import math
import re
from typing import Any, Callable

from . import access, cloudflare, slack
from .answer_times import AnswerTimesError, parse_answer_times
from .faults import FaultError
from .ratelimit import RateLimitError
from .httpio import Request, Response, json_response
from .traffic import Scenario, ScenarioError, merge_docs
from .world import HUMAN_EMAIL, Script, World, WorldError, iso

ROUTE = "control"
Handler = Callable[["Control", Request, re.Match[str]], Any]


def bad(message: str, code: str = "bad_request") -> WorldError:
    """A 400."""
    return WorldError(400, code, message)


def body_object(req: Request) -> dict[str, Any]:
    """The JSON object body (empty body = {})."""
    if not req.body.strip():
        return {}
    try:
        doc = req.json()
    except (ValueError, UnicodeDecodeError):
        raise bad("body must be JSON") from None
    if not isinstance(doc, dict):
        raise bad("body must be a JSON object")
    return doc


def need_str(doc: dict[str, Any], key: str) -> str:
    """A required non-empty string field."""
    v = doc.get(key)
    if not isinstance(v, str) or not v:
        raise bad(f"{key} (string) is required")
    return v


def opt_bool(doc: dict[str, Any], key: str, default: bool) -> bool:
    """An optional boolean field."""
    v = doc.get(key, default)
    if not isinstance(v, bool):
        raise bad(f"{key} must be true or false")
    return v


def opt_int(doc: dict[str, Any], key: str) -> int | None:
    """An optional integer field."""
    v = doc.get(key)
    if v is not None and (isinstance(v, bool) or not isinstance(v, int)):
        raise bad(f"{key} must be an integer")
    return v


class Control:
    """Routes `/_sandbox/*` to small handlers."""

    def __init__(self, world: World, analytics: Any):
        self.world = world
        self.analytics = analytics
        self.routes: list[tuple[str, re.Pattern[str], Handler]] = [
            ("GET", re.compile(r"^/_sandbox/health$"), Control.health),
            ("POST", re.compile(r"^/_sandbox/reset$"), Control.reset),
            ("GET", re.compile(r"^/_sandbox/clock$"), Control.get_clock),
            ("POST", re.compile(r"^/_sandbox/clock$"), Control.set_clock),
            ("POST", re.compile(r"^/_sandbox/accounts$"), Control.add_account),
            ("POST", re.compile(r"^/_sandbox/scripts$"), Control.add_script),
            ("GET", re.compile(r"^/_sandbox/scripts$"), Control.list_scripts),
            ("GET", re.compile(r"^/_sandbox/scripts/(?P<s>[^/]+)$"), Control.get_script),
            ("POST", re.compile(r"^/_sandbox/scripts/(?P<s>[^/]+)/versions$"), Control.add_version),
            ("POST", re.compile(r"^/_sandbox/scripts/(?P<s>[^/]+)/deploy$"), Control.deploy),
            ("POST", re.compile(r"^/_sandbox/scripts/(?P<s>[^/]+)/secrets$"), Control.change_secret),
            ("GET", re.compile(r"^/_sandbox/scripts/(?P<s>[^/]+)/deployments$"), Control.deployments),
            ("PUT", re.compile(r"^/_sandbox/scripts/(?P<s>[^/]+)/scenario$"), Control.put_scenario),
            ("PATCH", re.compile(r"^/_sandbox/scripts/(?P<s>[^/]+)/scenario$"), Control.patch_scenario),
            ("GET", re.compile(r"^/_sandbox/scripts/(?P<s>[^/]+)/scenario$"), Control.get_scenario),
            ("GET", re.compile(r"^/_sandbox/faults$"), Control.list_faults),
            ("POST", re.compile(r"^/_sandbox/faults$"), Control.add_fault),
            ("DELETE", re.compile(r"^/_sandbox/faults$"), Control.clear_faults),
            ("DELETE", re.compile(r"^/_sandbox/faults/(?P<id>\d+)$"), Control.clear_fault),
            ("GET", re.compile(r"^/_sandbox/faults/(?P<id>\d+)$"), Control.get_fault),
            ("POST", re.compile(r"^/_sandbox/faults/(?P<id>\d+)/release$"), Control.release_fault),
            ("GET", re.compile(r"^/_sandbox/assets$"), Control.list_assets),
            ("POST", re.compile(r"^/_sandbox/assets$"), Control.publish_asset),
            ("DELETE", re.compile(r"^/_sandbox/assets/(?P<env>[^/]+)/(?P<sha>[^/]+)$"), Control.unpublish_asset),
            ("GET", re.compile(r"^/_sandbox/slack/messages$"), Control.slack_messages),
            ("PUT", re.compile(r"^/_sandbox/access/certs$"), Control.put_access_certs),
            ("GET", re.compile(r"^/_sandbox/access/certs$"), Control.get_access_certs),
            ("DELETE", re.compile(r"^/_sandbox/slack/messages$"), Control.clear_slack),
            ("PUT", re.compile(r"^/_sandbox/slack/app$"), Control.put_slack_app),
            ("POST", re.compile(r"^/_sandbox/slack/click$"), Control.slack_click),
            ("GET", re.compile(r"^/_sandbox/slack/responses$"), Control.slack_responses),
            ("GET", re.compile(r"^/_sandbox/calls$"), Control.calls),
            ("DELETE", re.compile(r"^/_sandbox/calls$"), Control.clear_calls),
            ("GET", re.compile(r"^/_sandbox/calls/timing$"), Control.call_timing),
            ("GET", re.compile(r"^/_sandbox/ratelimit$"), Control.get_rate_limit),
            ("POST", re.compile(r"^/_sandbox/ratelimit$"), Control.set_rate_limit),
            ("GET", re.compile(r"^/_sandbox/answer_times$"), Control.get_answer_times),
            ("POST", re.compile(r"^/_sandbox/answer_times$"), Control.set_answer_times),
            ("POST", re.compile(r"^/_sandbox/analytics/generate$"), Control.generate),
            ("GET", re.compile(r"^/_sandbox/analytics/stats$"), Control.stats),
        ]

    def handle(self, req: Request) -> Response:
        """Dispatches one control request."""
        matched_path = False
        for method, pattern, fn in self.routes:
            m = pattern.match(req.path)
            if m is None:
                continue
            matched_path = True
            if method != req.method:
                continue
            try:
                return json_response(200, fn(self, req, m), ROUTE)
            except WorldError as e:
                return json_response(e.status, {"error": {"code": e.code, "message": e.message}}, ROUTE)
            except (ScenarioError, FaultError, RateLimitError, AnswerTimesError) as e:
                return json_response(400, {"error": {"code": "bad_request", "message": str(e)}}, ROUTE)
        status, code = (405, "method_not_allowed") if matched_path else (404, "not_found")
        return json_response(status, {"error": {"code": code, "message": f"{req.method} {req.path}"}}, ROUTE)

    # ---- basics ------------------------------------------------------------------

    def health(self, req: Request, m: re.Match[str]) -> Any:
        return {"ok": True, "now_ms": self.world.now_ms}

    def reset(self, req: Request, m: re.Match[str]) -> Any:
        """Forgets everything but the clock (and, with {"now_ms"}, sets it)."""
        doc = body_object(req)
        self.world.reset_state()
        self.analytics.clear()
        if opt_int(doc, "now_ms") is not None:
            self.world.set_clock(doc["now_ms"])
        return {"ok": True, "now_ms": self.world.now_ms}

    def get_clock(self, req: Request, m: re.Match[str]) -> Any:
        return {"now_ms": self.world.now_ms, "iso": iso(self.world.now_ms)}

    def set_clock(self, req: Request, m: re.Match[str]) -> Any:
        """{"now_ms": N} or {"advance_ms": N}."""
        doc = body_object(req)
        now, step = opt_int(doc, "now_ms"), opt_int(doc, "advance_ms")
        if (now is None) == (step is None):
            raise bad("give exactly one of now_ms, advance_ms")
        with self.world.lock:
            self.world.set_clock(now if now is not None else self.world.now_ms + step)
        return self.get_clock(req, m)

    # ---- accounts, scripts, versions ------------------------------------------

    def add_account(self, req: Request, m: re.Match[str]) -> Any:
        doc = body_object(req)
        acct = self.world.add_account(need_str(doc, "account_id"), need_str(doc, "api_token"),
                                      doc.get("analytics_token"),
                                      doc.get("author_email", "rollout-gate@example.com"),
                                      opt_bool(doc, "api_token_analytics", True))
        return {"account_id": acct.id}

    def add_script(self, req: Request, m: re.Match[str]) -> Any:
        """Creates a script with versions, an initial deployment and a scenario."""
        doc = body_object(req)
        versions = doc.get("versions", [{}])
        if not isinstance(versions, list) or not versions:
            raise bad("versions must be a non-empty list of version specs")
        with self.world.lock:
            script = self.world.add_script(need_str(doc, "account_id"), need_str(doc, "script"))
            try:
                made = [self.world.add_version(script, spec_object(v)) for v in versions]
                deployment = self._initial_deployment(script, doc, made[-1].id)
                if doc.get("scenario") is not None:
                    self.world.set_scenario(script, Scenario.from_json(doc["scenario"]), None)
            except Exception:
                del self.world.scripts[script.name]
                raise
            return {"script": script.name, "versions": [v.full() for v in made], "deployment": deployment}

    def _initial_deployment(self, script: Script, doc: dict[str, Any], last_id: str) -> Any:
        """The seeded live deployment: `deployment` ({versions?, created_on_ms?}), or the
        last version at 100%; `"deployment": null` leaves the script undeployed."""
        if "deployment" in doc and doc["deployment"] is None:
            return None
        spec = doc.get("deployment") or {}
        if not isinstance(spec, dict):
            raise bad("deployment must be an object")
        versions = spec.get("versions", [{"version_id": last_id, "percentage": 100}])
        split, cohorts, errors = cloudflare.validate_deployment(
            script, {"strategy": "percentage", "versions": versions, "cohorts": spec.get("cohorts")})
        if errors:
            raise bad("; ".join(e["message"] for e in errors), "invalid_split")
        d = self.world.add_deployment(
            script, split, source=spec.get("source", "wrangler"),
            author_email=spec.get("author_email", "ci@example.com"),
            annotations={"workers/triggered_by": "upload"}, created_on_ms=opt_int(spec, "created_on_ms"),
            cohorts=cohorts)
        return d.to_api()

    def list_scripts(self, req: Request, m: re.Match[str]) -> Any:
        with self.world.lock:
            return {"scripts": [self._script_view(s) for s in self.world.scripts.values()]}

    def get_script(self, req: Request, m: re.Match[str]) -> Any:
        with self.world.lock:
            return self._script_view(self.world.script(m["s"]))

    def _script_view(self, s: Script) -> dict[str, Any]:
        return {
            "script": s.name, "account_id": s.account_id,
            "versions": [v.full() for v in s.versions],
            "live": s.live().to_api() if s.live() else None,
            "deployments": self._history(s),
            "scenarios": [{"from_ms": f, "scenario": sc.doc} for f, sc in s.scenarios],
            "generated_until_ms": s.generated_until_ms,
        }

    def add_version(self, req: Request, m: re.Match[str]) -> Any:
        """Uploads a version without deploying it (`wrangler versions upload`)."""
        with self.world.lock:
            return self.world.add_version(self.world.script(m["s"]), body_object(req)).full()

    # ---- deployments -----------------------------------------------------------

    def deploy(self, req: Request, m: re.Match[str]) -> Any:
        """A manual `wrangler deploy` / rollback behind the gate's back."""
        with self.world.lock:
            return cloudflare.manual_deploy(self.world, self.world.script(m["s"]), body_object(req))

    def change_secret(self, req: Request, m: re.Match[str]) -> Any:
        """A secret change behind the gate's back: `{name, value, deploy?}` (`value` null
        deletes). `deploy: false` (default) is `wrangler versions secret put`: a new version
        copied from the latest, not deployed; `deploy: true` is `wrangler secret put`: that
        version goes live at 100% (409 version_not_deployed while a split is live)."""
        doc = body_object(req)
        name = need_str(doc, "name")
        if "value" not in doc or not (doc["value"] is None or isinstance(doc["value"], str)):
            raise bad("value (string, or null to delete) is required")
        deploy = doc.get("deploy", False)
        if not isinstance(deploy, bool):
            raise bad("deploy must be a boolean")
        with self.world.lock:
            try:
                v, d = self.world.change_secret(self.world.script(m["s"]), name, doc["value"], deploy=deploy,
                                                author_email=doc.get("author_email", HUMAN_EMAIL))
            except WorldError as e:
                if e.code == "version_not_deployed":
                    raise WorldError(409, e.code, e.message) from None
                raise
            return {"version": v.full(), "deployment": d.to_api() if d else None}

    def deployments(self, req: Request, m: re.Match[str]) -> Any:
        """The full history, oldest first, with a compact `splits` list."""
        with self.world.lock:
            s = self.world.script(m["s"])
            return {"deployments": self._history(s),
                    "splits": [[[v, p] for v, p in d.versions] for d in s.deployments]}

    def _history(self, s: Script) -> list[dict[str, Any]]:
        return [{**d.to_api(), "created_on_ms": d.created_on_ms} for d in s.deployments]

    # ---- scenarios -------------------------------------------------------------

    def put_scenario(self, req: Request, m: re.Match[str]) -> Any:
        """Replaces the scenario from `from_ms` (default: now; the first one: always)."""
        doc = body_object(req)
        from_ms = opt_int(doc, "from_ms")
        doc.pop("from_ms", None)
        with self.world.lock:
            s = self.world.script(m["s"])
            effective = self.world.set_scenario(s, Scenario.from_json(doc), from_ms)
            return {"from_ms": effective, "scenario": doc}

    def patch_scenario(self, req: Request, m: re.Match[str]) -> Any:
        """Deep-merges into the latest scenario (null deletes a key)."""
        doc = body_object(req)
        from_ms = opt_int(doc, "from_ms")
        doc.pop("from_ms", None)
        with self.world.lock:
            s = self.world.script(m["s"])
            base = s.scenarios[-1][1].doc if s.scenarios else {}
            merged = merge_docs(base, doc)
            effective = self.world.set_scenario(s, Scenario.from_json(merged), from_ms)
            return {"from_ms": effective, "scenario": merged}

    def get_scenario(self, req: Request, m: re.Match[str]) -> Any:
        with self.world.lock:
            s = self.world.script(m["s"])
            return {"scenarios": [{"from_ms": f, "scenario": sc.doc} for f, sc in s.scenarios]}

    # ---- faults -----------------------------------------------------------------

    def list_faults(self, req: Request, m: re.Match[str]) -> Any:
        return {"faults": self.world.faults.list()}

    def add_fault(self, req: Request, m: re.Match[str]) -> Any:
        return self.world.faults.add(body_object(req)).to_json()

    def clear_faults(self, req: Request, m: re.Match[str]) -> Any:
        return {"cleared": self.world.faults.clear()}

    def clear_fault(self, req: Request, m: re.Match[str]) -> Any:
        n = self.world.faults.clear(int(m["id"]))
        if n == 0:
            raise WorldError(404, "fault_not_found", f"no fault {m['id']}")
        return {"cleared": n}

    def get_fault(self, req: Request, m: re.Match[str]) -> Any:
        """One rule; a hold shows `held` (requests blocked now) and `hits`."""
        rule = self.world.faults.get(int(m["id"]))
        if rule is None:
            raise WorldError(404, "fault_not_found", f"no fault {m['id']}")
        return rule

    def release_fault(self, req: Request, m: re.Match[str]) -> Any:
        """Lets the requests a hold blocks go on (as its `then` says); it holds no more."""
        rule = self.world.faults.release(int(m["id"]))
        if rule is None:
            raise WorldError(404, "fault_not_found", f"no hold fault {m['id']}")
        return rule.to_json()

    # ---- the rate limit and the answer times ---------------------------------------

    def get_rate_limit(self, req: Request, m: re.Match[str]) -> Any:
        """Settings, and per token: requests sent and refused per sandbox minute, the most
        sent in any window of whole minutes, the block."""
        return self.world.rate_limit.report()

    def set_rate_limit(self, req: Request, m: re.Match[str]) -> Any:
        """`{"enabled"?, "limit"?, "window_ms"?}`; kept across a reset."""
        self.world.rate_limit.configure(body_object(req))
        return self.world.rate_limit.report()

    def get_answer_times(self, req: Request, m: re.Match[str]) -> Any:
        return self.world.answer_times.to_json()

    def set_answer_times(self, req: Request, m: re.Match[str]) -> Any:
        """`{"profile": "off"|"real", "medians_ms"?, "jitter"?, "seed"?}`; kept across a reset."""
        self.world.answer_times = parse_answer_times(body_object(req), self.world.answer_times.seed)
        return self.world.answer_times.to_json()

    # ---- assets ------------------------------------------------------------------

    def list_assets(self, req: Request, m: re.Match[str]) -> Any:
        with self.world.lock:
            return {"assets": [{"env": e, "sha": s} for e, s in sorted(self.world.assets)]}

    def publish_asset(self, req: Request, m: re.Match[str]) -> Any:
        doc = body_object(req)
        env, sha = need_str(doc, "env"), need_str(doc, "sha")
        if "/" in env or "/" in sha:
            raise bad("env and sha cannot contain '/'")
        with self.world.lock:
            self.world.assets.add((env, sha))
        return {"env": env, "sha": sha, "path": f"/assets/{env}/styles/{sha}.css"}

    def unpublish_asset(self, req: Request, m: re.Match[str]) -> Any:
        with self.world.lock:
            self.world.assets.discard((m["env"], m["sha"]))
        return {"ok": True}

    # ---- what the stand-ins saw ----------------------------------------------------

    def put_access_certs(self, req: Request, m: re.Match[str]) -> Any:
        """Sets the JWKS the Access certs endpoint serves (a rotation is another PUT)."""
        return access.put_certs(self.world, body_object(req))

    def get_access_certs(self, req: Request, m: re.Match[str]) -> Any:
        """How many times the certs were fetched, and what is served."""
        return access.certs_status(self.world)

    def slack_messages(self, req: Request, m: re.Match[str]) -> Any:
        since = int(req.arg("since", "0") or "0")
        with self.world.lock:
            return {"messages": [x for x in self.world.slack if x["seq"] > since]}

    def put_slack_app(self, req: Request, m: re.Match[str]) -> Any:
        """The Slack app's Interactivity settings: {request_url, signing_secret}."""
        try:
            return slack.set_app(self.world, body_object(req))
        except ValueError as e:
            raise bad(str(e)) from e

    def slack_click(self, req: Request, m: re.Match[str]) -> Any:
        """Clicks a button on a recorded message (sandbox/slack.py `click`)."""
        base = f"http://{req.header('host') or '127.0.0.1'}"
        try:
            return slack.click(self.world, body_object(req), base)
        except LookupError as e:
            raise WorldError(404, "not_found", str(e)) from e
        except ValueError as e:
            raise bad(str(e)) from e

    def slack_responses(self, req: Request, m: re.Match[str]) -> Any:
        """What the gate posted to response_urls."""
        with self.world.lock:
            return {"responses": list(self.world.slack_responses)}

    def clear_slack(self, req: Request, m: re.Match[str]) -> Any:
        with self.world.lock:
            self.world.slack.clear()
        return {"ok": True}

    def calls(self, req: Request, m: re.Match[str]) -> Any:
        """The call log; `?route=<class or prefix>&since=<seq>&method=POST`."""
        since = int(req.arg("since", "0") or "0")
        route, method = req.arg("route"), req.arg("method")
        with self.world.lock:
            out = [c for c in self.world.calls if c["seq"] > since
                   and (route is None or c["route"] == route or c["route"].startswith(route + "."))
                   and (method is None or c["method"] == method.upper())]
        return {"calls": out}

    def call_timing(self, req: Request, m: re.Match[str]) -> Any:
        """Per route class: calls, the sandbox's own time on them (`served_ms` p50, p99, max)
        and how many it served slower than their drawn answer time (`late`: there the
        sandbox, not the answer-time profile, set the pace)."""
        with self.world.lock:
            calls = [(c["route"], c.get("served_ms", 0.0), c.get("answer_ms", 0.0)) for c in self.world.calls]
        by_route: dict[str, list[tuple[float, float]]] = {}
        for route, served, answer in calls:
            by_route.setdefault(route, []).append((served, answer))
        out = {}
        for route, rows in sorted(by_route.items()):
            served = sorted(s for s, _ in rows)
            out[route] = {"calls": len(rows), "served_ms_p50": rank(served, 50), "served_ms_p99": rank(served, 99),
                          "served_ms_max": served[-1], "late": sum(1 for s, a in rows if a and s > a)}
        return {"routes": out}

    def clear_calls(self, req: Request, m: re.Match[str]) -> Any:
        with self.world.lock:
            self.world.calls.clear()
        return {"ok": True}

    # ---- analytics -----------------------------------------------------------------

    def generate(self, req: Request, m: re.Match[str]) -> Any:
        """Generates points up to the clock now (normally lazy, on each SQL query)."""
        r = self.analytics.ensure_generated()
        return {"rows": r.rows, "minutes": r.minutes, "seconds": round(r.seconds, 3),
                "now_ms": self.world.now_ms}

    def stats(self, req: Request, m: re.Match[str]) -> Any:
        return self.analytics.stats()


def rank(ordered: list[float], p: float) -> float:
    """The nearest-rank percentile of an ascending, non-empty list."""
    return ordered[max(0, math.ceil(len(ordered) * p / 100) - 1)]


def spec_object(v: Any) -> dict[str, Any]:
    """A version spec must be an object."""
    if not isinstance(v, dict):
        raise bad("each version spec must be an object")
    return v
