//! Charts drawn on the server as inline SVG: no chart library, no script.
//! Colours come from CSS classes (`a-allow`, `a-review`, `a-block`), so the
//! page's stylesheet decides contrast and the dark theme.

use std::fmt::Write;

use super::html::esc;

const ACTIONS: [&str; 3] = ["allow", "review", "block"];

/// Stacked bars of (allow, review, block) per bucket, with a y axis and a
/// few time labels; each bar has a `<title>` for its numbers.
pub fn stacked_bars(buckets: &[(i64, [i64; 3])], label: impl Fn(i64) -> String) -> String {
    let (w, h, left, bottom) = (720.0_f64, 220.0_f64, 44.0_f64, 22.0_f64);
    let max = buckets
        .iter()
        .map(|(_, c)| c.iter().sum::<i64>())
        .max()
        .unwrap_or(0)
        .max(1);
    let n = buckets.len().max(1) as f64;
    let slot = (w - left) / n;
    let bar = (slot * 0.8).max(1.0);
    let plot = h - bottom - 8.0;
    let mut s = String::with_capacity(buckets.len() * 260 + 800);
    let _ = write!(
        s,
        "<svg class=\"chart\" viewBox=\"0 0 {w} {h}\" role=\"img\" aria-label=\"Decisions over time by action\">"
    );
    for frac in [0.0, 0.5, 1.0] {
        let y = 8.0 + plot * (1.0 - frac);
        let v = (max as f64 * frac).round() as i64;
        let _ = write!(
            s,
            "<line class=\"grid\" x1=\"{left}\" x2=\"{w}\" y1=\"{y:.1}\" y2=\"{y:.1}\"/>\
             <text class=\"tick\" x=\"{:.1}\" y=\"{:.1}\" text-anchor=\"end\">{v}</text>",
            left - 4.0,
            y + 4.0
        );
    }
    let every = (buckets.len() / 6).max(1);
    for (i, (at, counts)) in buckets.iter().enumerate() {
        let x = left + slot * i as f64 + (slot - bar) / 2.0;
        let mut y = 8.0 + plot;
        let total: i64 = counts.iter().sum();
        let _ = write!(
            s,
            "<g><title>{}: {total} decisions ({} allow, {} review, {} block)</title>",
            esc(&label(*at)),
            counts[0],
            counts[1],
            counts[2]
        );
        for (k, count) in counts.iter().enumerate() {
            if *count == 0 {
                continue;
            }
            let bh = plot * *count as f64 / max as f64;
            y -= bh;
            let _ = write!(
                s,
                "<rect class=\"a-{}\" x=\"{x:.1}\" y=\"{y:.1}\" width=\"{bar:.1}\" height=\"{bh:.1}\"/>",
                ACTIONS[k]
            );
        }
        s.push_str("</g>");
        if i % every == 0 {
            let _ = write!(
                s,
                "<text class=\"tick\" x=\"{:.1}\" y=\"{:.1}\" text-anchor=\"middle\">{}</text>",
                x + bar / 2.0,
                h - 6.0,
                esc(&label(*at))
            );
        }
    }
    s.push_str("</svg>");
    s
}

/// Horizontal bars for (label, value) pairs, longest first as given.
pub fn hbars(items: &[(String, i64)], class: &str) -> String {
    let max = items.iter().map(|i| i.1).max().unwrap_or(0).max(1);
    let row = 26.0;
    let h = row * items.len().max(1) as f64;
    let mut s = String::new();
    let _ = write!(
        s,
        "<svg class=\"chart hbars\" viewBox=\"0 0 480 {h}\" role=\"img\" aria-label=\"Bar chart\">"
    );
    for (i, (name, value)) in items.iter().enumerate() {
        let y = row * i as f64;
        let bw = 200.0 * *value as f64 / max as f64;
        let _ = write!(
            s,
            "<text class=\"lbl\" x=\"0\" y=\"{:.1}\">{}</text>\
             <rect class=\"{class}\" x=\"230\" y=\"{:.1}\" width=\"{bw:.1}\" height=\"16\"/>\
             <text class=\"tick\" x=\"{:.1}\" y=\"{:.1}\">{value}</text>",
            y + 17.0,
            esc(&truncate(name, 30)),
            y + 5.0,
            236.0 + bw,
            y + 17.0
        );
    }
    s.push_str("</svg>");
    s
}

/// One bar split into the score's parts (device risk, each rule), with the
/// thresholds marked; parts past 1.0 are drawn beyond the clamp line.
pub fn score_parts(parts: &[(String, f64)], review: Option<f64>, block: Option<f64>) -> String {
    let total: f64 = parts.iter().map(|p| p.1.max(0.0)).sum();
    let scale_max = total.max(1.0);
    let w = 640.0;
    let mut s = String::new();
    let _ = write!(
        s,
        "<svg class=\"chart parts\" viewBox=\"0 0 {w} 44\" role=\"img\" aria-label=\"Score breakdown\">"
    );
    let mut x = 0.0;
    for (i, (name, value)) in parts.iter().enumerate() {
        if *value <= 0.0 {
            continue;
        }
        let pw = w * value / scale_max;
        let _ = write!(
            s,
            "<rect class=\"p{}\" x=\"{x:.1}\" y=\"4\" width=\"{pw:.1}\" height=\"24\"><title>{}: {value:.4}</title></rect>",
            i % 6,
            esc(name)
        );
        x += pw;
    }
    for (class, at) in [("thr", review), ("thr", block), ("clamp", Some(1.0))] {
        if let Some(at) = at {
            let tx = w * at / scale_max;
            // A label centred on the chart's edge would be cut in half.
            let anchor = if tx > w - 12.0 { "end" } else { "middle" };
            let _ = write!(
                s,
                "<line class=\"{class}\" x1=\"{tx:.1}\" x2=\"{tx:.1}\" y1=\"0\" y2=\"34\"/>\
                 <text class=\"tick\" x=\"{tx:.1}\" y=\"43\" text-anchor=\"{anchor}\">{at}</text>"
            );
        }
    }
    s.push_str("</svg>");
    s
}

fn truncate(s: &str, n: usize) -> String {
    if s.chars().count() <= n {
        s.to_owned()
    } else {
        let mut t: String = s.chars().take(n - 1).collect();
        t.push('…');
        t
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bars_escape_labels_and_draw_one_rect_per_nonzero_count() {
        let svg = stacked_bars(&[(0, [1, 0, 2]), (1, [0, 0, 0])], |_| "<t>".into());
        assert_eq!(svg.matches("<rect").count(), 2);
        assert!(svg.contains("&lt;t&gt;") && !svg.contains("<t>"));
        let parts = score_parts(
            &[("device".into(), 0.2), ("<r>".into(), 0.5)],
            Some(0.3),
            None,
        );
        assert!(parts.contains("&lt;r&gt;"));
    }
}
