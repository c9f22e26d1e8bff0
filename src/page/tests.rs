//! Tests of the status page: rollouts driven through the real core (`rollout::step`) in
//! simulated time, then rendered; checks are structural (content, escaping, one SVG
//! polyline per series, nothing that a strict CSP would block).

use super::*;
use crate::clients::cloudflare::ApiBudget;
use crate::controller::StoredRollout;
use crate::notify::Outbox;
use crate::observe::{
    Check, CountsWindow, Fetched, LiveDeployment, MinuteCounts, Observations, PreflightReport,
    Probe, StoredRows, VersionCounts, VersionLatency,
};
use crate::policy::Policy;
use crate::rollout::{
    self, Action, Command, Input, RolloutState, StartRequest, WriteOutcome, MESSAGE_PREFIX,
};
use crate::schedule::Schedule;
use crate::time::Timestamp;

const T0: Timestamp = Timestamp::from_millis(1_795_773_600_000); // 2026-11-27T10:00:00Z
const NEW: &str = "4f1c1b7e-2d3a-4c5b-8e9f-0a1b2c3d4e5f";
const OLD: &str = "0a1b2c3d-4e5f-4a5b-8c9d-0e1f2a3b4c5d";

fn at(minutes: i64) -> Timestamp {
    T0.plus_minutes(minutes)
}

#[derive(Clone, Copy)]
struct Traffic {
    rps: f64,
    new_errors: f64,
    old_errors: f64,
}

const HEALTHY: Traffic = Traffic {
    rps: 100.0,
    new_errors: 0.01,
    old_errors: 0.01,
};

const BROKEN: Traffic = Traffic {
    rps: 100.0,
    new_errors: 0.12,
    old_errors: 0.01,
};

/// One rollout driven through the core, keeping every audit event it records.
struct World {
    state: RolloutState,
    events: Vec<AuditEvent>,
    now: Timestamp,
}

impl World {
    /// A rollout of `script` whose pre-flight passed and whose 10% split is live at T0.
    fn ramping(script: &str, message: Option<&str>, dry_run: bool) -> World {
        let request = StartRequest {
            script: script.into(),
            version_id: NEW.into(),
            baseline_version_id: OLD.into(),
            git_sha: Some("9fceb02d0ae598e95dc970b74767f19372d61af8".into()),
            schedule: Schedule::default(),
            dry_run,
            message: message.map(str::to_string),
        };
        let (state, actions) = rollout::start(request, Policy::default(), T0);
        let mut world = World {
            state,
            events: Vec::new(),
            now: T0,
        };
        world.absorb(actions);
        let pass = Check::Pass {
            detail: "ok".into(),
        };
        world.apply(
            Input::Preflight(PreflightReport {
                version_exists: pass.clone(),
                healthz: pass.clone(),
                asset: pass.clone(),
                bindings: pass,
            }),
            T0,
        );
        world
    }

    /// Applies `input` at `now`; deployment reads answer with the last confirmed split and
    /// writes are confirmed at once, as a healthy API would.
    fn apply(&mut self, input: Input, now: Timestamp) {
        self.now = now;
        let (state, actions) = rollout::step(self.state.clone(), input, now);
        self.state = state;
        self.absorb(actions);
    }

    fn absorb(&mut self, actions: Vec<Action>) {
        for action in actions {
            match action {
                Action::RecordEvent(event) => self.events.push(event),
                Action::SetDeployment { write, .. } => {
                    let outcome = WriteOutcome::Confirmed {
                        deployment_id: None,
                    };
                    self.apply(Input::DeploymentWrite { write, outcome }, self.now);
                }
                Action::ReadDeployment { .. } => {
                    let read = Fetched::Ok(LiveDeployment {
                        versions: self.state.deployment.live.clone(),
                        message: Some(format!("{MESSAGE_PREFIX} test")),
                        ..LiveDeployment::default()
                    });
                    self.apply(Input::LiveRead(read), self.now);
                }
                _ => {}
            }
        }
    }

    /// Ticks every minute in `minutes` with what `traffic` would show under the live split.
    fn run(&mut self, minutes: std::ops::RangeInclusive<i64>, traffic: Traffic) {
        for m in minutes {
            let obs = self.observe(at(m), traffic);
            self.apply(Input::Tick(obs), at(m));
        }
    }

    fn observe(&self, now: Timestamp, traffic: Traffic) -> Observations {
        let s = &self.state;
        let plan = rollout::plan(s, now);
        let live = s.deployment.live.clone();
        let share = live
            .iter()
            .find(|v| v.version_id == s.version_id)
            .map_or(0.0, |v| v.percent / 100.0);
        let per_minute = traffic.rps * 60.0;
        let version = |requests: f64, rate: f64| VersionCounts {
            requests,
            errors: requests * rate,
            slow: requests * 0.02,
            very_slow: 0.0,
            approaching: requests * 0.2,
            stored: StoredRows::unsampled(requests, requests * rate, requests * 0.02),
        };
        let counts = plan.counts.map(|q| {
            let n = q.to.minute_index() - q.from.minute_index();
            Fetched::Ok(CountsWindow {
                from: q.from,
                to: q.to,
                minutes: (0..n)
                    .map(|i| MinuteCounts {
                        minute: q.from.plus_minutes(i),
                        new: version(per_minute * share, traffic.new_errors),
                        old: version(per_minute * (1.0 - share), traffic.old_errors),
                        sample_interval: 1.0,
                    })
                    .collect(),
                new_latency: VersionLatency {
                    requests: per_minute * share * 5.0,
                    p95_ms: Some(120.0),
                },
                old_latency: VersionLatency {
                    requests: per_minute * (1.0 - share) * 5.0,
                    p95_ms: Some(120.0),
                },
            })
        });
        Observations {
            deployment: plan.read_deployment.then(|| {
                Fetched::Ok(LiveDeployment {
                    versions: live,
                    message: Some(format!("{MESSAGE_PREFIX} test")),
                    ..LiveDeployment::default()
                })
            }),
            healthz: plan.probe_healthz.then_some(Probe::Ok),
            counts,
            queue: None,
            // Before the rollout the stable version served everything at its own rate.
            history: plan.history.map(|q| {
                let old = version(per_minute, traffic.old_errors);
                Fetched::Ok(CountsWindow::steady(&q, VersionCounts::default(), old))
            }),
        }
    }

    fn view(&self) -> RolloutView {
        let stored = StoredRollout {
            schema: crate::rollout::schema::CURRENT,
            state: self.state.clone(),
            outbox: Outbox::default(),
            budget: ApiBudget::default(),
            last_now: self.now,
            upgraded_from: None,
        };
        RolloutView::of(&stored, self.now)
    }

    fn entry(&self) -> (RolloutView, Vec<AuditEvent>) {
        (self.view(), self.events.clone())
    }

    fn page(&self) -> String {
        render_rollout("production", &self.view(), &self.events, self.now)
    }
}

fn occurrences(haystack: &str, needle: &str) -> usize {
    haystack.matches(needle).count()
}

#[test]
fn empty_index_says_no_rollouts_yet() {
    let html = render_index("production", &[], T0);
    assert!(html.contains("No rollouts yet"), "{html}");
    assert!(html.contains("0 active · 0 recent"));
    assert!(html.contains("rollout-gate · production"));
}

#[test]
fn index_shows_phase_split_time_on_step_and_verdict_numbers() {
    let mut w = World::ramping("mauntic-gateway", None, false);
    w.run(1..=5, HEALTHY);
    let html = render_index("production", &[w.entry()], w.now);
    assert!(
        html.contains("<span class=\"badge info\">ramping</span>"),
        "{html}"
    );
    assert!(html.contains("step</dt><dd>1 of 3 at 10%"));
    assert!(html.contains("new <code class=\"id\""));
    assert!(html.contains("10%") && html.contains("90%"));
    assert!(html.contains("on step</dt><dd>5 min"));
    // Minutes 0..3 counted at minute 5 (two minutes of ingestion lag): 600 new-version
    // requests a minute, 1% of them 5xx; the stable version serves the other 5400.
    assert!(html.contains("new 18/1800 (1.00%)"), "{html}");
    assert!(html.contains("old 162/16200 (1.00%)"));
    assert!(html.contains("e-value "));
    // Looks at minutes 3, 4 and 5. The stable version served 60 5xx a minute before the
    // rollout, over half the looks' raw limit of 30, so they count minutes scaled for its
    // burstiness (none here beyond the estimate's margin): 180 events become 173, and the
    // line gives the divisor that turns them back.
    assert!(
        html.contains(
            "look during step 1 (look 3): 17 of 173 burst-scaled (÷ 1.04) bad events from the \
             new version, 17.3 expected at ratio 1"
        ),
        "{html}"
    );
    assert!(html.contains("<td>/healthz</td><td class=\"ok\">healthy</td>"));
    assert!(html.contains("hold: 5 min of dwell left"));
    // The history look comes at the end of the step's dwell, against 180 minutes of the
    // stable version before the rollout (too many 5xx a minute for it here).
    w.run(6..=10, HEALTHY);
    let html = render_index("production", &[w.entry()], w.now);
    assert!(
        html.contains(
            "history look at the end of step 1: skipped, 60 bad events a minute (limit 30)"
        ),
        "{html}"
    );
    assert!(html.contains("href=\"/rollouts/mauntic-gateway\""));
    // Very slow requests have their own looks (none served here), and the bake its own.
    assert!(
        html.contains("very slow requests: look at the end of step 1: no bad events to test"),
        "{html}"
    );
    // So do requests approaching the ceiling (a fifth of all here, ~1,200 a minute),
    // thinned to 200 expected a minute (new-version requests counted at the null's 1.1):
    // 8 minutes, about 1,600 events.
    assert!(
        html.contains(
            "approaching the ceiling: look at the end of step 1: 158 of 1584 burst-scaled (÷ \
             6.06) bad events from the new version, 172.5 expected at ratio 1.1"
        ),
        "{html}"
    );
    // At 100% the bake looks count 60 5xx a minute too, burst-scaled as the split looks
    // are, on both sides: the sum of the bake's minutes and of the stable version's over
    // the split, each by the inflation of a sum over its minutes.
    w.run(11..=25, HEALTHY);
    let html = render_index("production", &[w.entry()], w.now);
    assert!(
        html.contains(
            "bake look 2: 82/8286 (0.99%) at 100%, burst-scaled (÷ 1.45) against 444/44352 \
             (1.00%) over the split, burst-scaled too"
        ),
        "{html}"
    );
}

#[test]
fn a_page_of_a_long_listing_links_its_filters_and_the_next_page() {
    let mut active = World::ramping("mauntic-gateway", None, false);
    active.run(1..=3, HEALTHY);
    let query = crate::api::parse_list_query(Some("phase=ramping&script=m%26x"), 20).unwrap();
    let page = IndexPage {
        query,
        matching: 200,
        next_cursor: Some("mauntic-gateway".into()),
    };
    let html = render_index_page("production", &[active.entry()], Some(&page), at(3));
    assert!(html.contains("200 matching"), "{html}");
    assert!(
        html.contains("<strong>ramping</strong>"),
        "the current filter is marked"
    );
    assert!(html.contains("<a href=\"/?phase=rolled_back&amp;limit=20\">rolled back</a>"));
    assert!(
        html.contains(
            "<a href=\"/?phase=ramping&amp;script=m%26x&amp;limit=20&amp;cursor=mauntic-gateway\">next page →</a>"
        ),
        "{html}"
    );
    assert!(
        !html.contains("<form"),
        "the page posts nothing (CSP form-action 'none')"
    );
}

#[test]
fn a_filter_that_matches_nothing_says_so_rather_than_no_rollouts_yet() {
    let query = crate::api::parse_list_query(Some("phase=paused"), 20).unwrap();
    let page = IndexPage {
        query,
        matching: 0,
        next_cursor: None,
    };
    let html = render_index_page("production", &[], Some(&page), T0);
    assert!(html.contains("No rollouts match."), "{html}");
    assert!(!html.contains("No rollouts yet"));
    assert!(!html.contains("next page"));
}

#[test]
fn index_lists_active_rollouts_before_recent_ones() {
    let mut done = World::ramping("tenant-cache", None, false);
    done.run(1..=40, HEALTHY);
    assert_eq!(done.view().phase_name, "completed");
    let mut active = World::ramping("mauntic-gateway", None, false);
    active.run(1..=3, HEALTHY);
    let html = render_index("production", &[done.entry(), active.entry()], at(40));
    assert!(html.contains("1 active · 1 recent"));
    let active_at = html.find("<h2>Active</h2>").unwrap();
    let recent_at = html.find("<h2>Recent</h2>").unwrap();
    let gateway = html.find(">mauntic-gateway</a>").unwrap();
    let cache = html.find(">tenant-cache</a>").unwrap();
    assert!(active_at < gateway && gateway < recent_at && recent_at < cache);
    assert!(html.contains("Completed: the new version serves 100% and baked healthy."));
}

#[test]
fn rollout_page_draws_a_polyline_per_series() {
    let mut w = World::ramping("mauntic-gateway", None, false);
    w.run(1..=15, HEALTHY);
    let html = w.page();
    assert_eq!(occurrences(&html, "<polyline class=\"s-live\""), 1);
    assert_eq!(occurrences(&html, "<polyline class=\"s-intended\""), 1);
    // 5xx, slow-request and p95 charts each draw both versions.
    assert_eq!(occurrences(&html, "<polyline class=\"s-new\""), 3);
    assert_eq!(occurrences(&html, "<polyline class=\"s-old\""), 3);
    assert!(html.contains("5xx rate per version"));
    assert!(html.contains("p95 latency per version"));
    // The step to 50% is a decision point on every chart and in the list under them.
    assert!(html.contains("step 2 started (50%)"));
    assert!(occurrences(&html, "<g class=\"mark info\">") >= 3);
}

#[test]
fn timeline_follows_the_split_through_every_step() {
    let mut w = World::ramping("mauntic-gateway", None, false);
    w.run(1..=40, HEALTHY);
    let tl = Timeline::read(&w.view(), &w.events, w.now);
    let live: Vec<f64> = tl.live.iter().map(|p| p.value).collect();
    assert_eq!(live, [0.0, 10.0, 50.0, 100.0]);
    assert!(tl.errors_new.iter().all(|p| (p.value - 0.01).abs() < 1e-9));
    // At 100% the stable version drops out of the trailing window.
    assert!(!tl.errors_old.is_empty() && tl.errors_old.len() < tl.errors_new.len());
    assert_eq!(tl.marks.last().map(|m| m.name.as_str()), Some("completed"));
}

#[test]
fn rolled_back_release_explains_why_in_words_with_numbers() {
    let mut w = World::ramping("mauntic-gateway", None, false);
    w.run(1..=12, BROKEN);
    assert_eq!(w.view().phase_name, "rolled back");
    let html = w.page();
    assert!(html.contains("<span class=\"badge bad\">rolled back</span>"));
    assert!(html.contains("Rolled back: the stable version serves 100% again."));
    let Phase::RolledBack {
        cause: crate::rollout::RollbackCause::Unhealthy { reasons },
    } = &w.view().phase
    else {
        panic!("not an unhealthy rollback: {:?}", w.view().phase);
    };
    // The reason is spelled out with its numbers, escaped like everything else.
    assert!(html.contains(&html::esc(&reasons[0].detail)), "{html}");
    assert!(html.contains("<span class=\"bad\">rolled back</span>"));
    let tl = Timeline::read(&w.view(), &w.events, w.now);
    assert_eq!(tl.live.last().map(|p| p.value), Some(0.0));
    assert!(tl.errors_new.iter().any(|p| p.value > 0.1));
    // The 0% is drawn as a level after the rollback (not only a drop at the axis's edge),
    // and the rollback is a numbered mark at that moment.
    let back = tl.live.last().unwrap().at;
    assert!(
        tl.to.millis() - back.millis() >= 60_000,
        "{:?} {:?}",
        tl.to,
        back
    );
    assert!(tl
        .marks
        .iter()
        .any(|m| m.at == back && m.name == "rolled back"));
    assert!(html.contains("The rollout is over; no command applies."));
}

#[test]
fn an_aborted_rollouts_timeline_ends_at_zero_after_the_marked_abort() {
    let mut w = World::ramping("mauntic-gateway", None, false);
    w.run(1..=14, HEALTHY);
    w.apply(
        Input::Operator {
            command: Command::Abort,
            by: "alice".into(),
            why: Some("wrong build".into()),
        },
        at(15),
    );
    let tl = Timeline::read(&w.view(), &w.events, w.now);
    let live: Vec<f64> = tl.live.iter().map(|p| p.value).collect();
    assert_eq!(live.last(), Some(&0.0), "{live:?}");
    assert!(live.contains(&50.0), "it was at 50% before: {live:?}");
    let aborted = tl.live.last().unwrap().at;
    assert!(tl.to.millis() - aborted.millis() >= 60_000);
    assert!(tl
        .marks
        .iter()
        .any(|m| m.at == aborted && m.name == "aborted"));
}

#[test]
fn ci_message_with_a_script_tag_stays_inert() {
    let evil = "<script>alert('pwned')</script><img src=x onerror=alert(1)>";
    let mut w = World::ramping("mauntic-gateway", Some(evil), false);
    w.run(1..=2, HEALTHY);
    for html in [w.page(), render_index("<b>prod</b>", &[w.entry()], w.now)] {
        assert!(html.contains("&lt;script&gt;alert(&#39;pwned&#39;)&lt;/script&gt;"));
        assert!(html.contains("&lt;img src=x onerror=alert(1)&gt;"));
        let lower = html.to_ascii_lowercase();
        assert!(!lower.contains("<script"), "a script element got through");
        assert!(!lower.contains("<img"), "an img element got through");
        assert!(!lower.contains("<b>prod"));
    }
}

#[test]
fn paused_rollout_says_why_and_offers_only_the_commands_that_apply() {
    let mut w = World::ramping("mauntic-gateway", None, false);
    w.run(1..=3, HEALTHY);
    w.apply(
        Input::Operator {
            command: Command::Pause,
            by: "alice".into(),
            why: Some("db migration running".into()),
        },
        at(4),
    );
    let html = w.page();
    assert!(html.contains("Paused at step 1: paused by alice: db migration running."));
    assert!(html.contains("/v1/rollouts/mauntic-gateway/resume"));
    assert!(html.contains("/v1/rollouts/mauntic-gateway/abort"));
    assert!(!html.contains("/v1/rollouts/mauntic-gateway/pause\""));
    // The script is the full Worker name: `--env` would make wrangler tail
    // `mauntic-gateway-production`, another Worker.
    assert!(html.contains("<pre>wrangler tail mauntic-gateway</pre>"));
    assert!(!html.contains("--env"));
}

#[test]
fn drift_names_who_changed_the_deployment() {
    let mut w = World::ramping("mauntic-gateway", None, false);
    w.run(1..=3, HEALTHY);
    let mut obs = w.observe(at(4), HEALTHY);
    obs.deployment = Some(Fetched::Ok(LiveDeployment {
        deployment_id: Some("d-2".into()),
        versions: vec![
            VersionShare {
                version_id: NEW.into(),
                percent: 30.0,
            },
            VersionShare {
                version_id: OLD.into(),
                percent: 70.0,
            },
        ],
        author_email: Some("bob@zeluto.com".into()),
        message: Some("hotfix by hand".into()),
        triggered_by: Some("upload".into()),
        created_on: None,
        cohorts: Vec::new(),
    }));
    w.apply(Input::Tick(obs), at(4));
    let html = w.page();
    assert!(html.contains("<span class=\"badge warn\">drifted</span>"));
    assert!(html.contains("by: bob@zeluto.com"));
    assert!(html.contains("message: hotfix by hand"));
    let tl = Timeline::read(&w.view(), &w.events, w.now);
    assert_eq!(tl.live.last().map(|p| p.value), Some(30.0));
}

#[test]
fn failed_metric_queries_are_flagged_on_the_chart() {
    let mut w = World::ramping("mauntic-gateway", None, false);
    w.run(1..=3, HEALTHY);
    let mut obs = w.observe(at(4), HEALTHY);
    obs.counts = Some(Fetched::Failed {
        why: "SQL API answered 503".into(),
    });
    w.apply(Input::Tick(obs), at(4));
    let html = w.page();
    assert!(html.contains("<rect class=\"note warn\""));
    assert!(html.contains("source failed: SQL API answered 503"));
}

#[test]
fn dry_run_rollouts_are_marked() {
    let w = World::ramping("mauntic-gateway", None, true);
    assert!(w
        .page()
        .contains("<span class=\"badge warn\">dry run</span>"));
}

#[test]
fn pages_load_nothing_run_nothing_and_refresh_themselves() {
    let mut w = World::ramping("mauntic-gateway", None, false);
    w.run(1..=12, BROKEN);
    for html in [w.page(), render_index("production", &[w.entry()], w.now)] {
        let lower = html.to_ascii_lowercase();
        for forbidden in [
            "<script", "<link", "<iframe", "src=", "url(", "@import", " on",
        ] {
            let found = match forbidden {
                // Attribute handlers only: " on" followed by letters and "=".
                " on" => lower.match_indices(" on").any(|(i, _)| {
                    lower[i + 3..].split('=').next().is_some_and(|a| {
                        !a.is_empty() && a.len() < 16 && a.bytes().all(|b| b.is_ascii_lowercase())
                    })
                }),
                _ => lower.contains(forbidden),
            };
            assert!(!found, "page contains {forbidden:?}");
        }
        assert!(html.starts_with("<!doctype html>"));
        assert!(html.contains("<meta http-equiv=\"refresh\" content=\"30\">"));
        assert!(html
            .contains("<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">"));
        // The only URL is the SVG namespace, which is a name, not a fetch.
        let urls = lower.matches("http://").count() + lower.matches("https://").count();
        assert_eq!(
            urls,
            lower
                .matches("xmlns=\"http://www.w3.org/2000/svg\"")
                .count()
        );
    }
}

#[test]
fn csp_blocks_scripts_and_every_remote_load() {
    assert!(CSP.starts_with("default-src 'none';"));
    assert!(CSP.contains("style-src 'unsafe-inline'"));
    assert!(CSP.contains("img-src data:"));
    assert!(!CSP.contains("script-src"));
    let names: Vec<&str> = HEADERS.iter().map(|(n, _)| *n).collect();
    assert!(names.contains(&"content-security-policy"));
    assert!(HEADERS.iter().all(|(n, _)| *n == n.to_ascii_lowercase()));
}

/// What a full index page costs to render: 20 rollouts (the page's size), each 25 minutes
/// in with its 60 newest audit events, natively. Not a test of a bound (timings are noisy
/// here): `cargo test --release --lib -- --ignored index_render_cost --nocapture`.
#[test]
#[ignore]
fn index_render_cost() {
    let mut w = World::ramping("mauntic-gateway", None, false);
    w.run(1..=25, HEALTHY);
    let entry = w.entry();
    let latest = entry.1.len().saturating_sub(60);
    let one = (entry.0.clone(), entry.1[latest..].to_vec());
    let page: Vec<_> = (0..crate::api::INDEX_PAGE).map(|_| one.clone()).collect();
    let runs = 200;
    let started = std::time::Instant::now();
    let mut bytes = 0;
    for _ in 0..runs {
        bytes = render_index("production", &page, w.now).len();
    }
    let each = started.elapsed() / runs;
    println!(
        "index of {} rollouts: {each:?} per render, {bytes} bytes",
        page.len()
    );
}
