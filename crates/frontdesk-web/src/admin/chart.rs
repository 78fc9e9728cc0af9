//! The dashboard chart: sign-ups, sign-ins and failed sign-ins per day as a
//! server-rendered SVG (no script), built from numbers and dates only.

use std::fmt::Write;

use frontdesk_core::dashboard::Day;

const W: f64 = 720.0;
const H: f64 = 220.0;
const LEFT: f64 = 40.0;
const BOTTOM: f64 = 24.0;
const TOP: f64 = 10.0;

/// How a series is drawn besides its colour, so that the lines can be told
/// apart without seeing colour: a dash pattern and a marker on every day.
#[derive(Clone, Copy)]
pub enum Marker {
    Circle,
    Square,
    Triangle,
}

/// One line of the chart.
pub struct Series {
    /// CSS class (the colour).
    pub class: &'static str,
    pub label: &'static str,
    /// `stroke-dasharray`, or empty for a solid line.
    pub dash: &'static str,
    pub marker: Marker,
}

/// The series in the order of their columns in the table.
pub const SERIES: [Series; 3] = [
    Series {
        class: "fd-s-signups",
        label: "Sign-ups",
        dash: "",
        marker: Marker::Circle,
    },
    Series {
        class: "fd-s-signins",
        label: "Sign-ins",
        dash: "8 4",
        marker: Marker::Square,
    },
    Series {
        class: "fd-s-failed",
        label: "Failed sign-ins",
        dash: "2 3",
        marker: Marker::Triangle,
    },
];

pub fn value(d: &Day, series: usize) -> i64 {
    match series {
        0 => d.signups,
        1 => d.signins,
        _ => d.failed_signins,
    }
}

fn dash_attr(dash: &str) -> String {
    if dash.is_empty() {
        String::new()
    } else {
        format!(" stroke-dasharray=\"{dash}\"")
    }
}

/// The marker shape centred on (x, y).
fn marker(out: &mut String, m: Marker, x: f64, y: f64, extra: &str) {
    let _ = match m {
        Marker::Circle => write!(
            out,
            "<circle class=\"fd-m\" cx=\"{x:.1}\" cy=\"{y:.1}\" r=\"3.5\"{extra}/>"
        ),
        Marker::Square => write!(
            out,
            "<rect class=\"fd-m\" x=\"{:.1}\" y=\"{:.1}\" width=\"7\" height=\"7\"{extra}/>",
            x - 3.5,
            y - 3.5
        ),
        Marker::Triangle => write!(
            out,
            "<path class=\"fd-m\" d=\"M{x:.1} {:.1}L{:.1} {:.1}H{:.1}Z\"{extra}/>",
            y - 4.5,
            x + 4.5,
            y + 3.5,
            x - 4.5
        ),
    };
}

/// The legend's sample of a series: a short stretch of its line with its
/// marker, the same as on the chart (decorative: the label says the rest).
pub fn key(s: &Series) -> String {
    let mut out = format!(
        "<svg class=\"fd-key {}\" width=\"36\" height=\"12\" viewBox=\"0 0 36 12\" \
         aria-hidden=\"true\" focusable=\"false\"><line x1=\"0\" y1=\"6\" x2=\"36\" y2=\"6\"{}/>",
        s.class,
        dash_attr(s.dash)
    );
    marker(&mut out, s.marker, 18.0, 6.0, "");
    out.push_str("</svg>");
    out
}

/// A line chart of the days, oldest first. Each marker carries its day and
/// figure (`data-date`, `data-value`), the same figures as the table beside it.
pub fn svg(days: &[Day]) -> String {
    let max = days
        .iter()
        .flat_map(|d| [d.signups, d.signins, d.failed_signins])
        .max()
        .unwrap_or(0)
        .max(1);
    let n = days.len().max(2) as f64;
    let plot_w = W - LEFT - 10.0;
    let plot_h = H - BOTTOM - TOP;
    let x = |i: usize| LEFT + plot_w * i as f64 / (n - 1.0);
    let y = |v: i64| TOP + plot_h - plot_h * v as f64 / max as f64;
    let mut out = String::new();
    let _ = write!(
        out,
        "<svg class=\"fd-chart\" viewBox=\"0 0 {W} {H}\" role=\"img\" \
         aria-label=\"Sign-ups, sign-ins and failed sign-ins per day (the table below has the figures)\" \
         xmlns=\"http://www.w3.org/2000/svg\">"
    );
    // Grid lines at 0, half and the maximum.
    for v in [0, max / 2, max] {
        let yy = y(v);
        let _ = write!(
            out,
            "<line class=\"fd-grid\" x1=\"{LEFT}\" y1=\"{yy:.1}\" x2=\"{:.1}\" y2=\"{yy:.1}\"/>\
             <text class=\"fd-axis\" x=\"{:.1}\" y=\"{:.1}\" text-anchor=\"end\">{v}</text>",
            W - 10.0,
            LEFT - 4.0,
            yy + 4.0
        );
    }
    for (i, d) in days.iter().enumerate() {
        // Every seventh day, counted back from today so that today is labelled.
        if (days.len() - 1 - i).is_multiple_of(7) {
            let _ = write!(
                out,
                "<text class=\"fd-axis\" x=\"{:.1}\" y=\"{:.1}\" text-anchor=\"middle\">{}</text>",
                x(i),
                H - 6.0,
                d.date.format("%m-%d")
            );
        }
    }
    for (si, s) in SERIES.iter().enumerate() {
        let points: Vec<String> = days
            .iter()
            .enumerate()
            .map(|(i, d)| format!("{:.1},{:.1}", x(i), y(value(d, si))))
            .collect();
        let _ = write!(
            out,
            "<g class=\"{}\" data-series=\"{}\"><polyline fill=\"none\"{} points=\"{}\"/>",
            s.class,
            s.label,
            dash_attr(s.dash),
            points.join(" ")
        );
        for (i, d) in days.iter().enumerate() {
            let v = value(d, si);
            let data = format!(" data-date=\"{}\" data-value=\"{v}\"", d.date);
            marker(&mut out, s.marker, x(i), y(v), &data);
        }
        out.push_str("</g>");
    }
    out.push_str("</svg>");
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::NaiveDate;

    #[test]
    fn draws_one_line_per_series_and_scales_to_the_maximum() {
        let days: Vec<Day> = (0..30)
            .map(|i| Day {
                date: NaiveDate::from_ymd_opt(2026, 1, 1).expect("date")
                    + chrono::Duration::days(i),
                signups: i,
                signins: 0,
                failed_signins: 1,
            })
            .collect();
        let s = svg(&days);
        assert_eq!(s.matches("<polyline").count(), 3);
        assert!(s.contains(">29</text>"), "the axis shows the maximum");
        assert!(!s.contains("<script"));
        // Told apart by more than colour: two dash patterns beside one solid
        // line, and a marker of its own shape on every day of every line.
        assert_eq!(s.matches("stroke-dasharray=\"8 4\"").count(), 1);
        assert_eq!(s.matches("stroke-dasharray=\"2 3\"").count(), 1);
        assert_eq!(s.matches("<circle class=\"fd-m\"").count(), 30);
        assert_eq!(s.matches("<rect class=\"fd-m\"").count(), 30);
        assert_eq!(s.matches("<path class=\"fd-m\"").count(), 30);
        assert!(s.contains("data-date=\"2026-01-30\" data-value=\"29\""));
    }

    #[test]
    fn the_legend_draws_each_series_as_the_chart_does() {
        for s in &SERIES {
            let k = key(s);
            assert!(k.contains(s.class) && k.contains("aria-hidden=\"true\""));
            assert_eq!(k.contains("stroke-dasharray"), !s.dash.is_empty());
            assert!(k.contains("class=\"fd-m\""), "{k}");
        }
    }
}
