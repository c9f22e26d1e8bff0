//! Inline SVG charts for the status page: time on x, one polyline per series, decision
//! points as numbered vertical lines, notes as ticks under the axis. Tooltips are SVG
//! `<title>` elements, so the charts need no script (the page runs under a strict CSP).

use super::html::{clock, esc};
use super::timeline::{Mark, Note, Point};
use crate::time::{Timestamp, MINUTE_MS};
use std::fmt::Write;

/// Width of every chart's coordinate system; the SVG scales to the page width.
const WIDTH: f64 = 520.0;
const LEFT: f64 = 44.0;
const RIGHT: f64 = 10.0;

/// One series.
pub struct Line<'a> {
    /// Legend text.
    pub label: &'a str,
    /// CSS class (`s-live`, `s-new`, ...).
    pub class: &'static str,
    pub points: &'a [Point],
    /// Drawn as a step function held until the end of the axis (traffic shares).
    pub step: bool,
}

/// One chart.
pub struct Chart<'a> {
    /// Accessible name and caption.
    pub title: &'a str,
    pub from: Timestamp,
    pub to: Timestamp,
    /// Top of the y axis (the bottom is 0).
    pub y_max: f64,
    /// Formats a y value for the axis labels.
    pub y_label: fn(f64) -> String,
    pub lines: Vec<Line<'a>>,
    /// Extra points drawn as dots only (p95 breaches).
    pub dots: Vec<(&'static str, &'a Point)>,
    pub marks: &'a [Mark],
    pub notes: &'a [Note],
    /// Small sparkline for the index: no y labels, no notes.
    pub compact: bool,
}

impl Chart<'_> {
    fn height(&self) -> f64 {
        if self.compact {
            56.0
        } else {
            180.0
        }
    }

    fn top(&self) -> f64 {
        if self.compact {
            6.0
        } else {
            20.0
        }
    }

    fn bottom(&self) -> f64 {
        self.height() - if self.compact { 14.0 } else { 26.0 }
    }

    fn x(&self, at: Timestamp) -> f64 {
        let span = (self.to.millis() - self.from.millis()).max(1) as f64;
        let frac = ((at.millis() - self.from.millis()) as f64 / span).clamp(0.0, 1.0);
        LEFT + frac * (WIDTH - LEFT - RIGHT)
    }

    fn y(&self, value: f64) -> f64 {
        let frac = if self.y_max > 0.0 {
            (value / self.y_max).clamp(0.0, 1.0)
        } else {
            0.0
        };
        self.bottom() - frac * (self.bottom() - self.top())
    }

    /// The chart as a `<figure>` with the SVG and an HTML legend.
    pub fn render(&self) -> String {
        let mut svg = String::new();
        let h = self.height();
        let _ = write!(
            svg,
            "<svg class=\"chart\" viewBox=\"0 0 {WIDTH} {h}\" role=\"img\" aria-label=\"{t}\" \
             xmlns=\"http://www.w3.org/2000/svg\"><title>{t}</title>",
            t = esc(self.title)
        );
        self.grid(&mut svg);
        for mark in self.marks {
            self.mark(&mut svg, mark);
        }
        if !self.compact {
            self.mark_labels(&mut svg);
        }
        let empty = self.lines.iter().all(|l| l.points.is_empty()) && self.dots.is_empty();
        if empty {
            let _ = write!(
                svg,
                "<text class=\"empty\" x=\"{}\" y=\"{}\" text-anchor=\"middle\">no data yet</text>",
                WIDTH / 2.0,
                (self.top() + self.bottom()) / 2.0
            );
        }
        for line in &self.lines {
            self.line(&mut svg, line);
        }
        for (class, p) in &self.dots {
            let _ = write!(
                svg,
                "<circle class=\"dot {class}\" cx=\"{:.1}\" cy=\"{:.1}\" r=\"3.5\"><title>{}</title></circle>",
                self.x(p.at),
                self.y(p.value),
                esc(&p.note)
            );
        }
        if !self.compact {
            for note in self.notes {
                let x = self.x(note.at);
                let y = self.bottom();
                let _ = write!(
                    svg,
                    "<rect class=\"note {}\" x=\"{:.1}\" y=\"{:.1}\" width=\"3\" height=\"6\"><title>{}</title></rect>",
                    note.tone,
                    x - 1.5,
                    y - 6.0,
                    esc(&note.text)
                );
            }
        }
        svg.push_str("</svg>");
        let mut legend = String::from("<ul class=\"legend\">");
        for line in &self.lines {
            let _ = write!(
                legend,
                "<li><span class=\"key {}\"></span>{}</li>",
                line.class,
                esc(line.label)
            );
        }
        legend.push_str("</ul>");
        format!(
            "<figure><figcaption>{}</figcaption>{svg}{legend}</figure>",
            esc(self.title)
        )
    }

    fn grid(&self, svg: &mut String) {
        let (left, right) = (LEFT, WIDTH - RIGHT);
        let fractions: &[f64] = if self.compact {
            &[0.0]
        } else {
            &[0.0, 0.5, 1.0]
        };
        for f in fractions {
            let value = self.y_max * f;
            let y = self.y(value);
            let _ = write!(
                svg,
                "<line class=\"grid\" x1=\"{left}\" y1=\"{y:.1}\" x2=\"{right}\" y2=\"{y:.1}\"/>"
            );
            if !self.compact {
                let _ = write!(
                    svg,
                    "<text x=\"{:.1}\" y=\"{:.1}\" text-anchor=\"end\">{}</text>",
                    left - 4.0,
                    y + 4.0,
                    esc(&(self.y_label)(value))
                );
            }
        }
        let label_y = self.height() - if self.compact { 2.0 } else { 8.0 };
        for at in time_ticks(self.from, self.to, if self.compact { 2 } else { 5 }) {
            let x = self.x(at);
            if !self.compact {
                let _ = write!(
                    svg,
                    "<line class=\"grid\" x1=\"{x:.1}\" y1=\"{:.1}\" x2=\"{x:.1}\" y2=\"{:.1}\"/>",
                    self.bottom(),
                    self.bottom() + 4.0
                );
            }
            // Labels at the edges are anchored inwards so they are not cut off.
            let anchor = if x > WIDTH - RIGHT - 20.0 {
                "end"
            } else if x < LEFT + 20.0 && self.compact {
                "start"
            } else {
                "middle"
            };
            let _ = write!(
                svg,
                "<text x=\"{x:.1}\" y=\"{label_y:.1}\" text-anchor=\"{anchor}\">{}</text>",
                clock(at)
            );
        }
    }

    fn mark(&self, svg: &mut String, mark: &Mark) {
        let x = self.x(mark.at);
        let _ = write!(
            svg,
            "<g class=\"mark {}\"><title>{} {} — {}</title>\
             <line x1=\"{x:.1}\" y1=\"{:.1}\" x2=\"{x:.1}\" y2=\"{:.1}\"/>",
            mark.tone,
            mark.number,
            esc(&mark.name),
            esc(&mark.summary),
            self.top(),
            self.bottom()
        );
        svg.push_str("</g>");
    }

    /// Numbers over the mark lines; marks closer than a label's width share one label
    /// (`1–3`), so a burst of events in one minute stays readable.
    fn mark_labels(&self, svg: &mut String) {
        const MIN_GAP: f64 = 24.0;
        let mut groups: Vec<(f64, &Mark, &Mark)> = Vec::new();
        for mark in self.marks {
            let x = self.x(mark.at);
            match groups.last_mut() {
                Some((first_x, _, last)) if x - *first_x < MIN_GAP => *last = mark,
                _ => groups.push((x, mark, mark)),
            }
        }
        for (x, first, last) in groups {
            let text = if first.number == last.number {
                first.number.to_string()
            } else {
                format!("{}–{}", first.number, last.number)
            };
            let _ = write!(
                svg,
                "<text class=\"mark-label {}\" x=\"{x:.1}\" y=\"{:.1}\" text-anchor=\"middle\">{text}</text>",
                last.tone,
                self.top() - 5.0
            );
        }
    }

    fn line(&self, svg: &mut String, line: &Line<'_>) {
        if line.points.is_empty() {
            return;
        }
        let mut coords: Vec<(f64, f64)> = Vec::new();
        for p in line.points {
            let (x, y) = (self.x(p.at), self.y(p.value));
            if line.step {
                if let Some(&(_, prev_y)) = coords.last() {
                    coords.push((x, prev_y));
                }
            }
            coords.push((x, y));
        }
        if line.step {
            if let Some(&(_, last_y)) = coords.last() {
                coords.push((self.x(self.to), last_y));
            }
        }
        let points: Vec<String> = coords
            .iter()
            .map(|(x, y)| format!("{x:.1},{y:.1}"))
            .collect();
        let _ = write!(
            svg,
            "<polyline class=\"{}\" points=\"{}\"><title>{}</title></polyline>",
            line.class,
            points.join(" "),
            esc(line.label)
        );
        if !line.step && !self.compact {
            for p in line.points {
                let _ = write!(
                    svg,
                    "<circle class=\"{}\" cx=\"{:.1}\" cy=\"{:.1}\" r=\"2\"><title>{}</title></circle>",
                    line.class,
                    self.x(p.at),
                    self.y(p.value),
                    esc(&p.note)
                );
            }
        }
    }
}

/// About `count` round instants (every 1, 2, 5, 10, 15, 30, 60 ... minutes) inside
/// `[from, to]`; the ends when no round instant fits.
fn time_ticks(from: Timestamp, to: Timestamp, count: i64) -> Vec<Timestamp> {
    let span_min = (to.millis() - from.millis()).max(MINUTE_MS) / MINUTE_MS;
    let step = [1, 2, 5, 10, 15, 30, 60, 120, 180, 360, 720, 1440]
        .into_iter()
        .find(|s| span_min / s < count)
        .unwrap_or(1440)
        * MINUTE_MS;
    let first = (from.millis() + step - 1).div_euclid(step) * step;
    let ticks: Vec<Timestamp> = (0..)
        .map(|i| Timestamp::from_millis(first + i * step))
        .take_while(|t| *t <= to)
        .collect();
    if ticks.is_empty() {
        vec![from, to]
    } else {
        ticks
    }
}

/// A round axis top at or above `max`: 1, 2 or 5 times a power of ten, never below `floor`.
pub fn nice_max(max: f64, floor: f64) -> f64 {
    let max = if max.is_finite() {
        max.max(floor)
    } else {
        floor
    };
    if max <= 0.0 {
        return 1.0;
    }
    let power = 10f64.powf(max.log10().floor());
    [1.0, 2.0, 5.0, 10.0]
        .into_iter()
        .map(|m| m * power)
        .find(|v| *v >= max * 0.999_999)
        .unwrap_or(10.0 * power)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nice_max_rounds_up_to_one_two_or_five() {
        assert_eq!(nice_max(0.013, 0.01), 0.02);
        assert_eq!(nice_max(0.0, 0.01), 0.01);
        assert_eq!(nice_max(42.0, 1.0), 50.0);
        assert_eq!(nice_max(100.0, 1.0), 100.0);
    }

    #[test]
    fn time_ticks_fall_on_round_minutes_inside_the_axis() {
        let from = Timestamp::from_millis(1_795_773_630_000); // 10:00:30
        let to = from.plus_minutes(32);
        let ticks = time_ticks(from, to, 5);
        assert!(ticks.iter().all(|t| *t >= from && *t <= to));
        assert!(ticks.iter().all(|t| t.millis() % (10 * MINUTE_MS) == 0));
        assert_eq!(ticks.len(), 3, "{ticks:?}");
    }
}
