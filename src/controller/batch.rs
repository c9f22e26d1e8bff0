//! The cron handler's side of the shared counts queries: runs one batch (one Analytics
//! Engine query for up to 50 rollouts) and hands each planned tick its share of the
//! answers, with its share of the account's API budget.

use crate::clients::analytics::batch::{ByVersion, CountsBatch};
use crate::clients::analytics::{self, HttpRow};
use crate::clients::http::{HttpClient, HttpRequest};
use crate::config::{GateConfig, Secrets};
use crate::controller::TickSupply;
use crate::registry::TickPlan;

/// A batch's answer: the rows of every version it names, or why there are none.
pub type BatchAnswer = Result<Vec<HttpRow>, String>;

/// Runs one shared counts query. Its call was counted against the account's budget when
/// the registry planned it. Failures are answers: each rollout it covers records them as a
/// counts query that failed, as its own query failing would.
pub async fn query_batch<H: HttpClient>(
    http: &H,
    config: &GateConfig,
    secrets: &Secrets,
    batch: &CountsBatch,
) -> BatchAnswer {
    let resp = http
        .send(request(config, secrets, batch)?)
        .await
        .map_err(|e| e.to_string())?;
    analytics::parse_http_rows(&resp).map_err(|e| e.to_string())
}

/// The Analytics Engine SQL request of a counts query, shared (a batch) or a rollout's own
/// (`CountsBatch::of`).
pub(super) fn request(
    config: &GateConfig,
    secrets: &Secrets,
    batch: &CountsBatch,
) -> Result<HttpRequest, String> {
    let token = secrets.analytics_token()?;
    let sql = batch
        .sql(&config.dataset, &config.columns)
        .map_err(|e| e.to_string())?;
    analytics::build_sql_request(&config.api, token, sql).map_err(|e| e.to_string())
}

/// What each planned tick is handed: its API share and, when a batch covers its planned
/// query, that batch's answer cut to its versions. `answers` are the batches' answers, in
/// the plan's order.
pub fn supplies(plan: &TickPlan, answers: &[BatchAnswer]) -> Vec<(String, TickSupply)> {
    let answers: Vec<ByVersion> = answers.iter().map(ByVersion::of).collect();
    plan.ticks
        .iter()
        .map(|tick| {
            let counts = tick.counts.as_ref().and_then(|query| {
                plan.batches
                    .iter()
                    .zip(&answers)
                    .find_map(|(batch, answer)| batch.share(query, answer))
            });
            let supply = TickSupply {
                api_calls: Some(tick.api_calls),
                counts,
            };
            (tick.script.clone(), supply)
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::clients::analytics::batch::PlannedCounts;
    use crate::registry::fixtures::{book_of_active, counts as query, minute};
    use crate::registry::{AccountUse, Book, ScriptReport};

    fn row(version: &str) -> HttpRow {
        HttpRow {
            minute: minute(7),
            version: version.into(),
            requests: 10.0,
            errors_5xx: 0.0,
            slow: 0.0,
            very_slow: 0.0,
            approaching: 0.0,
            p95_ms: Some(50.0),
            stored_rows: 10.0,
            error_rows: 0.0,
            slow_rows: 0.0,
        }
    }

    #[test]
    fn each_tick_gets_its_own_rows_and_one_without_a_plan_gets_none() {
        let mut book = Book::default();
        for (i, planned) in [(0, true), (1, true), (2, false)] {
            book.settle(&ScriptReport {
                script: format!("svc-{i}"),
                active: true,
                now_ms: minute(9).millis(),
                account: AccountUse {
                    next_counts: planned.then(|| PlannedCounts {
                        minute: minute(10),
                        query: query(i),
                    }),
                    ..AccountUse::default()
                },
                ..ScriptReport::default()
            });
        }
        let plan = book.plan_tick(minute(10));
        assert_eq!(plan.batches.len(), 1);
        let rows: Vec<HttpRow> = (0..4)
            .map(|k| row(&format!("{k:08x}-0000-4000-8000-000000000000")))
            .collect();
        let out = supplies(&plan, &[Ok(rows)]);
        assert_eq!(out.len(), 3);
        for (script, supply) in &out[..2] {
            let counts = supply.counts.as_ref().expect("covered");
            let got = counts.answer.as_ref().expect("rows");
            assert_eq!(got.len(), 2, "{script}: its two versions' rows only");
        }
        assert!(out[2].1.counts.is_none());
        assert!(out.iter().all(|(_, s)| s.api_calls.is_some()));
    }

    /// What the cron handler's own work costs at 200 rollouts, natively: the registry's
    /// plan (4 batches), parsing the 4 answers (each version's rows over an 11-minute
    /// window), cutting them into 200 shares and writing each tick's body. Not a test of a
    /// bound (timings are noisy here):
    /// `cargo test --release --lib -- --ignored cron_minute_cost --nocapture`.
    #[test]
    #[ignore]
    fn cron_minute_cost() {
        let n = 200;
        let book = book_of_active(n);
        let answer = |batch: &CountsBatch| {
            let mut data = Vec::new();
            for version in &batch.versions {
                for m in 0..11 {
                    let mut r = row(version);
                    r.minute = minute(m - 3);
                    data.push(serde_json::json!({"version": r.version, "minute": (r.minute.millis() / 1000).to_string(),
                        "requests": "600", "errors_5xx": "1", "slow": "3", "very_slow": "0", "approaching": "9",
                        "p95_ms": 81.5, "stored_rows": "600", "error_rows": "1", "slow_rows": "3"}));
                }
            }
            let body =
                serde_json::json!({"meta": [], "data": data, "rows": data.len()}).to_string();
            crate::clients::http::HttpResponse::new(200, body)
        };
        let responses: Vec<_> = book
            .clone()
            .plan_tick(minute(10))
            .batches
            .iter()
            .map(answer)
            .collect();
        let answer_bytes = responses[0].body.len();
        let runs = 20;
        let started = std::time::Instant::now();
        let mut bytes = 0;
        for _ in 0..runs {
            let mut b = book.clone();
            let plan = b.plan_tick(minute(10));
            let answers: Vec<BatchAnswer> = responses
                .iter()
                .map(|resp| analytics::parse_http_rows(resp).map_err(|e| e.to_string()))
                .collect();
            bytes = supplies(&plan, &answers)
                .iter()
                .map(|(_, supply)| serde_json::to_string(supply).expect("json").len())
                .sum();
        }
        let each = started.elapsed() / runs;
        println!(
            "cron minute of {n} rollouts: {each:?} (plan, 4 answers of {answer_bytes} bytes parsed, {bytes} bytes of tick bodies)"
        );
    }
}
