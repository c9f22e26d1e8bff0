//! Controller scenarios over a fake outside world: the deploy hook, ticks over simulated
//! minutes, failures injected on chosen calls, and what reaches Cloudflare and Slack.

#[path = "controller/world.rs"]
mod world;

use rollout_gate::api::{parse_deploy_hook, DeployHook};
use rollout_gate::clients::http::Method;
use rollout_gate::config::{AuditRetention, GateConfig, Secrets};
use rollout_gate::controller::Controller;
use rollout_gate::policy::BudgetRow;
use rollout_gate::rollout::{Command, Phase};
use world::{block_on, config, minute, secrets, MemStore, World, NEW, OLD, OTHER, SCRIPT};

fn hook(version: &str, baseline: Option<&str>) -> DeployHook {
    let baseline = baseline.map_or(String::new(), |b| {
        format!(r#","baseline_version_id":"{b}""#)
    });
    let body = format!(
        r#"{{"script":"{SCRIPT}","version_id":"{version}","git_sha":"deadbeef"{baseline}}}"#
    );
    parse_deploy_hook(Some("application/json"), body.as_bytes()).expect("valid hook")
}

struct Harness {
    world: World,
    store: MemStore,
    config: GateConfig,
    secrets: Secrets,
}

impl Harness {
    fn new() -> Self {
        Harness {
            world: World::new(),
            store: MemStore::default(),
            config: config(),
            secrets: secrets(),
        }
    }

    fn ctl(&self) -> Controller<'_, World, MemStore> {
        Controller::new(&self.world, &self.store, &self.config, &self.secrets)
    }

    fn phase(&self) -> Phase {
        self.store
            .rollout
            .borrow()
            .as_ref()
            .expect("a rollout")
            .state
            .phase
            .clone()
    }

    /// Ticks minutes `from..=to`, stopping early once the rollout is terminal.
    fn tick_through(&self, from: i64, to: i64) {
        for m in from..=to {
            block_on(self.ctl().tick(minute(m))).expect("tick");
            if self.phase().is_terminal() {
                break;
            }
        }
    }
}

#[test]
fn the_deploy_hook_runs_preflight_then_moves_traffic_to_the_first_step() {
    let h = Harness::new();
    let started = block_on(h.ctl().start(hook(NEW, None), minute(0))).expect("started");
    assert!(started.created);
    assert_eq!(
        started.rollout.state.baseline_version_id, OLD,
        "read from the live deployment"
    );
    assert_eq!(h.phase(), Phase::Ramping { step: 0 });
    // The 0% deployment lets the override reach the version; then the first step.
    assert_eq!(h.world.written_percents(), [0.0, 10.0]);
    assert_eq!(h.world.count(Some(Method::Get), "/healthz"), 1);
    assert_eq!(
        h.world
            .count(Some(Method::Get), "/assets/styles/deadbeef.css"),
        1
    );
    assert!(
        !h.world.slack.borrow().is_empty(),
        "Slack heard about the start"
    );
}

#[test]
fn the_same_hook_twice_starts_one_rollout() {
    let h = Harness::new();
    block_on(h.ctl().start(hook(NEW, Some(OLD)), minute(0))).expect("first");
    let writes = h.world.written_percents().len();
    let again = block_on(h.ctl().start(hook(NEW, Some(OLD)), minute(0))).expect("second");
    assert!(!again.created);
    assert_eq!(h.world.written_percents().len(), writes, "no second write");
}

#[test]
fn a_different_version_while_one_is_active_is_a_409_naming_it() {
    let h = Harness::new();
    block_on(h.ctl().start(hook(NEW, Some(OLD)), minute(0))).expect("first");
    let err = block_on(h.ctl().start(hook(OTHER, Some(OLD)), minute(1))).unwrap_err();
    assert_eq!(err.status(), 409);
    assert!(err.to_string().contains(NEW), "{err}");
}

#[test]
fn an_unknown_script_is_refused_with_cloudflares_error() {
    let h = Harness::new();
    let body = format!(r#"{{"script":"no-such-worker","version_id":"{NEW}"}}"#);
    let hook = parse_deploy_hook(Some("application/json"), body.as_bytes()).unwrap();
    let err = block_on(h.ctl().start(hook, minute(0))).unwrap_err();
    assert_eq!((err.status(), err.code()), (422, "unknown_script"));
    assert!(err.to_string().contains("does not exist"), "{err}");
    assert!(
        h.store.rollout.borrow().is_none(),
        "bad input never changes state"
    );
}

#[test]
fn an_unknown_version_fails_preflight_and_moves_no_traffic() {
    let h = Harness::new();
    let ghost = "44444444-4444-4444-8444-444444444444";
    block_on(h.ctl().start(hook(ghost, Some(OLD)), minute(0))).expect("accepted");
    assert!(matches!(h.phase(), Phase::Failed { .. }), "{:?}", h.phase());
    assert!(h.world.written_percents().is_empty());
}

#[test]
fn a_failing_canary_healthz_refuses_the_rollout_in_preflight() {
    let h = Harness::new();
    h.world.healthz_status.set(503);
    block_on(h.ctl().start(hook(NEW, Some(OLD)), minute(0))).expect("accepted");
    assert!(matches!(h.phase(), Phase::Failed { .. }), "{:?}", h.phase());
    assert_eq!(
        h.world.written_percents(),
        [0.0],
        "only the 0% probe deployment"
    );
}

#[test]
fn a_healthy_release_goes_ten_fifty_hundred_and_completes() {
    let h = Harness::new();
    block_on(h.ctl().start(hook(NEW, Some(OLD)), minute(0))).expect("started");
    h.tick_through(1, 90);
    assert_eq!(h.phase(), Phase::Completed);
    assert_eq!(h.world.written_percents(), [0.0, 10.0, 50.0, 100.0]);
}

#[test]
fn new_stalls_among_as_many_slow_requests_roll_back_through_the_very_slow_looks() {
    let h = Harness::new();
    // Both versions 5% over the p95 ceiling; the new one has 0.5% of requests over 1 s, the
    // old none: the slow-request test sees a ratio of 1, the very slow looks 3 against 0 a
    // minute in the first step.
    h.world.slow_rates.set((0.05, 0.05));
    h.world.very_slow_rates.set((0.005, 0.0));
    rolls_back_within_the_first_step_saying(&h, "very slow requests (over 1000 ms)");
}

/// Checks that the rollout rolled back and returns its "Rolling back" Slack message.
fn rolled_back_saying(h: &Harness) -> String {
    assert!(
        matches!(h.phase(), Phase::RolledBack { .. }),
        "{:?}",
        h.phase()
    );
    let slack = h.world.slack.borrow();
    slack
        .iter()
        .map(|m| m.to_string())
        .find(|t| t.contains("Rolling back"))
        .expect("a rollback message")
}

/// Starts a rollout, ticks through the first step's ten minutes and checks that it rolled
/// back from 10% with a Slack message naming `why`.
fn rolls_back_within_the_first_step_saying(h: &Harness, why: &str) {
    block_on(h.ctl().start(hook(NEW, Some(OLD)), minute(0))).expect("started");
    h.tick_through(1, 10);
    let rolling_back = rolled_back_saying(h);
    assert_eq!(h.world.written_percents(), [0.0, 10.0, 0.0]);
    assert!(rolling_back.contains(why), "{rolling_back}");
}

#[test]
fn a_latency_shift_short_of_the_ceiling_rolls_back_through_the_approach_looks() {
    let h = Harness::new();
    // Nothing over the 250 ms ceiling in either version, but a third of the new version's
    // requests over 125 ms against a fifth of the old one's (before the rollout too, which
    // is where the looks read the old version's burstiness: none here).
    h.world.approach_rates.set((0.33, 0.2));
    rolls_back_within_the_first_step_saying(&h, "requests approaching the ceiling (over 125 ms)");
}

#[test]
fn a_doubling_of_frequent_5xx_rolls_back_in_the_first_step_through_burst_scaled_looks() {
    let h = Harness::new();
    // 1% 5xx at 100 rps is 60 a minute, over the exact looks' raw limit of 30; the stable
    // version's minutes before the rollout set the scaling that lets them count anyway.
    h.world.error_rates.set((0.02, 0.01));
    rolls_back_within_the_first_step_saying(&h, "burst-scaled (÷ ");
}

#[test]
fn a_five_fold_error_regression_rolls_back_to_stable() {
    let h = Harness::new();
    h.world.error_rates.set((0.005, 0.001));
    block_on(h.ctl().start(hook(NEW, Some(OLD)), minute(0))).expect("started");
    h.tick_through(1, 30);
    assert!(
        matches!(h.phase(), Phase::RolledBack { .. }),
        "{:?}",
        h.phase()
    );
    assert_eq!(*h.world.live.borrow(), [(OLD.to_string(), 100.0)]);
    let slack = h.world.slack.borrow();
    let texts: Vec<String> = slack.iter().map(|m| m.to_string()).collect();
    let rolling_back = texts
        .iter()
        .find(|t| t.contains("Rolling back"))
        .expect("a rollback message");
    // ×5 at 100 rps: an interim look in the first step catches it (4 minutes counted);
    // the message carries its counts and p-value and the e-process's numbers beside them.
    for number in [
        "worse than old in 5xx",
        "12 of 32 bad events from the new version",
        "; p = ",
        "e-value",
        "new 12/2400",
        "old 20/21600",
    ] {
        assert!(
            rolling_back.contains(number),
            "{number} missing from {rolling_back}"
        );
    }
    assert!(
        texts.iter().any(|t| t.contains("Rolled back")),
        "and one when stable serves 100%"
    );
}

#[test]
fn a_failed_deployment_write_stays_pending_and_is_retried() {
    let h = Harness::new();
    block_on(h.ctl().start(hook(NEW, Some(OLD)), minute(0))).expect("started");
    // Fail every write for a while; the gate must keep the intent and retry.
    for _ in 0..3 {
        h.world
            .fail_next("/deployments", Some(Method::Post), 503, "upstream error");
    }
    h.tick_through(1, 90);
    assert_eq!(h.phase(), Phase::Completed);
    assert_eq!(h.world.written_percents(), [0.0, 10.0, 50.0, 100.0]);
    let actions = h.store.actions.borrow();
    assert!(
        actions.iter().any(|a| a.outcome.contains("503")),
        "failures are in the action log"
    );
}

#[test]
fn each_tick_stays_within_the_subrequest_budget() {
    let h = Harness::new();
    block_on(h.ctl().start(hook(NEW, Some(OLD)), minute(0))).expect("started");
    for m in 1..=8 {
        let before = h.world.calls.borrow().len();
        let report = block_on(h.ctl().tick(minute(m))).expect("tick");
        let calls = &h.world.calls.borrow()[before..];
        let reads = |part: &str| {
            calls
                .iter()
                .filter(|c| c.url.contains(part) && c.method == Method::Get)
                .count()
        };
        assert!(reads("/deployments") <= 1, "minute {m}");
        assert!(
            calls.iter().filter(|c| c.url.ends_with("/sql")).count() <= 1,
            "minute {m}"
        );
        assert!(reads("/healthz") <= 1, "minute {m}");
        assert_eq!(
            report.subrequests as usize,
            calls.len(),
            "the report counts every call"
        );
    }
}

#[test]
fn drift_pauses_the_rollout_and_the_gate_stops_writing() {
    let h = Harness::new();
    block_on(h.ctl().start(hook(NEW, Some(OLD)), minute(0))).expect("started");
    h.tick_through(1, 2);
    // Someone runs `wrangler deploy` of another version at 100%... of ours at 30%.
    *h.world.live.borrow_mut() = vec![(NEW.into(), 30.0), (OLD.into(), 70.0)];
    let writes = h.world.written_percents().len();
    h.tick_through(3, 40);
    assert!(
        matches!(h.phase(), Phase::Drifted { .. }),
        "{:?}",
        h.phase()
    );
    assert_eq!(
        h.world.written_percents().len(),
        writes,
        "the gate never fights a human"
    );
}

/// The calls made since `before`: method and URL tail.
fn calls_since(h: &Harness, before: usize) -> Vec<(Method, String)> {
    h.world.calls.borrow()[before..]
        .iter()
        .map(|c| (c.method, c.url.rsplit('/').next().unwrap_or("").to_string()))
        .collect()
}

#[test]
fn a_quiet_rollout_reads_its_deployment_once_in_five_ticks() {
    let h = Harness::new();
    block_on(h.ctl().start(hook(NEW, Some(OLD)), minute(0))).expect("started");
    // The first split went live at minute 0; the dwell runs to minute 10, quiet.
    let before = h.world.calls.borrow().len();
    h.tick_through(1, 5);
    let reads = calls_since(&h, before)
        .iter()
        .filter(|(m, url)| *m == Method::Get && url == "deployments")
        .count();
    assert_eq!(
        reads, 1,
        "one read in five minutes (five when it read every tick)"
    );
}

#[test]
fn an_operator_abort_reads_the_live_deployment_before_writing_it_back() {
    let h = Harness::new();
    block_on(h.ctl().start(hook(NEW, Some(OLD)), minute(0))).expect("started");
    h.tick_through(1, 3);
    let before = h.world.calls.borrow().len();
    block_on(
        h.ctl()
            .command(Command::Abort, "ana".into(), None, minute(4)),
    )
    .expect("abort");
    let deployments: Vec<Method> = calls_since(&h, before)
        .into_iter()
        .filter(|(_, url)| url == "deployments")
        .map(|(m, _)| m)
        .collect();
    assert_eq!(deployments, [Method::Get, Method::Post], "read, then write");
    assert!(
        matches!(h.phase(), Phase::Aborted { .. }),
        "{:?}",
        h.phase()
    );
    let actions = h.store.actions.borrow();
    assert!(actions
        .iter()
        .any(|a| a.action.starts_with("read deployment before write")));
}

#[test]
fn a_read_that_fails_before_a_write_holds_it_until_the_next_tick_reads() {
    let h = Harness::new();
    block_on(h.ctl().start(hook(NEW, Some(OLD)), minute(0))).expect("started");
    h.tick_through(1, 3);
    h.world
        .fail_next("/deployments", Some(Method::Get), 502, "bad gateway");
    let writes = h.world.written_percents().len();
    block_on(
        h.ctl()
            .command(Command::Abort, "ana".into(), None, minute(4)),
    )
    .expect("abort");
    assert_eq!(
        h.world.written_percents().len(),
        writes,
        "no write without a read"
    );
    assert!(
        matches!(h.phase(), Phase::RollingBack { .. }),
        "{:?}",
        h.phase()
    );
    h.tick_through(5, 5);
    assert!(
        matches!(h.phase(), Phase::Aborted { .. }),
        "{:?}",
        h.phase()
    );
    assert_eq!(*h.world.live.borrow(), [(OLD.to_string(), 100.0)]);
}

#[test]
fn slack_rate_limits_hold_messages_until_retry_after() {
    let h = Harness::new();
    for _ in 0..2 {
        h.world.fail_next("/slack/", None, 429, "rate_limited");
    }
    block_on(h.ctl().start(hook(NEW, Some(OLD)), minute(0))).expect("started");
    let pending = h
        .store
        .rollout
        .borrow()
        .as_ref()
        .unwrap()
        .outbox
        .items
        .len();
    assert!(pending > 0, "the messages wait in the outbox");
    h.tick_through(1, 4);
    let stored = h.store.rollout.borrow();
    assert!(
        stored.as_ref().unwrap().outbox.items.is_empty(),
        "delivered after Retry-After"
    );
    assert!(!h.world.slack.borrow().is_empty());
}

#[test]
fn a_dead_webhook_is_reported_and_never_blocks_a_rollback() {
    let h = Harness::new();
    h.world.error_rates.set((0.02, 0.001));
    h.world
        .fail_next("/slack/", None, 410, "channel_is_archived");
    block_on(h.ctl().start(hook(NEW, Some(OLD)), minute(0))).expect("started");
    h.tick_through(1, 30);
    assert!(
        matches!(h.phase(), Phase::RolledBack { .. }),
        "{:?}",
        h.phase()
    );
    let report = block_on(h.ctl().tick(minute(31))).expect("tick");
    assert_eq!(report.dead_webhook.as_deref(), Some("channel_is_archived"));
    assert!(
        h.world.slack.borrow().is_empty(),
        "no more sends to a dead webhook"
    );
}

#[test]
fn a_storage_failure_stops_before_any_side_effect() {
    let h = Harness::new();
    h.store.fail_saves.set(true);
    let err = block_on(h.ctl().start(hook(NEW, Some(OLD)), minute(0))).unwrap_err();
    assert_eq!(err.status(), 500);
    assert!(
        !err.to_json().contains("disk full"),
        "details stay in the log"
    );
    assert!(h.world.written_percents().is_empty(), "nothing moved");
}

#[test]
fn operators_can_pause_and_abort_and_abort_restores_stable() {
    let h = Harness::new();
    block_on(h.ctl().start(hook(NEW, Some(OLD)), minute(0))).expect("started");
    let paused = block_on(h.ctl().command(
        Command::Pause,
        "ana".into(),
        Some("odd p95".into()),
        minute(1),
    ))
    .expect("pause");
    assert!(matches!(paused.state.phase, Phase::Paused { .. }));
    let err = block_on(
        h.ctl()
            .command(Command::Pause, "ana".into(), None, minute(1)),
    )
    .unwrap_err();
    assert_eq!(err.status(), 409);
    block_on(
        h.ctl()
            .command(Command::Abort, "ana".into(), None, minute(2)),
    )
    .expect("abort");
    h.tick_through(3, 5);
    assert!(
        matches!(h.phase(), Phase::Aborted { .. }),
        "{:?}",
        h.phase()
    );
    assert_eq!(*h.world.live.borrow(), [(OLD.to_string(), 100.0)]);
}

#[test]
fn the_clock_never_runs_backwards_for_a_rollout() {
    let h = Harness::new();
    block_on(h.ctl().start(hook(NEW, Some(OLD)), minute(0))).expect("started");
    h.tick_through(1, 5);
    // A command stamped with an earlier wall clock is applied at the rollout's latest time.
    block_on(
        h.ctl()
            .command(Command::Pause, "ana".into(), None, minute(-100)),
    )
    .expect("pause");
    let stored = h.store.rollout.borrow();
    assert_eq!(stored.as_ref().unwrap().last_now, minute(5));
}

#[test]
fn the_old_versions_baseline_before_the_rollout_is_read_once_on_the_first_tick() {
    let h = Harness::new();
    block_on(h.ctl().start(hook(NEW, Some(OLD)), minute(0))).expect("started");
    h.tick_through(1, 4);
    let bounds: Vec<(i64, i64)> = h
        .world
        .calls
        .borrow()
        .iter()
        .filter(|c| c.url.ends_with("/sql"))
        .map(|c| {
            let body = c.body.as_deref().unwrap_or("");
            let mut at = body
                .split("toDateTime(")
                .skip(1)
                .filter_map(|rest| rest.split(')').next()?.parse::<i64>().ok());
            (at.next().unwrap(), at.next().unwrap())
        })
        .collect();
    // 180 minutes ending the 2-minute ingestion lag before the deploy hook, asked once.
    let start = minute(0).millis() / 1000;
    let window = (start - 182 * 60, start - 2 * 60);
    assert_eq!(
        bounds.iter().filter(|b| **b == window).count(),
        1,
        "{bounds:?}"
    );
    let stored = h.store.rollout.borrow();
    let signals = &stored.as_ref().expect("a rollout").state.signals;
    let baseline = signals
        .looks
        .history(BudgetRow::ErrorsSplitHistory)
        .unwrap()
        .baseline()
        .expect("baseline read");
    assert_eq!(baseline.minutes, 180);
}

#[test]
fn a_regression_that_appears_in_the_bake_of_a_busy_service_rolls_back_through_burst_scaled_looks() {
    let h = Harness::new();
    // 1% 5xx at 100 rps is 60 a minute at 100%, over the raw bake looks' limit of 30; the
    // stable version's minutes before the rollout set the scaling that lets them count.
    h.world.error_rates.set((0.01, 0.01));
    block_on(h.ctl().start(hook(NEW, Some(OLD)), minute(0))).expect("started");
    h.tick_through(1, 23);
    assert!(h.phase() == Phase::Baking, "{:?}", h.phase());
    // ×3 from minute 24. The e-process, whose bursty minutes count ×10 at most, needs four
    // such minutes (minute 27); the scaled looks see it in the first tick that counts one.
    h.world.error_rates.set((0.03, 0.01));
    h.tick_through(24, 24);
    let rolling_back = rolled_back_saying(&h);
    for words in ["bake look", "burst-scaled (÷ "] {
        assert!(rolling_back.contains(words), "{words}: {rolling_back}");
    }
}

/// Cloudflare's 10220 answer as wrangler's own test captures it
/// (cloudflare/workers-sdk `packages/wrangler/src/__tests__/rollback.test.ts`).
const SECRETS_CHANGED: &str = include_str!("fixtures/cloudflare/error_secrets_changed.json");

fn deployment_posts(h: &Harness) -> Vec<String> {
    h.world
        .calls
        .borrow()
        .iter()
        .filter(|c| c.method == Method::Post && c.url.contains("/deployments"))
        .map(|c| c.url.clone())
        .collect()
}

#[test]
fn an_abort_cloudflare_refuses_until_forced_is_sent_again_with_force_and_slack_names_the_secrets() {
    let h = Harness::new();
    block_on(h.ctl().start(hook(NEW, Some(OLD)), minute(0))).expect("started");
    h.tick_through(1, 2);
    let before = deployment_posts(&h).len();
    h.world
        .fail_next("/deployments", Some(Method::Post), 400, SECRETS_CHANGED);
    block_on(
        h.ctl()
            .command(Command::Abort, "ops".into(), None, minute(3)),
    )
    .expect("abort");
    let posts = deployment_posts(&h)[before..].to_vec();
    assert_eq!(posts.len(), 2, "refused, then forced: {posts:?}");
    assert!(!posts[0].contains("force"), "{}", posts[0]);
    assert!(
        posts[1].ends_with("/deployments?force=true"),
        "{}",
        posts[1]
    );
    assert_eq!(*h.world.live.borrow(), vec![(OLD.to_string(), 100.0)]);
    assert!(
        matches!(h.phase(), Phase::Aborted { .. }),
        "{:?}",
        h.phase()
    );
    let slack = serde_json::to_string(&*h.world.slack.borrow()).expect("json");
    assert!(slack.contains("SECRET, SECRET_TWO"), "{slack}");
}

#[test]
fn a_step_cloudflare_refuses_until_forced_is_never_forced() {
    let h = Harness::new();
    block_on(h.ctl().start(hook(NEW, Some(OLD)), minute(0))).expect("started");
    let before = deployment_posts(&h).len();
    h.world
        .fail_next("/deployments", Some(Method::Post), 400, SECRETS_CHANGED);
    block_on(
        h.ctl()
            .command(Command::Promote, "ops".into(), None, minute(1)),
    )
    .expect("promote");
    let posts = deployment_posts(&h)[before..].to_vec();
    assert_eq!(posts.len(), 1, "{posts:?}");
    assert!(posts.iter().all(|p| !p.contains("force")));
    assert!(matches!(h.phase(), Phase::Paused { .. }), "{:?}", h.phase());
}

#[test]
fn a_live_deployment_with_cohorts_refuses_the_rollout_in_preflight() {
    let h = Harness::new();
    let cohorts = include_str!("fixtures/cloudflare/deployments_list_cohorts.json");
    h.world
        .fail_next("/deployments", Some(Method::Get), 200, cohorts);
    block_on(h.ctl().start(hook(NEW, Some(OLD)), minute(0))).expect("accepted");
    let Phase::Failed { reasons } = h.phase() else {
        panic!("not refused: {:?}", h.phase());
    };
    assert!(
        reasons
            .iter()
            .any(|r| r.contains("cohorts (\"beta\", \"employee\")") && r.contains("erase")),
        "{reasons:?}"
    );
    assert!(
        deployment_posts(&h).is_empty(),
        "no write: it would erase the cohorts"
    );
}

#[test]
fn a_malformed_token_pauses_a_step_as_a_credentials_problem_that_resume_retries() {
    let h = Harness::new();
    block_on(h.ctl().start(hook(NEW, Some(OLD)), minute(0))).expect("started");
    let malformed = include_str!("fixtures/cloudflare/error_malformed_token.json");
    h.world
        .fail_next("/deployments", Some(Method::Post), 400, malformed);
    block_on(
        h.ctl()
            .command(Command::Promote, "ops".into(), None, minute(1)),
    )
    .expect("promote");
    let Phase::Paused {
        resumable, reason, ..
    } = h.phase()
    else {
        panic!("not paused: {:?}", h.phase());
    };
    assert!(resumable, "fix the token, then resume: {reason}");
    assert!(reason.to_string().contains("API token"), "{reason}");
}

/// Starts `version` at `at` and aborts it, so the next start is not refused.
fn start_and_abort(h: &Harness, version: &str, at: i64) {
    block_on(h.ctl().start(hook(version, Some(OLD)), minute(at))).expect("started");
    if !h.phase().is_terminal() {
        block_on(
            h.ctl()
                .command(Command::Abort, "ana".into(), None, minute(at + 1)),
        )
        .expect("abort");
        h.tick_through(at + 2, at + 6);
    }
}

#[test]
fn a_new_rollout_prunes_the_audit_log_of_rollouts_past_the_retention() {
    let mut h = Harness::new();
    h.config.audit_retention = AuditRetention {
        rollouts: 2,
        days: 1,
    };
    start_and_abort(&h, NEW, 0);
    start_and_abort(&h, OTHER, 10);
    let versions = |h: &Harness| -> Vec<String> {
        let mut v: Vec<String> = h
            .store
            .events
            .borrow()
            .iter()
            .map(|e| e.version_id.clone())
            .collect();
        v.dedup();
        v
    };
    assert_eq!(versions(&h), [NEW, OTHER], "two rollouts, both kept");
    // A third rollout: the first goes, the two newest stay.
    block_on(h.ctl().start(hook(OLD, Some(NEW)), minute(20))).expect("started");
    assert_eq!(versions(&h), [OTHER, OLD]);
    let actions = h.store.actions.borrow();
    let pruned = actions
        .iter()
        .rfind(|a| a.action == "prune audit log")
        .expect("noted");
    assert!(
        pruned
            .outcome
            .ends_with("removed (kept: 2 rollouts, 1 days)"),
        "{}",
        pruned.outcome
    );
    assert!(!pruned.outcome.starts_with("0 row"), "{}", pruned.outcome);
}

#[test]
fn rows_older_than_the_retention_go_but_never_the_starting_rollouts() {
    let mut h = Harness::new();
    h.config.audit_retention = AuditRetention {
        rollouts: 20,
        days: 1,
    };
    start_and_abort(&h, NEW, 0);
    // Two days later: the first rollout's rows are past a day old.
    block_on(h.ctl().start(hook(OTHER, Some(OLD)), minute(2 * 1440))).expect("started");
    let events = h.store.events.borrow();
    assert!(
        events.iter().all(|e| e.version_id == OTHER),
        "only the new rollout's rows"
    );
    assert!(!events.is_empty());
}

#[test]
fn a_tick_handed_the_shared_counts_asks_analytics_engine_nothing_and_decides_the_same() {
    use rollout_gate::clients::analytics::batch::{ByVersion, CountsBatch, PlannedCounts};
    use rollout_gate::controller::batch::query_batch;
    use rollout_gate::controller::TickSupply;
    let (alone, shared) = (Harness::new(), Harness::new());
    for h in [&alone, &shared] {
        block_on(h.ctl().start(hook(NEW, None), minute(0))).expect("started");
    }
    let mut planned: Option<PlannedCounts> = None;
    let mut covered = 0;
    for m in 1..=60 {
        block_on(alone.ctl().tick(minute(m))).expect("tick");
        // The cron handler's part: the query planned for this minute, answered by a batch.
        let supply = match planned.take().filter(|p| p.minute == minute(m)) {
            Some(p) => {
                let batch = CountsBatch::group([&p.query]).remove(0);
                let answer = block_on(query_batch(
                    &shared.world,
                    &shared.config,
                    &shared.secrets,
                    &batch,
                ));
                TickSupply {
                    api_calls: Some(10),
                    counts: batch.share(&p.query, &ByVersion::of(&answer)),
                }
            }
            None => TickSupply::default(),
        };
        let asked_before = shared.world.count(None, "/analytics_engine/sql");
        let report = block_on(shared.ctl().tick_with(minute(m), supply.clone())).expect("tick");
        if supply.counts.is_some() {
            covered += 1;
            let asked = shared.world.count(None, "/analytics_engine/sql") - asked_before;
            assert_eq!(asked, 0, "minute {m}: a query of its own");
        }
        planned = report.account.next_counts;
        assert_eq!(alone.phase(), shared.phase(), "minute {m}");
        if alone.phase().is_terminal() {
            break;
        }
    }
    assert_eq!(alone.phase(), Phase::Completed);
    assert!(covered >= 25, "{covered} ticks covered");
    let state = |h: &Harness| {
        h.store
            .rollout
            .borrow()
            .as_ref()
            .expect("a rollout")
            .state
            .clone()
    };
    assert_eq!(state(&alone), state(&shared));
}

#[test]
fn a_tick_past_its_share_of_the_api_budget_calls_no_cloudflare_api_and_holds() {
    use rollout_gate::controller::TickSupply;
    let h = Harness::new();
    block_on(h.ctl().start(hook(NEW, None), minute(0))).expect("started");
    h.tick_through(1, 3);
    let api_before = h.world.count(None, "/client/v4");
    let supply = TickSupply {
        api_calls: Some(0),
        counts: None,
    };
    let report = block_on(h.ctl().tick_with(minute(4), supply)).expect("tick");
    assert_eq!(h.world.count(None, "/client/v4"), api_before);
    assert_eq!(report.account.api_calls, 0);
    assert_eq!(h.phase(), Phase::Ramping { step: 0 });
    let report = block_on(h.ctl().tick(minute(5))).expect("tick");
    assert!(
        report.account.api_calls >= 1,
        "at least the counts: {}",
        report.account.api_calls
    );
}
