//! A line chart as SVG, written by hand: categories along x (a suite's sizes or
//! models), time on a log scale along y, one line per series, gaps where a series
//! has no value (a backend that cannot run the row).

use std::fmt::Write;

/// One line of a chart.
pub struct Series {
    /// Its legend entry.
    pub label: String,
    /// Stroke colour.
    pub color: &'static str,
    /// Dashed with hollow dots (a prediction) or solid with filled dots (a measurement).
    pub dashed: bool,
    /// Its value at each category, in ms.
    pub values: Vec<Option<f64>>,
}

const W: f64 = 760.0;
const H: f64 = 440.0;
const LEFT: f64 = 80.0;
const RIGHT: f64 = 200.0;
const TOP: f64 = 44.0;
const BOTTOM: f64 = 64.0;

/// Time against category, log-scale time; every value is in ms.
pub fn line_chart(title: &str, x_label: &str, categories: &[String], series: &[Series]) -> String {
    let values = series.iter().flat_map(|s| s.values.iter().flatten()).copied().filter(|v| *v > 0.0);
    let (lo, hi) = values.fold((f64::INFINITY, 0f64), |(lo, hi), v| (lo.min(v), hi.max(v)));
    let (lo, hi) =
        if hi > 0.0 { (lo.log10().floor(), hi.log10().ceil().max(lo.log10().floor() + 1.0)) } else { (0.0, 1.0) };
    let plot_w = W - LEFT - RIGHT;
    let plot_h = H - TOP - BOTTOM;
    let x_of = |i: usize| LEFT + plot_w * (i as f64 + 0.5) / categories.len().max(1) as f64;
    let y_of = |ms: f64| TOP + plot_h * (hi - ms.log10()) / (hi - lo);
    let mut s = String::new();
    let _ = writeln!(
        s,
        r#"<svg xmlns="http://www.w3.org/2000/svg" width="{W}" height="{H}" viewBox="0 0 {W} {H}" font-family="sans-serif" font-size="13">"#
    );
    let _ = writeln!(s, r#"<rect width="{W}" height="{H}" fill="white"/>"#);
    let _ = writeln!(
        s,
        r#"<text x="{}" y="26" text-anchor="middle" font-size="16" font-weight="bold">{}</text>"#,
        LEFT + plot_w / 2.0,
        escape(title)
    );
    for decade in lo as i32..=hi as i32 {
        let y = y_of(10f64.powi(decade));
        let _ = writeln!(s, r##"<line x1="{LEFT}" x2="{}" y1="{y:.1}" y2="{y:.1}" stroke="#ddd"/>"##, LEFT + plot_w);
        let _ = writeln!(
            s,
            r#"<text x="{}" y="{:.1}" text-anchor="end">{}</text>"#,
            LEFT - 8.0,
            y + 4.0,
            decade_label(decade)
        );
    }
    let _ =
        writeln!(s, r##"<rect x="{LEFT}" y="{TOP}" width="{plot_w}" height="{plot_h}" fill="none" stroke="#444"/>"##);
    for (i, c) in categories.iter().enumerate() {
        let x = x_of(i);
        let _ = writeln!(
            s,
            r##"<line x1="{x:.1}" x2="{x:.1}" y1="{}" y2="{}" stroke="#444"/>"##,
            TOP + plot_h,
            TOP + plot_h + 5.0
        );
        let _ =
            writeln!(s, r#"<text x="{x:.1}" y="{}" text-anchor="middle">{}</text>"#, TOP + plot_h + 20.0, escape(c));
    }
    let _ = writeln!(
        s,
        r#"<text x="{}" y="{}" text-anchor="middle">{}</text>"#,
        LEFT + plot_w / 2.0,
        H - 16.0,
        escape(x_label)
    );
    let _ = writeln!(
        s,
        r#"<text transform="translate(18 {}) rotate(-90)" text-anchor="middle">time per inference (log scale)</text>"#,
        TOP + plot_h / 2.0
    );
    for (k, ser) in series.iter().enumerate() {
        let dash = if ser.dashed { r#" stroke-dasharray="6 4""# } else { "" };
        let mut runs: Vec<Vec<(f64, f64)>> = vec![vec![]];
        for (i, v) in ser.values.iter().enumerate() {
            match v.filter(|v| *v > 0.0) {
                Some(ms) => runs.last_mut().expect("one run").push((x_of(i), y_of(ms))),
                None => runs.push(vec![]),
            }
        }
        for run in runs.iter().filter(|r| !r.is_empty()) {
            let pts: Vec<String> = run.iter().map(|(x, y)| format!("{x:.1},{y:.1}")).collect();
            let _ = writeln!(
                s,
                r#"<polyline points="{}" fill="none" stroke="{}" stroke-width="2"{dash}/>"#,
                pts.join(" "),
                ser.color
            );
            // Predictions get hollow dots: a lone predicted point still shows, and a
            // measured dot under it shows through.
            let fill = if ser.dashed { "none" } else { ser.color };
            for (x, y) in run {
                let _ = writeln!(
                    s,
                    r#"<circle cx="{x:.1}" cy="{y:.1}" r="4" fill="{fill}" stroke="{}" stroke-width="2"/>"#,
                    ser.color
                );
            }
        }
        let ly = TOP + 14.0 + 24.0 * k as f64;
        let lx = LEFT + plot_w + 16.0;
        let _ = writeln!(
            s,
            r#"<line x1="{lx}" x2="{}" y1="{ly}" y2="{ly}" stroke="{}" stroke-width="2"{dash}/>"#,
            lx + 30.0,
            ser.color
        );
        let _ = writeln!(s, r#"<text x="{}" y="{}">{}</text>"#, lx + 38.0, ly + 4.0, escape(&ser.label));
    }
    s.push_str("</svg>\n");
    s
}

/// `10^d` ms as a readable time.
fn decade_label(d: i32) -> String {
    match d {
        d if d >= 3 => format!("{} s", 10f64.powi(d - 3)),
        d if d >= 0 => format!("{} ms", 10f64.powi(d)),
        d if d >= -3 => format!("{} µs", 10f64.powi(d + 3)),
        d => format!("1e{d} ms"),
    }
}

fn escape(t: &str) -> String {
    t.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decades_span_the_values_and_gaps_break_lines() {
        let s =
            Series { label: "fhe".into(), color: "red", dashed: false, values: vec![Some(0.5), None, Some(2000.0)] };
        let svg = line_chart("t", "n", &["4".into(), "8".into(), "16".into()], &[s]);
        assert!(svg.contains(">100 µs<") && svg.contains(">10 s<") && !svg.contains(">100 s<"));
        assert_eq!(svg.matches("<polyline").count(), 2);
        assert_eq!(svg.matches("<circle").count(), 2);
        let p = Series { label: "p".into(), color: "red", dashed: true, values: vec![None, Some(1.0), None] };
        assert!(
            line_chart("t", "n", &["a".into(), "b".into(), "c".into()], &[p]).contains(r#"fill="none" stroke="red""#)
        );
    }
}
