//! Fuzz targets for every parser of an answer from outside: Cloudflare v4 (deployments,
//! created deployment, version, versions page), the Analytics Engine SQL API (HTTP and
//! queue rows), Slack webhook answers, `/healthz` probe answers and `Retry-After`.
//! Each starts from the captured fixtures in tests/fixtures/ and mutates them.

use crate::harness::{check_alloc, check_message, fuzz, peak_alloc};
use crate::mutate::{below, chance, fixtures, nasty_string, pick, text_body};
use rollout_gate::clients::analytics::{parse_http_rows, parse_queue_rows, AnalyticsError};
use rollout_gate::clients::cloudflare::{
    parse_created_deployment, parse_deployments, parse_envelope, parse_version,
    parse_versions_page, CloudflareError,
};
use rollout_gate::clients::http::{parse_retry_after_secs, HttpResponse, TransportError};
use rollout_gate::clients::probe::{read_probe, ProbeConfig, ProbeOutcome, VersionSource};
use rollout_gate::clients::slack::{classify_response, SlackOutcome};
use rollout_gate::sim::rng::Rng;
use serde_json::Value;

/// Longest error text a parser may make of an outside answer. These texts are stored in
/// the rollout's state and audit log and posted to Slack, so they must not grow with the
/// answer (the API's own reason is cut to 500 chars; 1,000 leaves room for the frame).
pub const MAX_ERROR_CHARS: usize = 1_000;

const NEW: &str = "11111111-1111-4111-8111-111111111111";

fn status(rng: &mut Rng) -> u16 {
    match below(rng, 10) {
        0..=3 => 200,
        4 => *pick(rng, &[201, 204, 299]),
        5 => *pick(rng, &[400, 401, 403, 404, 409, 410, 413, 422]),
        6 => 429,
        7 => *pick(rng, &[500, 502, 503, 504, 520, 599]),
        8 => *pick(rng, &[0, 1, 100, 199, 300, 399, 600, 999, u16::MAX]),
        _ => rng.next_u64() as u16,
    }
}

fn retry_after(rng: &mut Rng) -> Option<String> {
    match below(rng, 8) {
        0 => None,
        1 => Some("30".into()),
        2 => Some(" 1.5 ".into()),
        3 => Some("Wed, 21 Oct 2026 07:28:00 GMT".into()),
        4 => Some(
            pick(
                rng,
                &[
                    "-1",
                    "1e9",
                    "1e300",
                    "NaN",
                    "inf",
                    "18446744073709551616",
                    "",
                ],
            )
            .to_string(),
        ),
        5 => Some(rng.next_u64().to_string()),
        _ => Some(nasty_string(rng)),
    }
}

fn response(rng: &mut Rng, seeds: &[Vec<u8>]) -> HttpResponse {
    let mut resp = HttpResponse::new(status(rng), text_body(rng, seeds));
    if chance(rng, 0.7) {
        if let Some(value) = retry_after(rng) {
            let name = *pick(rng, &["Retry-After", "retry-after", "RETRY-AFTER"]);
            resp = resp.with_header(name, value);
        }
    }
    resp
}

/// Bytes of a response as received: body and headers.
fn input_len(resp: &HttpResponse) -> usize {
    resp.body.len()
        + resp
            .headers
            .iter()
            .map(|(k, v)| k.len() + v.len())
            .sum::<usize>()
}

/// What every Cloudflare parser must do with `resp`, whatever `T` it decodes.
fn check_cloudflare<T>(
    resp: &HttpResponse,
    result: &Result<T, CloudflareError>,
) -> Result<(), String> {
    let s = resp.status;
    let err = match result {
        Ok(_) if (200..300).contains(&s) => return Ok(()),
        Ok(_) => return Err(format!("HTTP {s} parsed as a success")),
        Err(err) => err,
    };
    check_message("cloudflare", &err.to_string(), MAX_ERROR_CHARS)?;
    let right_kind = match s {
        429 => matches!(err, CloudflareError::RateLimited { .. }),
        401 | 403 => matches!(err, CloudflareError::Unauthorized { status, .. } if *status == s),
        500.. => matches!(err, CloudflareError::Server { status } if *status == s),
        // A refusal for changed secrets (code 10220) is read from the code alone, whatever
        // the status, as wrangler's createDeployment does; so are the credential codes
        // (10000, 9109, 6003/6111: a malformed token draws a 400), kept with their status.
        _ => {
            matches!(
                err,
                CloudflareError::NotFound { .. }
                    | CloudflareError::Invalid { .. }
                    | CloudflareError::Malformed { .. }
                    | CloudflareError::SecretsChanged { .. }
            ) || matches!(err, CloudflareError::Unauthorized { status, .. } if *status == s)
        }
    };
    if !right_kind {
        return Err(format!("HTTP {s} classified as {err:?}"));
    }
    if let CloudflareError::RateLimited { retry_after_secs } = err {
        let given = resp.header("retry-after").and_then(parse_retry_after_secs);
        if given.is_some_and(|g| g != *retry_after_secs) {
            return Err(format!("Retry-After {given:?} read as {retry_after_secs}"));
        }
    }
    if matches!(err, CloudflareError::NotFound { .. }) && s != 404 && !resp.body.contains("10007") {
        return Err(format!("HTTP {s} without code 10007 called not found"));
    }
    Ok(())
}

#[derive(Debug, Clone, Copy)]
enum CloudflareParser {
    Deployments,
    CreatedDeployment,
    Version,
    VersionsPage,
    Envelope,
}

#[test]
fn fuzz_cloudflare_responses() {
    let seeds = fixtures("cloudflare", "json");
    let parsers = [
        CloudflareParser::Deployments,
        CloudflareParser::CreatedDeployment,
        CloudflareParser::Version,
        CloudflareParser::VersionsPage,
        CloudflareParser::Envelope,
    ];
    let gen = |rng: &mut Rng| (*pick(rng, &parsers), response(rng, &seeds));
    fuzz("cloudflare", 6_000, gen, |(parser, resp)| {
        let len = input_len(resp);
        match parser {
            CloudflareParser::Deployments => {
                let (r, peak) = peak_alloc(|| parse_deployments(resp));
                check_alloc(peak, len)?;
                check_cloudflare(resp, &r)
            }
            CloudflareParser::CreatedDeployment => {
                let (r, peak) = peak_alloc(|| parse_created_deployment(resp));
                check_alloc(peak, len)?;
                check_cloudflare(resp, &r)
            }
            CloudflareParser::Version => {
                let (r, peak) = peak_alloc(|| parse_version(resp));
                check_alloc(peak, len)?;
                check_cloudflare(resp, &r)
            }
            CloudflareParser::VersionsPage => {
                let (r, peak) = peak_alloc(|| parse_versions_page(resp));
                check_alloc(peak, len)?;
                if let Ok(page) = &r {
                    let _ = page.has_more();
                }
                check_cloudflare(resp, &r)
            }
            CloudflareParser::Envelope => {
                let (r, peak) = peak_alloc(|| parse_envelope::<Value>(resp));
                check_alloc(peak, len)?;
                check_cloudflare(resp, &r)
            }
        }
    });
}

fn check_analytics<T>(
    resp: &HttpResponse,
    result: &Result<Vec<T>, AnalyticsError>,
) -> Result<(), String> {
    let s = resp.status;
    let err = match result {
        Ok(_) if (200..300).contains(&s) => return Ok(()),
        Ok(_) => return Err(format!("HTTP {s} parsed as rows")),
        Err(err) => err,
    };
    check_message("analytics", &err.to_string(), MAX_ERROR_CHARS)?;
    let right_kind = match s {
        429 => matches!(err, AnalyticsError::RateLimited { .. }),
        200..=299 => matches!(
            err,
            AnalyticsError::NotJson
                | AnalyticsError::Rejected { .. }
                | AnalyticsError::MissingData
                | AnalyticsError::BadRow { .. }
        ),
        _ => matches!(err, AnalyticsError::Status { status, .. } if *status == s),
    };
    if right_kind {
        Ok(())
    } else {
        Err(format!("HTTP {s} classified as {err:?}"))
    }
}

fn whole_minute(millis: i64) -> bool {
    millis % 1_000 == 0
}

#[test]
fn fuzz_analytics_responses() {
    let seeds = fixtures("analytics", "json");
    let gen = |rng: &mut Rng| (chance(rng, 0.5), response(rng, &seeds));
    fuzz("analytics", 5_000, gen, |(http, resp)| {
        let len = input_len(resp);
        let finite_count = |x: f64| x.is_finite() && x >= 0.0;
        if *http {
            let (r, peak) = peak_alloc(|| parse_http_rows(resp));
            check_alloc(peak, len)?;
            for row in r.iter().flatten() {
                let counts = [
                    row.requests,
                    row.errors_5xx,
                    row.slow,
                    row.very_slow,
                    row.approaching,
                    row.stored_rows,
                    row.error_rows,
                    row.slow_rows,
                ];
                if !counts.iter().all(|&c| finite_count(c))
                    || row.p95_ms.is_some_and(|p| !p.is_finite())
                    || !whole_minute(row.minute.millis())
                {
                    return Err(format!("accepted a row that breaks its contract: {row:?}"));
                }
                let _ = row.mean_sample_interval();
            }
            check_analytics(resp, &r)
        } else {
            let (r, peak) = peak_alloc(|| parse_queue_rows(resp));
            check_alloc(peak, len)?;
            for row in r.iter().flatten() {
                let counts = [row.max_depth, row.retries, row.points];
                if !counts.iter().all(|&c| finite_count(c)) || !whole_minute(row.minute.millis()) {
                    return Err(format!("accepted a row that breaks its contract: {row:?}"));
                }
            }
            check_analytics(resp, &r)
        }
    });
}

fn is_slack_code(code: &str) -> bool {
    let plain = !code.is_empty()
        && code.len() <= 64
        && code
            .bytes()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == b'_');
    plain
}

#[test]
fn fuzz_slack_responses() {
    let mut seeds = fixtures("slack", "txt");
    seeds.extend(fixtures("slack", "html"));
    let gen = |rng: &mut Rng| {
        let resp = response(rng, &seeds);
        let retry = resp.header("retry-after").map(str::to_string);
        (resp.status, resp.body, retry)
    };
    fuzz("slack", 10_000, gen, |(status, body, retry)| {
        let (outcome, peak) = peak_alloc(|| classify_response(*status, body, retry.as_deref()));
        check_alloc(peak, body.len())?;
        let s = *status;
        let ok = match &outcome {
            SlackOutcome::Delivered => (200..300).contains(&s),
            SlackOutcome::RetryAfter { secs } => {
                let given = retry.as_deref().and_then(parse_retry_after_secs);
                s == 429 && *secs >= 1 && given.is_none_or(|g| *secs == g.max(1))
            }
            SlackOutcome::Transient { status } => *status == Some(s) && s >= 500,
            SlackOutcome::DeadWebhook { code } | SlackOutcome::Rejected { code } => {
                !(200..300).contains(&s) && s != 429 && is_slack_code(code)
            }
        };
        if !ok {
            return Err(format!("HTTP {s} classified as {outcome:?}"));
        }
        if outcome.should_retry()
            == matches!(
                outcome,
                SlackOutcome::DeadWebhook { .. }
                    | SlackOutcome::Rejected { .. }
                    | SlackOutcome::Delivered
            )
        {
            return Err(format!("should_retry wrong for {outcome:?}"));
        }
        Ok(())
    });
}

#[test]
fn fuzz_probe_responses() {
    let seeds = fixtures("probe", "json");
    let sources = [
        VersionSource::default(),
        VersionSource::JsonField("version.id".into()),
        VersionSource::JsonField("".into()),
        VersionSource::JsonField("a..b".into()),
        VersionSource::Header("x-version-id".into()),
    ];
    let gen = |rng: &mut Rng| {
        let source = pick(rng, &sources).clone();
        let mut resp = response(rng, &seeds);
        if chance(rng, 0.3) {
            let value = if chance(rng, 0.5) {
                NEW.to_string()
            } else {
                nasty_string(rng)
            };
            resp = resp.with_header("X-Version-Id", value);
        }
        let transport = chance(rng, 0.05);
        (source, resp, transport)
    };
    fuzz("probe", 5_000, gen, |(source, resp, transport)| {
        let config = ProbeConfig {
            version_source: source.clone(),
            ..ProbeConfig::new("https://{script}.example.workers.dev")
        };
        let failure = TransportError::Timeout(10_000);
        let answer = if *transport { Err(&failure) } else { Ok(resp) };
        let (outcome, peak) = peak_alloc(|| read_probe(&config, NEW, answer));
        check_alloc(peak, input_len(resp))?;
        let s = resp.status;
        let ok = match &outcome {
            ProbeOutcome::Ok => !transport && s == 200,
            ProbeOutcome::Failed { status, error } => {
                if *transport {
                    status.is_none() && error.as_deref().is_some_and(|e| !e.is_empty())
                } else {
                    *status == Some(s)
                }
            }
            ProbeOutcome::WrongVersion { answered_by } => {
                !transport
                    && !answered_by.is_empty()
                    && answered_by.chars().count() <= 64
                    && !answered_by.eq_ignore_ascii_case(NEW)
            }
            ProbeOutcome::Unattributed { status } => !transport && *status == 200 && s == 200,
        };
        if ok {
            Ok(())
        } else {
            Err(format!(
                "HTTP {s} (transport failure: {transport}) read as {outcome:?}"
            ))
        }
    });
}

#[test]
fn fuzz_retry_after() {
    fuzz(
        "retry_after",
        20_000,
        |rng| retry_after(rng).unwrap_or_default(),
        |value| match parse_retry_after_secs(value) {
            None => Ok(()),
            Some(secs) if value.trim().parse::<u64>() == Ok(secs) => Ok(()),
            Some(secs) if secs <= 1_000_000_000 => Ok(()),
            Some(secs) => Err(format!("{value:?} read as {secs} s")),
        },
    );
}
