"""The sandbox world: the clock, accounts, scripts with their versions, deployment
history and scenarios, published assets, the Slack inbox, the call log, the fault
registry, the Cloudflare API rate limit and the answer times. One lock guards it; the stand-ins read and change it only through here.

Time is the sandbox clock (`now_ms`), set by the test harness: deployment `created_on`,
traffic and fault windows all follow it. The past is immutable once its data points are
generated: nothing may be inserted before a script's `generated_until_ms`.

Secrets are per version, as on the platform: each version carries the secret values it
was uploaded with (inherited from the version before unless the upload names them), and
a secret change creates a new version (cloudflare/workers-sdk, the changeset adding
`wrangler versions secret put`: "A new version with this secret will be created, the
existing secrets and config are copied from the latest version"). The sandbox keeps a
digest of each value, never the value.
"""

from __future__ import annotations

import hashlib
import random
import re
import threading
import time
import uuid
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any

from .answer_times import AnswerTimes
from .faults import Faults
from .ratelimit import RateLimit
from .traffic import MINUTE_MS, Scenario, Split

SCRIPT_NAME_RE = re.compile(r"^[a-z0-9_][a-z0-9_-]{0,62}$")
# A binding name is a JavaScript identifier (cloudflare-typescript secrets.ts: "A JavaScript
# variable name for the binding").
SECRET_NAME_RE = re.compile(r"^[A-Za-z_$][A-Za-z0-9_$]{0,254}$")
HUMAN_EMAIL = "human@example.com"
CALL_LOG_LIMIT = 100_000


class WorldError(Exception):
    """A control-API problem with an HTTP status (400, 404, 409)."""

    def __init__(self, status: int, code: str, message: str):
        super().__init__(message)
        self.status, self.code, self.message = status, code, message


def floor_minute(ms: int) -> int:
    """The start of the minute holding `ms`."""
    return ms - ms % MINUTE_MS


def iso(ms: int) -> str:
    """`2026-11-27T10:10:00.000000Z`, the API's timestamp spelling."""
    dt = datetime.fromtimestamp(ms / 1000, tz=timezone.utc)
    return dt.strftime("%Y-%m-%dT%H:%M:%S.%fZ")


@dataclass
class Account:
    """An account and the tokens that open it."""

    id: str
    api_token: str
    analytics_token: str
    author_email: str
    # Whether the API token also carries Account Analytics Read (the SQL API). False plays
    # the two-token setup of docs/deploy.md: the API token has only Workers Scripts Edit.
    api_token_analytics: bool = True


@dataclass
class Version:
    """An uploaded Worker version."""

    id: str
    script: str
    number: int
    created_on_ms: int
    author_email: str = "ci@example.com"
    source: str = "wrangler"
    tag: str | None = None
    message: str | None = None
    bindings: list[dict[str, Any]] = field(default_factory=list)
    handlers: list[str] = field(default_factory=lambda: ["fetch"])
    compatibility_date: str = "2026-11-01"
    etag: str = ""
    secrets: dict[str, str] = field(default_factory=dict)  # name -> digest of the value
    triggered_by: str = "upload"  # "secret" for a version a secret change created

    def annotations(self) -> dict[str, str]:
        """Version annotations as the API shows them."""
        out = {"workers/triggered_by": self.triggered_by}
        if self.tag:
            out["workers/tag"] = self.tag
        if self.message:
            out["workers/message"] = self.message
        return out

    def metadata(self) -> dict[str, Any]:
        """The `metadata` object."""
        return {"author_email": self.author_email, "author_id": "0" * 32,
                "created_on": iso(self.created_on_ms), "modified_on": iso(self.created_on_ms),
                "source": self.source, "hasPreview": False}

    def summary(self) -> dict[str, Any]:
        """A list entry: id, number, metadata, annotations."""
        return {"id": self.id, "number": self.number, "metadata": self.metadata(),
                "annotations": self.annotations()}

    def full(self) -> dict[str, Any]:
        """The full version object (GET .../versions/{id})."""
        secret_bindings = [{"type": "secret_text", "name": n} for n in sorted(self.secrets)]
        return {**self.summary(), "resources": {
            "bindings": self.bindings + secret_bindings,
            "script": {"etag": self.etag, "handlers": self.handlers, "last_deployed_from": "wrangler"},
            "script_runtime": {"compatibility_date": self.compatibility_date,
                               "compatibility_flags": [], "usage_model": "standard",
                               "limits": {"cpu_ms": 30000}},
        }, "startup_time_ms": 12}


VersionSplit = tuple[tuple[str, float], ...]


@dataclass(frozen=True)
class Cohort:
    """A named cohort of a deployment with its own split of the deployment's versions
    (cloudflare/cloudflare-docs, workers/configuration/versions-and-deployments/
    cohort-based-deployments.mdx)."""

    name: str
    versions: VersionSplit

    def to_api(self) -> dict[str, Any]:
        """`{"name", "versions": [...]}`, the shape the docs' create body uses. No source
        shows a deployment *read* with cohorts; the sandbox returns what was written."""
        return {"name": self.name, "versions": split_json(self.versions)}


@dataclass(frozen=True)
class Deployment:
    """One deployment: a 1–2 version split (the default), optional cohorts with their own
    splits of the same versions, live from `created_on_ms` until the next."""

    id: str
    seq: int
    created_on_ms: int
    source: str
    author_email: str
    versions: VersionSplit
    annotations: dict[str, str]
    cohorts: tuple[Cohort, ...] = ()

    def to_api(self) -> dict[str, Any]:
        """The deployment object of the API (`cohorts` only when it has some)."""
        out = {"id": self.id, "created_on": iso(self.created_on_ms), "source": self.source,
               "strategy": "percentage", "author_email": self.author_email,
               "annotations": dict(self.annotations), "versions": split_json(self.versions)}
        if self.cohorts:
            out["cohorts"] = [c.to_api() for c in self.cohorts]
        return out

    def version_ids(self) -> set[str]:
        """Every version this deployment routes to, in the default split or a cohort."""
        return {v for v, _ in self.versions} | {v for c in self.cohorts for v, _ in c.versions}

    def split(self) -> Split:
        """The split this deployment applies to traffic."""
        return Split(self.created_on_ms, self.versions)


def pct_json(p: float) -> int | float:
    """A percentage as JSON: integral values as integers, like the API."""
    return int(p) if float(p).is_integer() else p


def split_json(split: VersionSplit) -> list[dict[str, Any]]:
    """`[{"version_id", "percentage"}, ...]`."""
    return [{"version_id": v, "percentage": pct_json(p)} for v, p in split]


def secret_digest(value: str) -> str:
    """What the sandbox keeps of a secret value."""
    return hashlib.sha256(value.encode("utf-8")).hexdigest()


def merge_secrets(inherited: dict[str, str], spec: Any) -> dict[str, str]:
    """A version's secrets: the previous version's, with `spec` (`{name: value}`; a null
    value deletes) applied on top."""
    out = dict(inherited)
    if spec is None:
        return out
    if not isinstance(spec, dict):
        raise WorldError(400, "bad_secrets", "secrets must be an object of name -> string (or null)")
    for name, value in spec.items():
        if not isinstance(name, str) or not SECRET_NAME_RE.match(name):
            raise WorldError(400, "bad_secret_name", f"invalid secret name {name!r}")
        if value is None:
            out.pop(name, None)
        elif isinstance(value, str):
            out[name] = secret_digest(value)
        else:
            raise WorldError(400, "bad_secret_value", f"secret {name} must be a string")
    return out


def changed_secrets(older: Version, newer: Version) -> list[str]:
    """The secret names whose value differs between two versions (added or removed
    secrets count), sorted."""
    names = set(older.secrets) | set(newer.secrets)
    return sorted(n for n in names if older.secrets.get(n) != newer.secrets.get(n))


@dataclass
class Script:
    """A Worker script and everything that happened to it."""

    name: str
    account_id: str
    versions: list[Version] = field(default_factory=list)  # by number
    deployments: list[Deployment] = field(default_factory=list)  # by created_on, then seq
    scenarios: list[tuple[int, Scenario]] = field(default_factory=list)  # by from_ms
    generated_until_ms: int = 0  # points exist for every minute before this
    queue_depth: float | None = None  # the traffic model's carried queue depth

    def version(self, version_id: str) -> Version | None:
        """The version with this id, if it belongs to this script."""
        return next((v for v in self.versions if v.id == version_id), None)

    def live(self) -> Deployment | None:
        """The current deployment (newest)."""
        return self.deployments[-1] if self.deployments else None

    def scenario_at(self, ms: int) -> Scenario | None:
        """The scenario in force at `ms`."""
        current = None
        for from_ms, sc in self.scenarios:
            if from_ms <= ms:
                current = sc
        return current

    def traffic_start_ms(self) -> int | None:
        """The minute traffic begins: that of the first deployment."""
        return floor_minute(self.deployments[0].created_on_ms) if self.deployments else None


class World:
    """All sandbox state, behind one re-entrant lock (`world.lock`)."""

    def __init__(self, now_ms: int | None = None, seed: int = 0):
        self.lock = threading.RLock()
        self.now_ms = now_ms if now_ms is not None else floor_minute(int(time.time() * 1000))
        self.rng = random.Random(seed)
        self.faults = Faults()
        self.rate_limit = RateLimit()  # the Cloudflare API's 1,200 / 5 min; settings survive a reset
        self.answer_times = AnswerTimes()  # off; replaced whole (immutable), survives a reset
        self.reset_state()

    def reset_state(self) -> None:
        """Forgets accounts, scripts, assets, messages, calls, faults and rate-limit counts
        (keeps the clock, the rate-limit settings and the answer times)."""
        with self.lock:
            self.accounts: dict[str, Account] = {}
            self.scripts: dict[str, Script] = {}
            self.assets: set[tuple[str, str]] = set()
            self.slack: list[dict[str, Any]] = []
            # Slack actions (sandbox/slack.py): the app's interactivity settings, the clicks
            # sent to the gate, the response_urls handed out and what was posted to them.
            self.slack_app: dict[str, Any] | None = None
            self.slack_clicks: list[dict[str, Any]] = []
            self.slack_response_urls: dict[str, dict[str, Any]] = {}
            self.slack_responses: list[dict[str, Any]] = []
            self.calls: list[dict[str, Any]] = []
            self.seq = 0
            self.access_jwks: dict[str, Any] | None = None  # sandbox/access.py
            self.access_fetches = 0
            self.faults.clear()
            self.rate_limit.clear()

    # ---- ids, clock -------------------------------------------------------------

    def new_uuid(self) -> str:
        """A random v4 UUID from the world's seeded RNG (reproducible ids)."""
        with self.lock:
            return str(uuid.UUID(int=self.rng.getrandbits(128), version=4))

    def next_seq(self) -> int:
        """A world-wide sequence number (calls, messages, deployments)."""
        with self.lock:
            self.seq += 1
            return self.seq

    def set_clock(self, now_ms: int) -> None:
        """Moves the clock; never before data already generated."""
        with self.lock:
            horizon = max((s.generated_until_ms for s in self.scripts.values()), default=0)
            if now_ms < horizon:
                raise WorldError(409, "clock_behind_data",
                                 f"points are generated up to {horizon}; the clock cannot go back before that")
            self.now_ms = now_ms

    # ---- accounts, scripts, versions -------------------------------------------

    def add_account(self, account_id: str, api_token: str, analytics_token: str | None,
                    author_email: str, api_token_analytics: bool = True) -> Account:
        """Creates or replaces an account."""
        with self.lock:
            acct = Account(account_id, api_token, analytics_token or api_token, author_email,
                           api_token_analytics)
            self.accounts[account_id] = acct
            return acct

    def account_for_token(self, token: str | None, analytics: bool = False) -> Account | None:
        """The account this token opens (API token, or analytics token for the SQL API)."""
        if not token:
            return None
        with self.lock:
            for a in self.accounts.values():
                if token == (a.analytics_token if analytics else a.api_token) or token == a.api_token:
                    return a
            return None

    def token_holder(self, token: str | None) -> tuple[Account, str] | None:
        """The account a token belongs to and which of its tokens it is (`api` or
        `analytics`), or None for a token no account has."""
        if not token:
            return None
        with self.lock:
            for a in self.accounts.values():
                if token == a.api_token:
                    return a, "api"
                if token == a.analytics_token:
                    return a, "analytics"
            return None

    def script(self, name: str) -> Script:
        """The script, or a 404 WorldError."""
        with self.lock:
            s = self.scripts.get(name)
            if s is None:
                raise WorldError(404, "script_not_found", f"no script {name!r}")
            return s

    def add_script(self, account_id: str, name: str) -> Script:
        """Creates an empty script in an account."""
        with self.lock:
            if account_id not in self.accounts:
                raise WorldError(404, "account_not_found", f"no account {account_id!r}")
            if not SCRIPT_NAME_RE.match(name):
                raise WorldError(400, "bad_script_name", f"invalid script name {name!r}")
            if name in self.scripts:
                raise WorldError(409, "script_exists", f"script {name!r} exists")
            s = Script(name, account_id)
            self.scripts[name] = s
            return s

    def add_version(self, script: Script, spec: dict[str, Any]) -> Version:
        """Uploads a version (like `wrangler versions upload`): no deployment change."""
        with self.lock:
            vid = spec.get("id") or self.new_uuid()
            if not isinstance(vid, str) or any(v.id == vid for s in self.scripts.values() for v in s.versions):
                raise WorldError(409, "version_exists", f"version id {vid!r} is taken")
            number = (script.versions[-1].number + 1) if script.versions else 1
            prev = script.versions[-1] if script.versions else None
            v = Version(
                id=vid, script=script.name, number=number,
                created_on_ms=int(spec.get("created_on_ms", self.now_ms)),
                author_email=spec.get("author_email", "ci@example.com"),
                source=spec.get("source", "wrangler"), tag=spec.get("tag"), message=spec.get("message"),
                bindings=list(spec.get("bindings", prev.bindings if prev else [])),
                handlers=list(spec.get("handlers", prev.handlers if prev else ["fetch"])),
                compatibility_date=spec.get("compatibility_date", prev.compatibility_date if prev else "2026-11-01"),
                etag=f"{self.rng.getrandbits(256):064x}",
                secrets=merge_secrets(prev.secrets if prev else {}, spec.get("secrets")),
                triggered_by=spec.get("triggered_by", "upload"),
            )
            script.versions.append(v)
            return v

    def change_secret(self, script: Script, name: str, value: str | None, *, deploy: bool,
                      author_email: str) -> tuple[Version, Deployment | None]:
        """Sets (or, with `value` None, deletes) one secret: a new version copied from the
        latest with the change (`workers/triggered_by: "secret"`). `deploy` puts it live
        at 100%, as `wrangler secret put` (`PUT .../secrets`) does; without it the version
        is only uploaded, as `wrangler versions secret put` does.

        `deploy` needs the latest version fully deployed: the API answers 10215 otherwise
        (cloudflare/workers-sdk, packages/wrangler/src/secret/index.ts,
        VERSION_NOT_DEPLOYED_ERR_CODE); raised here as WorldError "version_not_deployed".
        """
        with self.lock:
            if not script.versions:
                raise WorldError(409, "no_version", f"{script.name} has no version to copy")
            latest = script.versions[-1]
            live = script.live()
            if deploy and (live is None or live.versions != ((latest.id, 100.0),) or live.cohorts):
                raise WorldError(400, "version_not_deployed",
                                 "the latest version of this Worker is not fully deployed")
            if value is None and name not in latest.secrets:
                raise WorldError(404, "secret_not_found", f"no secret {name!r} on {script.name}")
            v = self.add_version(script, {
                "author_email": author_email, "source": "api" if deploy else "wrangler",
                "bindings": latest.bindings, "handlers": latest.handlers,
                "compatibility_date": latest.compatibility_date,
                "secrets": {name: value}, "triggered_by": "secret"})
            d = None
            if deploy:
                d = self.add_deployment(script, [(v.id, 100.0)], source="api", author_email=author_email,
                                        annotations={"workers/triggered_by": "secret"})
            return v, d

    # ---- deployments ----------------------------------------------------------

    def add_deployment(self, script: Script, versions: list[tuple[str, float]], *, source: str,
                       author_email: str, annotations: dict[str, str],
                       created_on_ms: int | None = None, cohorts: tuple[Cohort, ...] = ()) -> Deployment:
        """Appends a deployment (validated by the caller) at `created_on_ms` (default: now)."""
        with self.lock:
            at = self.now_ms if created_on_ms is None else created_on_ms
            if at < script.generated_until_ms:
                raise WorldError(409, "before_generated_data",
                                 f"points for {script.name} exist up to {script.generated_until_ms}")
            if script.deployments and at < script.deployments[-1].created_on_ms:
                raise WorldError(409, "out_of_order", "a deployment cannot predate the live one")
            d = Deployment(self.new_uuid(), self.next_seq(), at, source, author_email,
                           tuple(versions), dict(annotations), tuple(cohorts))
            script.deployments.append(d)
            return d

    # ---- scenarios -------------------------------------------------------------

    def set_scenario(self, script: Script, scenario: Scenario, from_ms: int | None) -> int:
        """Puts a scenario in force from `from_ms` (default: the first one from the start,
        later ones from now). Returns the effective `from_ms`."""
        with self.lock:
            if from_ms is None:
                from_ms = 0 if not script.scenarios else self.now_ms
            if from_ms < script.generated_until_ms:
                raise WorldError(409, "before_generated_data",
                                 f"points for {script.name} exist up to {script.generated_until_ms}; "
                                 f"a scenario cannot start at {from_ms}")
            script.scenarios = [(f, s) for f, s in script.scenarios if f < from_ms]
            script.scenarios.append((from_ms, scenario))
            return from_ms

    def known_datasets(self, account_id: str) -> set[str]:
        """Datasets the SQL API knows for an account: `mauntic_logs`, scenario datasets and
        Analytics Engine bindings of its versions."""
        with self.lock:
            names = {"mauntic_logs"}
            for s in self.scripts.values():
                if s.account_id != account_id:
                    continue
                names.update(sc.dataset for _, sc in s.scenarios)
                for v in s.versions:
                    names.update(b["dataset"] for b in v.bindings
                                 if isinstance(b, dict) and b.get("type") == "analytics_engine"
                                 and isinstance(b.get("dataset"), str))
            return names

    # ---- logs --------------------------------------------------------------------

    def record_call(self, entry: dict[str, Any]) -> None:
        """Appends to the call log (bounded)."""
        with self.lock:
            entry["seq"] = self.next_seq()
            entry["clock_ms"] = self.now_ms
            self.calls.append(entry)
            if len(self.calls) > CALL_LOG_LIMIT:
                del self.calls[: len(self.calls) - CALL_LOG_LIMIT]
