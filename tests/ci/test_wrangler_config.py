"""wrangler.toml's deployed environments, as `wrangler deploy --env …` reads them: vars are
not inherited by environments, and wrangler 4.86 warns for each top-level var that an
environment lacks ("exists at the top level, but not on env.production.vars"). A gate
deployed without STATUS_PAGE_URL posts Slack messages with no link to its page. Checked on
the parsed file (cheap); `npx wrangler deploy --dry-run --env production --outdir /tmp/x`
shows the same with no warning (it needs the release build, so it is not run here)."""

import tomllib
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
CONFIG = tomllib.loads((ROOT / "wrangler.toml").read_text())
ENVIRONMENTS = sorted(CONFIG["env"])


def test_there_are_deployed_environments():
    assert ENVIRONMENTS == ["preview", "production"]


@pytest.mark.parametrize("env", ENVIRONMENTS)
def test_every_top_level_var_is_set_in_each_environment(env):
    top = set(CONFIG["vars"])
    mine = set(CONFIG["env"][env].get("vars", {}))
    assert top - mine == set(), f"env.{env}.vars lacks {sorted(top - mine)}"
    assert "STATUS_PAGE_URL" in mine


@pytest.mark.parametrize("env", ENVIRONMENTS)
def test_deployed_gates_talk_to_the_real_api_and_link_their_own_page(env):
    vars_ = CONFIG["env"][env]["vars"]
    assert vars_["CLOUDFLARE_API_BASE_URL"] == "https://api.cloudflare.com/client/v4"
    assert vars_["STATUS_PAGE_URL"].startswith("https://rollout-gate-" + env + ".")
    # {script} is the full Worker name CI sends (`<name>-<env>` with --env), never suffixed again.
    assert vars_["TARGET_BASE_URL"] == "https://{script}.zeluto.workers.dev"
