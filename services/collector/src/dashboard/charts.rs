//! Charts drawn on the server as inline SVG, so they need no script and no
//! other origin (the CSP allows neither). Each has a text alternative.

use maud::{Markup, html};
use scanfleet_result_store::TrendPoint;

const W: f64 = 560.0;
const H: f64 = 180.0;
const PAD: f64 = 30.0;

/// Mean compliance over time, 0–100 %.
pub fn trend(points: &[TrendPoint]) -> Markup {
    let summary = match (points.first(), points.last()) {
        (Some(a), Some(b)) => format!(
            "Mean compliance over {} buckets, from {:.0}% to {:.0}%",
            points.len(),
            a.compliance_percent,
            b.compliance_percent
        ),
        _ => "No completed scans in this period".to_owned(),
    };
    let n = points.len().max(2) as f64 - 1.0;
    let xy: Vec<(f64, f64)> = points
        .iter()
        .enumerate()
        .map(|(i, p)| {
            let x = PAD + (W - 2.0 * PAD) * (i as f64 / n);
            let y = H - PAD - (H - 2.0 * PAD) * (p.compliance_percent.clamp(0.0, 100.0) / 100.0);
            (x, y)
        })
        .collect();
    let line: Vec<String> = xy.iter().map(|(x, y)| format!("{x:.1},{y:.1}")).collect();
    html! {
        figure {
            svg role="img" aria-label=(summary) width=(W) height=(H) viewBox={"0 0 " (W) " " (H)} xmlns="http://www.w3.org/2000/svg" {
                title { (summary) }
                line x1=(PAD) y1=(H - PAD) x2=(W - PAD) y2=(H - PAD) stroke="#4a5360" {}
                line x1=(PAD) y1=(PAD) x2=(PAD) y2=(H - PAD) stroke="#4a5360" {}
                text x="2" y=(PAD + 4.0) font-size="11" fill="#1b1f24" { "100%" }
                text x="8" y=(H - PAD + 4.0) font-size="11" fill="#1b1f24" { "0%" }
                @if !line.is_empty() {
                    polyline points=(line.join(" ")) fill="none" stroke="#0b4f9c" stroke-width="2" {}
                    @for (x, y) in &xy { circle cx=(format!("{x:.1}")) cy=(format!("{y:.1}")) r="3" fill="#0b4f9c" {} }
                }
            }
            figcaption { (summary) }
        }
    }
}

/// Failed controls by severity, as bars.
pub fn severities(counts: [i64; 4]) -> Markup {
    let names = ["critical", "high", "medium", "low"];
    let colours = ["#7a0d10", "#a4161a", "#8a4b00", "#4a5360"];
    let max = counts.iter().copied().max().unwrap_or(0).max(1) as f64;
    let summary = names
        .iter()
        .zip(counts)
        .map(|(n, c)| format!("{c} {n}"))
        .collect::<Vec<_>>()
        .join(", ");
    html! {
        figure {
            svg role="img" aria-label={"Failed controls: " (summary)} width="360" height="130" viewBox="0 0 360 130" xmlns="http://www.w3.org/2000/svg" {
                title { "Failed controls: " (summary) }
                @for (i, ((name, count), colour)) in names.iter().zip(counts).zip(colours).enumerate() {
                    @let y = 8.0 + i as f64 * 30.0;
                    text x="0" y=(y + 15.0) font-size="13" fill="#1b1f24" { (name) }
                    rect x="70" y=(y) width=(format!("{:.1}", 240.0 * count as f64 / max)) height="20" fill=(colour) {}
                    text x=(format!("{:.1}", 76.0 + 240.0 * count as f64 / max)) y=(y + 15.0) font-size="13" fill="#1b1f24" { (count) }
                }
            }
            figcaption { "Failed controls by severity: " (summary) }
        }
    }
}
