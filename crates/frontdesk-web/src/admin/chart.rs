//! The dashboard chart: sign-ups, sign-ins and failed sign-ins per day as a
//! server-rendered SVG (no script), built from numbers and dates only.

use std::fmt::Write;

use frontdesk_core::dashboard::Day;

const W: f64 = 720.0;
const H: f64 = 220.0;
const LEFT: f64 = 40.0;
const BOTTOM: f64 = 24.0;
const TOP: f64 = 10.0;

/// The series, their CSS class and legend label.
const SERIES: [(&str, &str); 3] = [
    ("fd-s-signups", "Sign-ups"),
    ("fd-s-signins", "Sign-ins"),
    ("fd-s-failed", "Failed sign-ins"),
];

fn value(d: &Day, series: usize) -> i64 {
    match series {
        0 => d.signups,
        1 => d.signins,
        _ => d.failed_signins,
    }
}

/// A line chart of the days, oldest first.
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
         aria-label=\"Sign-ups, sign-ins and failed sign-ins per day\" \
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
        if (days.len() - 1 - i) % 7 == 0 {
            let _ = write!(
                out,
                "<text class=\"fd-axis\" x=\"{:.1}\" y=\"{:.1}\" text-anchor=\"middle\">{}</text>",
                x(i),
                H - 6.0,
                d.date.format("%m-%d")
            );
        }
    }
    for (s, (class, label)) in SERIES.iter().enumerate() {
        let points: Vec<String> = days
            .iter()
            .enumerate()
            .map(|(i, d)| format!("{:.1},{:.1}", x(i), y(value(d, s))))
            .collect();
        let _ = write!(
            out,
            "<polyline class=\"{class}\" fill=\"none\" points=\"{}\"><title>{label}</title></polyline>",
            points.join(" ")
        );
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
    }
}
