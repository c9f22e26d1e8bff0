//! Analytics Engine: exact SQL text (the `.sql` fixtures were also run on ClickHouse via
//! chdb over an Analytics-Engine-shaped table; the JSON fixtures are that engine's answers,
//! with 64-bit integers quoted and not), parsing, and every failure mode.

use crate::support::{fixture, response, NEW, OLD};
use rollout_gate::clients::analytics::*;
use rollout_gate::clients::cloudflare::ApiConfig;
use rollout_gate::clients::http::{HttpResponse, Method};
use rollout_gate::time::Timestamp;

const FROM: Timestamp = Timestamp::from_millis(1_795_773_600_000); // 2026-11-27T10:00:00Z
const TO: Timestamp = Timestamp::from_millis(1_795_773_780_000); // 10:03:00Z

/// The default policy's thresholds: the 250 ms ceiling, 4× and ½× it.
const THRESHOLDS: LatencyThresholds = LatencyThresholds {
    slow_ms: 250.0,
    very_slow_ms: 1000.0,
    approach_ms: 125.0,
};

fn http_query(columns: &Columns) -> Result<String, AnalyticsError> {
    build_http_query("mauntic_logs", columns, &[NEW, OLD], FROM, TO, THRESHOLDS)
}

#[test]
fn http_query_text_is_exact() {
    let sql = http_query(&Columns::default()).expect("valid");
    assert_eq!(sql, fixture("analytics/http_query.sql"));
}

#[test]
fn http_query_uses_configured_columns_and_ceiling() {
    let columns = Columns {
        version: "blob3".into(),
        event_type: "blob4".into(),
        status: "double7".into(),
        latency_ms: "double8".into(),
        http_event: "request".into(),
        ..Columns::default()
    };
    let sql = build_http_query(
        "health_metrics",
        &columns,
        &[NEW, OLD],
        FROM,
        TO,
        LatencyThresholds {
            slow_ms: 312.5,
            very_slow_ms: 1250.0,
            approach_ms: 156.25,
        },
    )
    .expect("valid");
    let want = format!(
        "SELECT
  blob3 AS version,
  intDiv(toUnixTimestamp(timestamp), 60) * 60 AS minute,
  SUM(_sample_interval) AS requests,
  SUM(if(double7 >= 500, _sample_interval, 0)) AS errors_5xx,
  SUM(if(double8 > 312.5, _sample_interval, 0)) AS slow,
  SUM(if(double8 > 1250, _sample_interval, 0)) AS very_slow,
  SUM(if(double8 > 156.25, _sample_interval, 0)) AS approaching,
  quantileExactWeighted(0.95)(double8, _sample_interval) AS p95_ms,
  count() AS stored_rows,
  SUM(if(double7 >= 500, 1, 0)) AS error_rows,
  SUM(if(double8 > 312.5, 1, 0)) AS slow_rows
FROM health_metrics
WHERE timestamp >= toDateTime(1795773600)
  AND timestamp < toDateTime(1795773780)
  AND blob4 = 'request'
  AND blob3 IN ('{NEW}', '{OLD}')
GROUP BY version, minute
ORDER BY minute, version
FORMAT JSON"
    );
    assert_eq!(sql, want);
}

#[test]
fn queue_query_text_is_exact_and_escapes_names() {
    let sql = build_queue_query(
        "mauntic_logs",
        &Columns::default(),
        &["mauntic-events", "o'brien"],
        FROM,
        TO,
    )
    .expect("valid");
    assert_eq!(sql, fixture("analytics/queue_query.sql"));
    let all = build_queue_query("mauntic_logs", &Columns::default(), &[], FROM, TO).expect("valid");
    assert!(!all.contains(" IN ("), "{all}");
    assert!(
        all.contains("AND blob1 = 'queue.metric'\nGROUP BY queue, minute"),
        "{all}"
    );
}

#[test]
fn nothing_unvalidated_reaches_the_sql() {
    let bad_columns = Columns {
        latency_ms: "double2) OR 1=1 --".into(),
        ..Columns::default()
    };
    // The default query with one argument changed.
    let query = |dataset: &str, old: &str, (from, to), thresholds| {
        build_http_query(
            dataset,
            &Columns::default(),
            &[NEW, old],
            from,
            to,
            thresholds,
        )
    };
    let with = |slow_ms, very_slow_ms, approach_ms| LatencyThresholds {
        slow_ms,
        very_slow_ms,
        approach_ms,
    };
    let (window, thresholds) = ((FROM, TO), THRESHOLDS);
    let cases: Vec<(Result<String, AnalyticsError>, &str)> = vec![
        (
            query("logs; DROP TABLE x", OLD, window, thresholds),
            "dataset",
        ),
        (http_query(&bad_columns), "column"),
        (
            query("mauntic_logs", "x') OR ('1'='1", window, thresholds),
            "version",
        ),
        (query("mauntic_logs", OLD, (TO, FROM), thresholds), "window"),
        (
            query("mauntic_logs", OLD, window, with(f64::NAN, 1000.0, 125.0)),
            "ceiling",
        ),
        (
            query("mauntic_logs", OLD, window, with(-1.0, 1000.0, 125.0)),
            "ceiling",
        ),
        (
            query(
                "mauntic_logs",
                OLD,
                window,
                with(250.0, f64::INFINITY, 125.0),
            ),
            "very slow threshold",
        ),
        (
            query("mauntic_logs", OLD, window, with(250.0, 1000.0, -0.5)),
            "approaching threshold",
        ),
        (
            build_queue_query("mauntic_logs", &Columns::default(), &["q\n1"], FROM, TO),
            "queue name",
        ),
    ];
    for (result, what) in cases {
        assert!(result.is_err(), "{what}: {result:?}");
    }
}

#[test]
fn sql_request_posts_raw_text() {
    let cfg = ApiConfig::new("0123456789abcdef0123456789abcdef");
    let req = build_sql_request(&cfg, "ae-token", "SELECT 1 FORMAT JSON".into()).expect("valid");
    assert_eq!(req.method, Method::Post);
    assert_eq!(
        req.url,
        "https://api.cloudflare.com/client/v4/accounts/0123456789abcdef0123456789abcdef/analytics_engine/sql"
    );
    assert_eq!(
        req.headers,
        vec![
            ("Authorization".to_string(), "Bearer ae-token".to_string()),
            (
                "Content-Type".to_string(),
                "text/plain; charset=utf-8".to_string()
            ),
        ]
    );
    assert_eq!(req.body.as_deref(), Some("SELECT 1 FORMAT JSON"));
    assert!(build_sql_request(&cfg, "", String::new()).is_err());
}

#[test]
fn http_rows_parse_with_quoted_and_plain_integers_alike() {
    let quoted =
        parse_http_rows(&response(200, "analytics/http_rows_string_ints.json")).expect("parses");
    let plain =
        parse_http_rows(&response(200, "analytics/http_rows_numbers.json")).expect("parses");
    assert_eq!(quoted, plain);
    assert_eq!(quoted.len(), 6);
    let first = &quoted[0];
    assert_eq!(first.minute, FROM);
    assert_eq!(first.version, NEW);
    assert_eq!(first.requests, 58.0);
    assert_eq!(first.errors_5xx, 0.0);
    assert_eq!(first.slow, 6.0);
    assert_eq!(first.very_slow, 1.0);
    assert_eq!(first.approaching, 26.0);
    assert_eq!(first.p95_ms, Some(358.8));
    assert_eq!(first.stored_rows, 30.0);
    assert_eq!((first.error_rows, first.slow_rows), (0.0, 3.0));
    assert!((first.mean_sample_interval() - 58.0 / 30.0).abs() < 1e-12);
    let last = &quoted[5];
    assert_eq!(
        (last.minute, last.version.as_str()),
        (FROM.plus_minutes(2), OLD)
    );
    assert_eq!(last.errors_5xx, 6.0);
}

#[test]
fn no_rows_is_an_empty_answer_not_an_error() {
    assert_eq!(
        parse_http_rows(&response(200, "analytics/http_rows_empty.json")),
        Ok(vec![])
    );
}

#[test]
fn queue_rows_parse() {
    let rows = parse_queue_rows(&response(200, "analytics/queue_rows.json")).expect("parses");
    assert_eq!(rows.len(), 6);
    assert_eq!(rows[0].queue, "mauntic-events");
    assert_eq!(rows[0].minute, FROM);
    assert_eq!(
        (rows[0].max_depth, rows[0].retries, rows[0].points),
        (262.0, 5.0, 2.0)
    );
    assert_eq!(rows[1].queue, "o'brien");
}

#[test]
fn odd_but_valid_values_parse() {
    let body = format!(
        r#"{{"meta":[],"data":[{{"version":"{NEW}","minute":"2026-11-27 10:00:00","requests":"12","errors_5xx":1.0,"slow":"0","very_slow":"0","approaching":"2","p95_ms":null,"stored_rows":12,"error_rows":"1","slow_rows":0}},
          {{"version":"{OLD}","minute":1795773600,"requests":3,"errors_5xx":"0","slow":0,"very_slow":0,"approaching":0.0,"p95_ms":"nan","stored_rows":"3","error_rows":0,"slow_rows":"0"}}],"rows":2}}"#
    );
    let rows = parse_http_rows(&HttpResponse::new(200, body)).expect("parses");
    assert_eq!(rows[0].minute, FROM);
    assert_eq!(rows[0].p95_ms, None);
    assert_eq!(rows[0].errors_5xx, 1.0);
    assert_eq!(rows[0].approaching, 2.0);
    assert_eq!(rows[1].p95_ms, None);
}

/// A predicate on the error a case must produce.
type ErrorCheck = fn(&AnalyticsError) -> bool;

#[test]
fn failures_are_errors_never_panics() {
    let row = |fields: &str| format!(r#"{{"meta":[],"data":[{{{fields}}}],"rows":1}}"#);
    let good = format!(
        r#""version":"{NEW}","minute":1795773600,"requests":1,"errors_5xx":0,"slow":0,"very_slow":0,"approaching":0,"p95_ms":1,"stored_rows":1,"error_rows":0,"slow_rows":0"#
    );
    let cases: Vec<(HttpResponse, ErrorCheck)> = vec![
        (
            HttpResponse::new(500, "upstream timeout"),
            |e| matches!(e, AnalyticsError::Status { status: 500, detail } if detail == "upstream timeout"),
        ),
        (
            response(422, "analytics/error_envelope.json"),
            |e| matches!(e, AnalyticsError::Status { status: 422, detail } if detail == "Unknown function quantileExactWeightd"),
        ),
        (response(200, "analytics/error_envelope.json"), |e| {
            matches!(e, AnalyticsError::Rejected { .. })
        }),
        (
            HttpResponse::new(429, "").with_header("Retry-After", "9"),
            |e| {
                *e == AnalyticsError::RateLimited {
                    retry_after_secs: 9,
                }
            },
        ),
        (HttpResponse::new(429, ""), |e| {
            *e == AnalyticsError::RateLimited {
                retry_after_secs: 300,
            }
        }),
        (HttpResponse::new(200, ""), |e| {
            *e == AnalyticsError::NotJson
        }),
        (HttpResponse::new(200, "<html>"), |e| {
            *e == AnalyticsError::NotJson
        }),
        (HttpResponse::new(200, r#"{"meta":[],"rows":0}"#), |e| {
            *e == AnalyticsError::MissingData
        }),
        (HttpResponse::new(200, r#"{"data":"nope"}"#), |e| {
            *e == AnalyticsError::MissingData
        }),
        (HttpResponse::new(200, r#"{"data":[1]}"#), |e| {
            matches!(e, AnalyticsError::BadRow { index: 0, .. })
        }),
        (
            HttpResponse::new(
                200,
                row(&good.replace(r#""requests":1"#, r#""requests":"many""#)),
            ),
            |e| matches!(e, AnalyticsError::BadRow { why, .. } if why.contains("requests")),
        ),
        (
            HttpResponse::new(200, row(&good.replace(r#""slow":0,"#, ""))),
            |e| matches!(e, AnalyticsError::BadRow { why, .. } if why == "missing `slow`"),
        ),
        (
            HttpResponse::new(200, row(&good.replace(r#""approaching":0,"#, ""))),
            |e| matches!(e, AnalyticsError::BadRow { why, .. } if why == "missing `approaching`"),
        ),
        (
            HttpResponse::new(
                200,
                row(&good.replace(r#""errors_5xx":0"#, r#""errors_5xx":-1"#)),
            ),
            |e| matches!(e, AnalyticsError::BadRow { why, .. } if why.contains("negative")),
        ),
        (
            HttpResponse::new(
                200,
                row(&good.replace(r#""minute":1795773600"#, r#""minute":1795773600.5"#)),
            ),
            |e| matches!(e, AnalyticsError::BadRow { why, .. } if why.contains("minute")),
        ),
        (
            HttpResponse::new(
                200,
                row(&good.replace(&format!(r#""version":"{NEW}""#), r#""version":7"#)),
            ),
            |e| matches!(e, AnalyticsError::BadRow { why, .. } if why.contains("version")),
        ),
    ];
    assert!(parse_http_rows(&HttpResponse::new(200, row(&good))).is_ok());
    for (resp, check) in cases {
        let err = parse_http_rows(&resp).expect_err("must fail");
        assert!(check(&err), "{} {:?} -> {err:?}", resp.status, resp.body);
    }
}
