//! A small SVG line chart for the project's own reports (docs/kv-cache.md): no plotting
//! dependency, deterministic output, so a regenerated figure diffs cleanly.

use std::fmt::Write;

/// One named line of (x, y) points, drawn in the order given.
#[derive(Clone, Debug)]
pub struct Series {
    pub name: String,
    pub points: Vec<(f64, f64)>,
}

/// A line chart: axes with ticks, one polyline per series, a legend.
#[derive(Clone, Debug)]
pub struct LineChart {
    pub title: String,
    pub x_label: String,
    pub y_label: String,
    /// Logarithmic x axis (depths spanning 0..128K read better on a log scale; x <= 0 is
    /// drawn at the left edge).
    pub log_x: bool,
    pub series: Vec<Series>,
}

const WIDTH: f64 = 840.0;
const HEIGHT: f64 = 420.0;
const LEFT: f64 = 70.0;
const RIGHT: f64 = 250.0;
const TOP: f64 = 40.0;
const BOTTOM: f64 = 55.0;
/// Colour-blind-safe palette (Okabe-Ito).
const COLOURS: [&str; 8] =
    ["#0072B2", "#E69F00", "#009E73", "#D55E00", "#CC79A7", "#56B4E9", "#F0E442", "#000000"];

impl LineChart {
    /// The chart as a standalone SVG document.
    pub fn to_svg(&self) -> String {
        let pts =
            self.series.iter().flat_map(|s| s.points.iter()).filter(|p| p.0.is_finite() && p.1.is_finite());
        let (mut x0, mut x1, mut y0, mut y1) = (f64::MAX, f64::MIN, f64::MAX, f64::MIN);
        for &(x, y) in pts {
            let x = self.tx(x);
            x0 = x0.min(x);
            x1 = x1.max(x);
            y0 = y0.min(y);
            y1 = y1.max(y);
        }
        if x0 > x1 {
            (x0, x1, y0, y1) = (0.0, 1.0, 0.0, 1.0);
        }
        let (y0, y1) = nice_range(y0, y1);
        if x1 - x0 < 1e-12 {
            x1 = x0 + 1.0;
        }
        let (pw, ph) = (WIDTH - LEFT - RIGHT, HEIGHT - TOP - BOTTOM);
        let sx = |x: f64| LEFT + (self.tx(x) - x0) / (x1 - x0) * pw;
        let sy = |y: f64| TOP + ph - (y - y0) / (y1 - y0) * ph;

        let mut s = String::new();
        let _ = writeln!(
            s,
            r#"<svg xmlns="http://www.w3.org/2000/svg" width="{WIDTH}" height="{HEIGHT}" viewBox="0 0 {WIDTH} {HEIGHT}" font-family="sans-serif" font-size="12">"#
        );
        let _ = writeln!(s, r#"<rect width="100%" height="100%" fill="white"/>"#);
        let _ = writeln!(
            s,
            r#"<text x="{}" y="22" font-size="15" text-anchor="middle">{}</text>"#,
            WIDTH / 2.0,
            esc(&self.title)
        );
        // Axes and grid.
        let _ = writeln!(
            s,
            r##"<rect x="{LEFT}" y="{TOP}" width="{pw}" height="{ph}" fill="none" stroke="#444"/>"##
        );
        for i in 0..=5 {
            let y = y0 + (y1 - y0) * i as f64 / 5.0;
            let py = sy(y);
            let _ = writeln!(
                s,
                r##"<line x1="{LEFT}" x2="{}" y1="{py:.1}" y2="{py:.1}" stroke="#ddd"/>"##,
                LEFT + pw
            );
            let _ = writeln!(
                s,
                r#"<text x="{}" y="{:.1}" text-anchor="end">{}</text>"#,
                LEFT - 6.0,
                py + 4.0,
                tick(y)
            );
        }
        for (label, x) in self.x_ticks(x0, x1) {
            let px = LEFT + (x - x0) / (x1 - x0) * pw;
            let _ = writeln!(
                s,
                r##"<line x1="{px:.1}" x2="{px:.1}" y1="{TOP}" y2="{}" stroke="#ddd"/>"##,
                TOP + ph
            );
            let _ = writeln!(
                s,
                r#"<text x="{px:.1}" y="{}" text-anchor="middle">{label}</text>"#,
                TOP + ph + 16.0
            );
        }
        let _ = writeln!(
            s,
            r#"<text x="{}" y="{}" text-anchor="middle">{}</text>"#,
            LEFT + pw / 2.0,
            HEIGHT - 12.0,
            esc(&self.x_label)
        );
        let _ = writeln!(
            s,
            r#"<text x="16" y="{}" text-anchor="middle" transform="rotate(-90 16 {})">{}</text>"#,
            TOP + ph / 2.0,
            TOP + ph / 2.0,
            esc(&self.y_label)
        );
        // Series and legend.
        for (i, series) in self.series.iter().enumerate() {
            let colour = COLOURS[i % COLOURS.len()];
            let path: Vec<String> = series
                .points
                .iter()
                .filter(|p| p.0.is_finite() && p.1.is_finite())
                .map(|&(x, y)| format!("{:.1},{:.1}", sx(x), sy(y)))
                .collect();
            let _ = writeln!(
                s,
                r#"<polyline fill="none" stroke="{colour}" stroke-width="2" points="{}"/>"#,
                path.join(" ")
            );
            for p in &path {
                let (cx, cy) = p.split_once(',').unwrap_or(("0", "0"));
                let _ = writeln!(s, r#"<circle cx="{cx}" cy="{cy}" r="2.5" fill="{colour}"/>"#);
            }
            let ly = TOP + 10.0 + 18.0 * i as f64;
            let lx = WIDTH - RIGHT + 12.0;
            let _ = writeln!(
                s,
                r#"<line x1="{lx}" x2="{}" y1="{ly}" y2="{ly}" stroke="{colour}" stroke-width="3"/>"#,
                lx + 18.0
            );
            let _ = writeln!(s, r#"<text x="{}" y="{}">{}</text>"#, lx + 24.0, ly + 4.0, esc(&series.name));
        }
        s.push_str("</svg>\n");
        s
    }

    /// x in axis space (log2 for a log axis; non-positive x pinned to log2(1) = 0).
    fn tx(&self, x: f64) -> f64 {
        if self.log_x {
            x.max(1.0).log2()
        } else {
            x
        }
    }

    /// Tick labels and their axis-space positions.
    fn x_ticks(&self, x0: f64, x1: f64) -> Vec<(String, f64)> {
        if self.log_x {
            // One tick per power of two, thinned to at most 9.
            let (a, b) = (x0.floor() as i64, x1.ceil() as i64);
            let step = ((b - a) / 8).max(1);
            (a..=b).step_by(step as usize).map(|e| (human(2f64.powi(e as i32)), e as f64)).collect()
        } else {
            let (a, b) = nice_range(x0, x1);
            (0..=6)
                .map(|i| a + (b - a) * i as f64 / 6.0)
                .filter(|&x| x >= x0 - 1e-9 && x <= x1 + 1e-9)
                .map(|x| (tick(x), x))
                .collect()
        }
    }
}

/// A y range padded to round numbers.
fn nice_range(lo: f64, hi: f64) -> (f64, f64) {
    let span = (hi - lo).abs().max(hi.abs() * 1e-3).max(1e-9);
    let step = 10f64.powf((span / 5.0).log10().floor());
    ((lo / step).floor() * step, (hi / step).ceil() * step)
}

fn tick(v: f64) -> String {
    if v.abs() >= 1000.0 {
        human(v)
    } else if (v - v.round()).abs() < 1e-9 {
        format!("{}", v.round())
    } else {
        format!("{v:.2}")
    }
}

/// 1024 -> "1K", 131072 -> "128K", 1048576 -> "1M".
fn human(v: f64) -> String {
    if v >= 1048576.0 && (v / 1048576.0).fract() == 0.0 {
        format!("{}M", v / 1048576.0)
    } else if v >= 1024.0 && (v / 1024.0).fract() == 0.0 {
        format!("{}K", v / 1024.0)
    } else if v >= 1000.0 {
        format!("{:.0}", v)
    } else {
        format!("{v}")
    }
}

fn esc(s: &str) -> String {
    s.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn chart(log_x: bool) -> LineChart {
        LineChart {
            title: "a <b>".into(),
            x_label: "x".into(),
            y_label: "y".into(),
            log_x,
            series: vec![
                Series { name: "one".into(), points: vec![(0.0, 1.0), (1024.0, 2.0), (8192.0, 4.0)] },
                Series { name: "two".into(), points: vec![(0.0, 3.0), (f64::NAN, 9.0), (8192.0, 0.5)] },
            ],
        }
    }

    #[test]
    fn every_finite_point_is_drawn_inside_the_plot() {
        for log_x in [false, true] {
            let svg = chart(log_x).to_svg();
            assert_eq!(svg.matches("<polyline").count(), 2);
            assert_eq!(svg.matches("<circle").count(), 5, "the NaN point is skipped");
            assert!(svg.contains("a &lt;b&gt;"));
            for c in svg.split("<circle cx=\"").skip(1) {
                let (cx, rest) = c.split_once('"').unwrap();
                let cy = rest.split('"').nth(1).unwrap();
                let (cx, cy): (f64, f64) = (cx.parse().unwrap(), cy.parse().unwrap());
                assert!((LEFT..=WIDTH - RIGHT).contains(&cx), "x {cx} outside the plot");
                assert!((TOP..=HEIGHT - BOTTOM).contains(&cy), "y {cy} outside the plot");
            }
        }
    }

    #[test]
    fn log_axis_ticks_are_powers_of_two() {
        let svg = chart(true).to_svg();
        assert!(svg.contains(">1K<") && svg.contains(">8K<"), "{svg}");
    }

    #[test]
    fn empty_chart_is_still_valid() {
        let c = LineChart {
            title: "t".into(),
            x_label: "x".into(),
            y_label: "y".into(),
            log_x: false,
            series: vec![],
        };
        let svg = c.to_svg();
        assert!(svg.starts_with("<svg") && svg.ends_with("</svg>\n"));
    }
}
