//! A small SVG line chart: items/s against batch size (log scale), one line per backend.
//!
//! Drawn by hand rather than with `plotters`: plotters draws every axis and tick as its own
//! polyline, scales font sizes and, without a font backend, guesses text widths; tuned to this
//! chart it was not shorter than these lines, and it adds three crates.

use microtask::bench::Series;
use std::fmt::Write;

const W: f64 = 640.0;
const H: f64 = 400.0;
const LEFT: f64 = 80.0;
const RIGHT: f64 = 20.0;
const TOP: f64 = 40.0;
const BOTTOM: f64 = 50.0;
const COLOURS: [&str; 6] = [
    "#1f77b4", "#d62728", "#2ca02c", "#ff7f0e", "#9467bd", "#8c564b",
];

fn escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

/// Renders the chart; empty series are skipped.
pub fn svg(title: &str, series: &[Series]) -> String {
    let pts = series.iter().flat_map(|s| s.points.iter());
    let (mut x0, mut x1, mut y1) = (f64::MAX, f64::MIN, 0.0f64);
    for &(x, y) in pts {
        x0 = x0.min(x);
        x1 = x1.max(x);
        y1 = y1.max(y);
    }
    if x0 >= x1 {
        x1 = x0 * 10.0 + 1.0;
    }
    let y1 = if y1 > 0.0 { y1 * 1.1 } else { 1.0 };
    let (lx0, lx1) = (x0.max(1.0).log10(), x1.max(1.0).log10());
    let px =
        |x: f64| LEFT + (x.max(1.0).log10() - lx0) / (lx1 - lx0).max(1e-9) * (W - LEFT - RIGHT);
    let py = |y: f64| H - BOTTOM - y / y1 * (H - TOP - BOTTOM);
    let mut s = String::new();
    let _ = writeln!(
        s,
        r#"<svg xmlns="http://www.w3.org/2000/svg" width="{W}" height="{H}" font-family="sans-serif" font-size="12">"#
    );
    let _ = writeln!(s, r#"<rect width="100%" height="100%" fill="white"/>"#);
    let _ = writeln!(
        s,
        r#"<text x="{}" y="24" text-anchor="middle" font-size="15">{}</text>"#,
        W / 2.0,
        escape(title)
    );
    // Axes, with y ticks at fifths of the range and x ticks at powers of ten.
    let _ = writeln!(
        s,
        r#"<path d="M{LEFT},{TOP} V{} H{}" stroke="black" fill="none"/>"#,
        H - BOTTOM,
        W - RIGHT
    );
    for i in 0..=5 {
        let y = y1 * i as f64 / 5.0;
        let _ = writeln!(
            s,
            r#"<text x="{}" y="{}" text-anchor="end">{:.2} M</text>"#,
            LEFT - 6.0,
            py(y) + 4.0,
            y / 1e6
        );
    }
    let mut decade = 10f64.powf(lx0.floor());
    while decade <= x1 * 1.0001 {
        if decade >= x0 * 0.9999 {
            let _ = writeln!(
                s,
                r#"<text x="{}" y="{}" text-anchor="middle">{}</text>"#,
                px(decade),
                H - BOTTOM + 18.0,
                decade
            );
        }
        decade *= 10.0;
    }
    let _ = writeln!(
        s,
        r#"<text x="{}" y="{}" text-anchor="middle">batch size (items, log scale)</text>"#,
        (LEFT + W - RIGHT) / 2.0,
        H - 10.0
    );
    let _ = writeln!(
        s,
        r#"<text x="16" y="{}" transform="rotate(-90 16 {})" text-anchor="middle">items/s</text>"#,
        H / 2.0,
        H / 2.0
    );
    for (i, ser) in series.iter().filter(|s| !s.points.is_empty()).enumerate() {
        let colour = COLOURS[i % COLOURS.len()];
        let path: Vec<String> = ser
            .points
            .iter()
            .map(|&(x, y)| format!("{:.1},{:.1}", px(x), py(y)))
            .collect();
        let _ = writeln!(
            s,
            r#"<polyline points="{}" fill="none" stroke="{colour}" stroke-width="2"/>"#,
            path.join(" ")
        );
        for &(x, y) in &ser.points {
            let _ = writeln!(
                s,
                r#"<circle cx="{:.1}" cy="{:.1}" r="3" fill="{colour}"/>"#,
                px(x),
                py(y)
            );
        }
        let _ = writeln!(
            s,
            r#"<text x="{}" y="{}" fill="{colour}">{}</text>"#,
            LEFT + 10.0,
            TOP + 16.0 * (i + 1) as f64,
            escape(&ser.name)
        );
    }
    s.push_str("</svg>\n");
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn svg_has_one_line_per_series() {
        let s = svg(
            "t",
            &[
                Series {
                    name: "cpu".into(),
                    points: vec![(1e3, 1e6), (1e4, 2e6)],
                },
                Series {
                    name: "gpu <sw>".into(),
                    points: vec![(1e3, 5e5)],
                },
            ],
        );
        assert_eq!(s.matches("<polyline").count(), 2);
        assert!(s.contains("gpu &lt;sw&gt;"));
        assert!(s.ends_with("</svg>\n"));
    }
}
