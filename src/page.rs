//! The status page: pure server-rendered HTML with inline SVG for `GET /` (every active
//! and recent rollout) and `GET /rollouts/{script}` (one rollout in detail). No script, no
//! external resource: it works offline and under `CSP`. Every string is escaped.

mod html;
mod svg;
mod timeline;
mod words;

use crate::api::{ListQuery, PHASE_TAGS};
use crate::observe::VersionShare;
use crate::policy::{LookedEvents, Verdict};
use crate::rollout::{AuditEvent, EventKind, Phase, Stage};
use crate::status::RolloutView;
use crate::time::Timestamp;
use html::{ago, count, esc, minutes, path_segment, rate, share, short_id, time_tag};
use std::fmt::Write;
use svg::{nice_max, Chart, Line};
use timeline::Timeline;

/// The `Content-Security-Policy` header for both pages: nothing may load or run; inline
/// `<style>` and `style` attributes are allowed (`'unsafe-inline'` for styles only), images
/// only as `data:` URLs. The last three directives do not fall back to `default-src`.
pub const CSP: &str = "default-src 'none'; style-src 'unsafe-inline'; img-src data:; \
                       base-uri 'none'; form-action 'none'; frame-ancestors 'none'";

/// Every header the runtime should send with a page (the page needs a token, so it must
/// not be cached by anyone; it has no business in a frame or a referrer).
pub const HEADERS: [(&str, &str); 5] = [
    ("content-type", "text/html; charset=utf-8"),
    ("content-security-policy", CSP),
    ("x-content-type-options", "nosniff"),
    ("referrer-policy", "no-referrer"),
    ("cache-control", "no-store"),
];

/// Seconds between the page's own reloads (`<meta http-equiv="refresh">`, no script).
pub const REFRESH_SECONDS: u32 = 30;

const STYLE: &str = include_str!("page/style.css");

/// Transitions shown on an index card.
const CARD_TRANSITIONS: usize = 3;

/// Where an index page sits in the whole listing (`GET /?phase=&script=&active=&cursor=`).
#[derive(Clone, Debug, Default, PartialEq)]
pub struct IndexPage {
    /// The listing's filters and page size.
    pub query: ListQuery,
    /// Rollouts matching the filters, on every page.
    pub matching: usize,
    /// Where the next page starts, if there is one.
    pub next_cursor: Option<String>,
}

/// `GET /`: every rollout in `rollouts` (each with its audit events, oldest first; a recent
/// page is enough), active ones first, newest first within each group.
pub fn render_index(
    environment: &str,
    rollouts: &[(RolloutView, Vec<AuditEvent>)],
    now: Timestamp,
) -> String {
    render_index_page(environment, rollouts, None, now)
}

/// `render_index` for one page of a longer listing: its filters as links (the page runs no
/// script and may post no form), how many match, and a link to the next page.
pub fn render_index_page(
    environment: &str,
    rollouts: &[(RolloutView, Vec<AuditEvent>)],
    page: Option<&IndexPage>,
    now: Timestamp,
) -> String {
    let mut sorted: Vec<&(RolloutView, Vec<AuditEvent>)> = rollouts.iter().collect();
    sorted.sort_by_key(|(v, _)| (v.terminal, std::cmp::Reverse(v.started_at)));
    let active = sorted.iter().filter(|(v, _)| !v.terminal).count();
    let recent = sorted.len() - active;
    let mut body = format!(
        "<header><h1>rollout-gate · {}</h1><p class=\"sub\">{active} active · {recent} recent · \
         updated {} UTC · refreshes every {REFRESH_SECONDS} s</p></header>",
        esc(environment),
        time_tag(now)
    );
    if let Some(page) = page {
        body.push_str(&filters(page));
    }
    if sorted.is_empty() && page.is_some_and(|p| p.matching > 0 || p.query != ListQuery::first()) {
        body.push_str(
            "<section class=\"card\"><p class=\"story\">No rollouts match.</p></section>",
        );
    } else if sorted.is_empty() {
        body.push_str(
            "<section class=\"card\"><p class=\"story\">No rollouts yet.</p><p>CI starts one with \
             <code>POST /v1/rollouts</code> after <code>wrangler versions upload</code> \
             (docs/ci.md).</p></section>",
        );
    }
    for (title, terminal) in [("Active", false), ("Recent", true)] {
        let group: Vec<_> = sorted
            .iter()
            .filter(|(v, _)| v.terminal == terminal)
            .collect();
        if group.is_empty() {
            continue;
        }
        let _ = write!(body, "<h2>{title}</h2>");
        for (view, events) in group {
            body.push_str(&card(view, events, now));
        }
    }
    if let Some(next) = page.and_then(|p| p.next_cursor.as_deref().map(|c| (p, c))) {
        let (page, cursor) = next;
        let _ = write!(
            body,
            "<p class=\"sub\"><a href=\"/?{}\">next page →</a></p>",
            esc(&page.query.to_query(Some(cursor)))
        );
    }
    layout(&format!("rollout-gate · {environment}"), &body)
}

/// The listing's filters as links, the current one marked, and how many match.
fn filters(page: &IndexPage) -> String {
    let mut out = format!("<nav class=\"sub\">{} matching · ", page.matching);
    let choices: Vec<(String, ListQuery)> = [
        ("all", None),
        ("active", Some(true)),
        ("finished", Some(false)),
    ]
    .into_iter()
    .map(|(label, active)| {
        (
            label.to_string(),
            ListQuery {
                active,
                ..ListQuery::first()
            },
        )
    })
    .chain(PHASE_TAGS.iter().map(|tag| {
        (
            tag.replace('_', " "),
            ListQuery {
                phase: Some((*tag).to_string()),
                ..ListQuery::first()
            },
        )
    }))
    .collect();
    let links: Vec<String> = choices
        .into_iter()
        .map(|(label, query)| {
            let current = query.phase == page.query.phase && query.active == page.query.active;
            if current {
                format!("<strong>{}</strong>", esc(&label))
            } else {
                format!(
                    "<a href=\"/?{}\">{}</a>",
                    esc(&query.to_query(None)),
                    esc(&label)
                )
            }
        })
        .collect();
    out.push_str(&links.join(" · "));
    out.push_str("</nav>");
    out
}

/// `GET /rollouts/{script}`: one rollout with its charts, reasons and audit log (`events`,
/// any order; the rollout's own events are picked by version id).
pub fn render_rollout(
    environment: &str,
    view: &RolloutView,
    events: &[AuditEvent],
    now: Timestamp,
) -> String {
    let tl = Timeline::read(view, events, now);
    let mut body = format!(
        "<nav><a href=\"/\">← all rollouts</a></nav><header><h1>{} {}</h1>\
         <p class=\"sub\">{} · updated {} UTC · refreshes every {REFRESH_SECONDS} s</p></header>",
        esc(&view.script),
        badges(view),
        esc(environment),
        time_tag(now)
    );
    body.push_str("<section class=\"card\">");
    body.push_str(&story(view));
    body.push_str(&facts(view, events, now));
    body.push_str("</section><h2>Last verdicts</h2><section class=\"card\">");
    body.push_str(&verdicts(view));
    body.push_str("</section><h2>Timeline</h2><section class=\"card\">");
    body.push_str(&charts(&tl));
    body.push_str(&marks_list(&tl));
    body.push_str("</section>");
    body.push_str(&steer(view));
    body.push_str(&audit_log(view, events));
    layout(&format!("{} · rollout-gate", view.script), &body)
}

fn layout(title: &str, body: &str) -> String {
    format!(
        "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\">\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\
         <meta http-equiv=\"refresh\" content=\"{REFRESH_SECONDS}\">\
         <meta name=\"referrer\" content=\"no-referrer\">\
         <title>{}</title><style>{STYLE}</style></head><body><main>{body}\
         <footer>rollout-gate · <a href=\"/openapi.json\">API description</a> · \
         <a href=\"/healthz\">gate health</a> · times in UTC</footer></main></body></html>",
        esc(title)
    )
}

fn badges(view: &RolloutView) -> String {
    let mut out = format!(
        "<span class=\"badge {}\">{}</span>",
        words::phase_tone(&view.phase),
        esc(view.phase_name)
    );
    if view.dry_run {
        out.push_str(" <span class=\"badge warn\">dry run</span>");
    }
    out
}

fn card(view: &RolloutView, events: &[AuditEvent], now: Timestamp) -> String {
    let tl = Timeline::read(view, events, now);
    let mut out = format!(
        "<section class=\"card\"><h3><a href=\"/rollouts/{}\">{}</a> {}</h3>",
        path_segment(&view.script),
        esc(&view.script),
        badges(view)
    );
    out.push_str(&story(view));
    out.push_str(&facts(view, events, now));
    out.push_str(&verdicts(view));
    out.push_str(&sparkline(&tl));
    let transitions: Vec<&timeline::Mark> = tl.marks.iter().rev().take(CARD_TRANSITIONS).collect();
    if !transitions.is_empty() {
        out.push_str("<ul class=\"legend\">");
        for m in transitions.into_iter().rev() {
            let _ = write!(
                out,
                "<li>{} <span class=\"{}\">{}</span></li>",
                time_tag(m.at),
                m.tone,
                esc(&m.name)
            );
        }
        out.push_str("</ul>");
    }
    out.push_str("</section>");
    out
}

fn story(view: &RolloutView) -> String {
    let (headline, mut lines) = words::phase_story(view);
    if view.dry_run {
        lines.push(
            "Dry run: every decision is computed and reported, no deployment is changed.".into(),
        );
    }
    let mut out = format!("<p class=\"story\">{}</p>", esc(&headline));
    if !lines.is_empty() {
        out.push_str("<ul class=\"why\">");
        for line in lines {
            let _ = write!(out, "<li>{}</li>", esc(&line));
        }
        out.push_str("</ul>");
    }
    out
}

fn facts(view: &RolloutView, events: &[AuditEvent], now: Timestamp) -> String {
    let mut out = String::from("<dl class=\"facts\">");
    let mut row = |name: &str, html: String| {
        let _ = write!(out, "<dt>{}</dt><dd>{html}</dd>", esc(name));
    };
    let sha = view.git_sha.as_ref().map_or(String::new(), |s| {
        format!(
            " · git <code>{}</code>",
            esc(&s.chars().take(12).collect::<String>())
        )
    });
    row(
        "versions",
        format!(
            "new {} · stable {}{sha}",
            short_id(&view.version_id),
            short_id(&view.baseline_version_id)
        ),
    );
    if let Some(step) = &view.step {
        row(
            "step",
            format!(
                "{} of {} at {} · dwell {}",
                step.number,
                step.of,
                share(step.percent),
                minutes(i64::from(step.dwell_minutes))
            ),
        );
    }
    row("live split", split(view, &view.live_split));
    if view.write_pending || view.intended_split != view.live_split {
        let pending = if view.write_pending {
            " <span class=\"warn\">(write pending)</span>"
        } else {
            ""
        };
        row(
            "intended split",
            format!("{}{pending}", split(view, &view.intended_split)),
        );
    }
    if view.terminal {
        let ended = events
            .iter()
            .filter(|e| e.version_id.eq_ignore_ascii_case(&view.version_id))
            .map(|e| e.at)
            .max()
            .unwrap_or(view.started_at);
        row(
            "ended",
            format!("{} ({})", time_tag(ended), ago(ended, now)),
        );
    } else {
        row("on step", minutes(view.minutes_on_step));
    }
    row(
        "started",
        format!(
            "{} ({})",
            time_tag(view.started_at),
            ago(view.started_at, now)
        ),
    );
    if let Some(decision) = &view.last_decision {
        let (head, lines) = words::decision(decision);
        let mut html = esc(&head);
        if !lines.is_empty() {
            html.push_str("<ul class=\"why\">");
            for line in lines {
                let _ = write!(html, "<li>{}</li>", esc(&line));
            }
            html.push_str("</ul>");
        }
        row("last decision", html);
    }
    if let Some(message) = &view.message {
        row("CI message", esc(message));
    }
    if let Some(code) = &view.slack.dead_webhook {
        row(
            "Slack",
            format!(
                "<span class=\"bad\">webhook dead ({}); {} message(s) held</span>",
                esc(code),
                view.slack.pending
            ),
        );
    } else if view.slack.pending > 0 {
        row(
            "Slack",
            format!("{} message(s) waiting to be sent", view.slack.pending),
        );
    }
    out.push_str("</dl>");
    out
}

/// A split as a bar and as words, naming which side is new and which is stable.
fn split(view: &RolloutView, shares: &[VersionShare]) -> String {
    if shares.is_empty() {
        return "<span class=\"muted\">unknown</span>".to_string();
    }
    let mut bar = String::from("<div class=\"bar\">");
    let mut text = Vec::new();
    for s in shares {
        let is_new = s.version_id.eq_ignore_ascii_case(&view.version_id);
        let role = if is_new {
            "new"
        } else if s.version_id.eq_ignore_ascii_case(&view.baseline_version_id) {
            "stable"
        } else {
            "other"
        };
        let class = if is_new { "new" } else { "old" };
        let width = s.percent.clamp(0.0, 100.0);
        let _ = write!(
            bar,
            "<span class=\"{class}\" style=\"width:{width:.2}%\" title=\"{role} {}\"></span>",
            esc(&share(s.percent))
        );
        text.push(format!(
            "{role} {} {}",
            short_id(&s.version_id),
            esc(&share(s.percent))
        ));
    }
    bar.push_str("</div>");
    format!("{bar}{}", text.join(" · "))
}

fn verdicts(view: &RolloutView) -> String {
    let Some(a) = &view.last_assessment else {
        return "<p class=\"muted\">No verdicts yet: no tick has judged evidence.</p>".to_string();
    };
    let window = format!(
        "trailing window: new {}/{} 5xx ({}), old {}/{} ({})",
        count(a.window.new.errors),
        count(a.window.new.requests),
        rate(a.window.new.errors, a.window.new.requests),
        count(a.window.old.errors),
        count(a.window.old.requests),
        rate(a.window.old.errors, a.window.old.requests),
    );
    // Each look after its signal's numbers: 5xx looks on the 5xx row, the rest on the
    // latency row, named where the row's name does not say what they count.
    let looks = |errors: bool| {
        a.looks
            .iter()
            .filter(|(row, _)| (row.parts().1 == LookedEvents::Errors) == errors)
            .map(|(row, look)| match row.parts().1 {
                LookedEvents::Errors | LookedEvents::Slow => format!(" · {look}"),
                events => format!(" · {}: {look}", events.label()),
            })
            .collect::<String>()
    };
    let errors_numbers = match &a.errors_test {
        Some(t) => format!("{} · {window}", words::test_numbers(t)),
        None => window,
    } + &looks(true);
    let latency_numbers = a.slow_test.as_ref().map_or(String::new(), |t| {
        format!("slow requests: {}", words::test_numbers(t))
    }) + &looks(false);
    let mut rows = vec![
        ("/healthz", &a.healthz, String::new()),
        ("5xx", &a.errors, errors_numbers),
        ("latency", &a.latency, latency_numbers),
    ];
    if let Some(queue) = &a.queue {
        rows.push(("queue", queue, String::new()));
    }
    let mut out = String::from(
        "<div class=\"scroll\"><table class=\"verdicts stack\"><thead><tr><th>signal</th>\
         <th>verdict</th><th>numbers</th></tr></thead><tbody>",
    );
    for (name, verdict, numbers) in rows {
        let tone = match verdict {
            Verdict::Healthy => "ok",
            Verdict::Unhealthy { .. } => "bad",
            Verdict::Inconclusive { .. } => "warn",
        };
        let _ = write!(
            out,
            "<tr><td>{}</td><td class=\"{tone}\">{}</td><td class=\"what\">{}</td></tr>",
            esc(name),
            esc(&verdict.to_string()),
            esc(&numbers)
        );
    }
    out.push_str("</tbody></table></div>");
    out
}

fn percent_label(v: f64) -> String {
    format!("{v:.0}%")
}

fn rate_label(v: f64) -> String {
    let p = v * 100.0;
    if p >= 1.0 || p == 0.0 {
        format!("{p:.0}%")
    } else {
        format!("{p:.1}%")
    }
}

fn ms_label(v: f64) -> String {
    format!("{v:.0} ms")
}

fn split_chart<'a>(tl: &'a Timeline, compact: bool) -> Chart<'a> {
    Chart {
        title: "new version's share of traffic",
        from: tl.from,
        to: tl.to,
        y_max: 100.0,
        y_label: percent_label,
        lines: vec![
            Line {
                label: "live",
                class: "s-live",
                points: &tl.live,
                step: true,
            },
            Line {
                label: "intended",
                class: "s-intended",
                points: &tl.intended,
                step: true,
            },
        ],
        dots: Vec::new(),
        marks: &tl.marks,
        notes: &[],
        compact,
    }
}

fn sparkline(tl: &Timeline) -> String {
    split_chart(tl, true).render()
}

fn charts(tl: &Timeline) -> String {
    let max_of = |series: &[&[timeline::Point]]| {
        series
            .iter()
            .flat_map(|s| s.iter().map(|p| p.value))
            .fold(0.0, f64::max)
    };
    let errors_max = nice_max(max_of(&[&tl.errors_new, &tl.errors_old]), 0.01);
    let slow_max = nice_max(max_of(&[&tl.slow_new, &tl.slow_old]), 0.05);
    let mut out = split_chart(tl, false).render();
    out.push_str(&version_chart(
        tl,
        "5xx rate per version (trailing window)",
        (errors_max, rate_label),
        (&tl.errors_old, &tl.errors_new),
        &tl.notes,
    ));
    out.push_str(&version_chart(
        tl,
        "latency: share of requests slower than the p95 ceiling (trailing window)",
        (slow_max, rate_label),
        (&tl.slow_old, &tl.slow_new),
        &[],
    ));
    if !tl.p95_new.is_empty() || !tl.p95_old.is_empty() {
        let top = nice_max(max_of(&[&tl.p95_new, &tl.p95_old]), 1.0);
        out.push_str(&version_chart(
            tl,
            "p95 latency per version (trailing window, ms)",
            (top, ms_label),
            (&tl.p95_old, &tl.p95_new),
            &[],
        ));
    }
    if !tl.p95_breaches.is_empty() {
        let points: Vec<&timeline::Point> = tl.p95_breaches.iter().map(|(p, _)| p).collect();
        let limit = tl.p95_breaches.iter().map(|(_, l)| *l).fold(0.0, f64::max);
        let top = nice_max(points.iter().map(|p| p.value).fold(limit, f64::max), 0.05);
        out.push_str(
            &Chart {
                title: "new version's share of requests over the p95 ceiling where it broke it",
                from: tl.from,
                to: tl.to,
                y_max: top,
                y_label: rate_label,
                lines: Vec::new(),
                dots: points.into_iter().map(|p| ("s-new", p)).collect(),
                marks: &tl.marks,
                notes: &[],
                compact: false,
            }
            .render(),
        );
    }
    out
}

/// One series per version over the rollout's timeline: the stable version first, so the new
/// one is drawn on top where they meet. `y` is the axis top and its label format.
fn version_chart(
    tl: &Timeline,
    title: &str,
    y: (f64, fn(f64) -> String),
    (old, new): (&[timeline::Point], &[timeline::Point]),
    notes: &[timeline::Note],
) -> String {
    Chart {
        title,
        from: tl.from,
        to: tl.to,
        y_max: y.0,
        y_label: y.1,
        lines: vec![
            Line {
                label: "stable version",
                class: "s-old",
                points: old,
                step: false,
            },
            Line {
                label: "new version",
                class: "s-new",
                points: new,
                step: false,
            },
        ],
        dots: Vec::new(),
        marks: &tl.marks,
        notes,
        compact: false,
    }
    .render()
}

fn marks_list(tl: &Timeline) -> String {
    if tl.marks.is_empty() {
        return String::new();
    }
    let mut out = String::from("<ol class=\"marks\">");
    for m in &tl.marks {
        let _ = write!(
            out,
            "<li>{} <span class=\"{}\">{}</span>: {}</li>",
            time_tag(m.at),
            m.tone,
            esc(&m.name),
            esc(&m.summary)
        );
    }
    if !tl.notes.is_empty() {
        out.push_str("</ol><p class=\"muted\">Flags under the 5xx chart:</p><ul class=\"why\">");
        for n in &tl.notes {
            let _ = write!(out, "<li class=\"{}\">{}</li>", n.tone, esc(&n.text));
        }
        out.push_str("</ul>");
        return out;
    }
    out.push_str("</ol>");
    out
}

/// The operator commands that apply to this phase, as copy-paste `curl` lines, and the
/// `wrangler tail` command for the script (its full Worker name, so no `--env`: see
/// `GateMessage::tail_command`).
fn steer(view: &RolloutView) -> String {
    let stage = view.phase.stage();
    let drifted = matches!(view.phase, Phase::Drifted { .. });
    let commands = [
        (
            "pause",
            matches!(
                view.phase,
                Phase::Preflight | Phase::Ramping { .. } | Phase::Baking
            ),
        ),
        (
            "resume",
            matches!(
                view.phase,
                Phase::Paused {
                    resumable: true,
                    ..
                } | Phase::Drifted { .. }
            ),
        ),
        (
            "promote",
            matches!(stage, Some(Stage::Ramping { .. } | Stage::Baking)) && !drifted,
        ),
        ("abort", stage.is_some()),
    ];
    let script = path_segment(&view.script);
    let mut out = String::from("<details><summary>Steer this rollout</summary>");
    let available: Vec<&str> = commands
        .iter()
        .filter(|(_, ok)| *ok)
        .map(|(c, _)| *c)
        .collect();
    if available.is_empty() {
        out.push_str("<p>The rollout is over; no command applies.</p>");
    } else {
        out.push_str("<p>With the hook token in <code>$HOOK_TOKEN</code> and this gate's URL in <code>$GATE</code>:</p><pre>");
        for command in available {
            let _ = writeln!(
                out,
                "curl -sS -X POST -H \"Authorization: Bearer $HOOK_TOKEN\" \\\n  \
                 -H 'Content-Type: application/json' -d '{{\"by\":\"you\",\"reason\":\"why\"}}' \\\n  \
                 \"$GATE/v1/rollouts/{script}/{command}\""
            );
        }
        out.push_str("</pre>");
    }
    let _ = write!(
        out,
        "<p>Live logs of the script:</p><pre>wrangler tail {}</pre>\
         <p>Audit log as JSON:</p><pre>curl -sS -H \"Authorization: Bearer $HOOK_TOKEN\" \
         \"$GATE/v1/rollouts/{script}/events?limit=500\"</pre></details>",
        esc(&view.script)
    );
    out
}

fn audit_log(view: &RolloutView, events: &[AuditEvent]) -> String {
    let mut own: Vec<&AuditEvent> = events
        .iter()
        .filter(|e| e.version_id.eq_ignore_ascii_case(&view.version_id))
        .collect();
    own.sort_by_key(|e| e.at);
    let transitions: Vec<&&AuditEvent> = own.iter().filter(|e| e.kind != EventKind::Tick).collect();
    let mut out = String::from("<h2>Decisions</h2>");
    out.push_str(&events_table(transitions.iter().map(|e| **e)));
    let _ = write!(
        out,
        "<details><summary>Full audit log ({} events, every tick)</summary>",
        own.len()
    );
    out.push_str(&events_table(own.iter().copied()));
    out.push_str("</details>");
    out
}

fn events_table<'a>(events: impl Iterator<Item = &'a AuditEvent>) -> String {
    let mut out = String::from(
        "<div class=\"scroll\"><table class=\"audit stack\"><thead><tr><th>time</th><th>event</th>\
         <th>phase</th><th>what and why</th></tr></thead><tbody>",
    );
    let mut any = false;
    for e in events {
        any = true;
        let mut why = esc(&e.summary);
        if !e.details.is_empty() {
            why.push_str("<ul class=\"why\">");
            for d in &e.details {
                let _ = write!(why, "<li>{}</li>", esc(d));
            }
            why.push_str("</ul>");
        }
        let _ = write!(
            out,
            "<tr><td class=\"when\">{}</td><td class=\"{}\">{}</td><td>{}</td><td class=\"what\">{why}</td></tr>",
            time_tag(e.at),
            words::event_tone(&e.kind),
            esc(&words::event_name(&e.kind)),
            esc(e.phase.name()),
        );
    }
    if !any {
        out.push_str("<tr><td colspan=\"4\" class=\"muted\">no events</td></tr>");
    }
    out.push_str("</tbody></table></div>");
    out
}

#[cfg(test)]
mod tests;
