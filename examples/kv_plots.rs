//! Renders the KV-cache figures of docs/kv-cache.md from the JSON that `fovea` itself wrote.
//!
//! Usage: `cargo run --release --example kv_plots -- DATA_DIR OUT_DIR`
//!
//! DATA_DIR holds the files `benches/kv-evidence.sh` writes:
//! - `ppl-<model>-<mode>-b<B>.json` (`fovea perplexity --streaming --json`; `full` has no `-b<B>`):
//!   one chart per model and budget, perplexity per 1K-token bucket against position;
//! - `bench-<model>-<mode>[-b<B>[-<depth>]].json` (`fovea bench --json` with several depths): one
//!   chart per model, generation tokens/s against depth (files of one mode and budget are joined).
//!
//! Files that are missing are skipped; a file that is present but unreadable is an error.

use std::collections::BTreeMap;
use std::path::Path;

use fovea_suite::svg_chart::{LineChart, Series};
use serde_json::Value;

const MODES: [&str; 4] = ["full", "window", "dilated", "fovea"];

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [data, out] = args.as_slice() else {
        eprintln!("usage: kv_plots DATA_DIR OUT_DIR");
        std::process::exit(2);
    };
    if let Err(e) = run(Path::new(data), Path::new(out)) {
        eprintln!("error: {e}");
        std::process::exit(1);
    }
}

fn run(data: &Path, out: &Path) -> Result<(), String> {
    let mut names: Vec<String> = std::fs::read_dir(data)
        .map_err(|e| format!("{}: {e}", data.display()))?
        .filter_map(|e| e.ok()?.file_name().into_string().ok())
        .filter(|n| n.ends_with(".json"))
        .collect();
    // Fewer name parts first, so a mode's main file comes before its extra-depth runs
    // (`bench-m-fovea-b512.json` before `bench-m-fovea-b512-128k.json`).
    names.sort_by_key(|n| (n.split('-').count(), n.clone()));
    std::fs::create_dir_all(out).map_err(|e| format!("{}: {e}", out.display()))?;

    // model -> budget -> mode -> buckets
    let mut ppl: BTreeMap<String, BTreeMap<usize, Vec<Series>>> = BTreeMap::new();
    let mut full: BTreeMap<String, Series> = BTreeMap::new();
    let mut speed: BTreeMap<String, Vec<Series>> = BTreeMap::new();
    for name in &names {
        let stem = &name[..name.len() - ".json".len()];
        let parts: Vec<&str> = stem.split('-').collect();
        let v = read(&data.join(name))?;
        match parts.as_slice() {
            ["ppl", model, "full"] => {
                full.insert(model.to_string(), buckets(&v, "full", name)?);
            }
            ["ppl", model, mode, b] if MODES.contains(mode) => push_ppl(&mut ppl, model, b, mode, &v, name)?,
            ["bench", model, mode] if MODES.contains(mode) => {
                speed.entry(model.to_string()).or_default().push(tg_by_depth(&v, mode, name)?);
            }
            ["bench", model, mode, b, ..] if MODES.contains(mode) => {
                let label = format!("{mode} (B={})", b.trim_start_matches('b'));
                let new = tg_by_depth(&v, &label, name)?;
                let lines = speed.entry(model.to_string()).or_default();
                match lines.iter_mut().find(|l| l.name == label) {
                    Some(line) => {
                        // An extra-depth run repeats depth 0: the main file's point stands.
                        let fresh: Vec<_> = new
                            .points
                            .into_iter()
                            .filter(|p| line.points.iter().all(|q| q.0 != p.0))
                            .collect();
                        line.points.extend(fresh);
                        line.points.sort_by(|a, b| a.0.total_cmp(&b.0));
                    }
                    None => lines.push(new),
                }
            }
            // Fovea with every page scored (no beam descent).
            ["ppl", model, "fovea", "union", "flat", b] => {
                push_ppl(&mut ppl, model, b, "fovea, flat scan", &v, name)?
            }
            // Pass-key and beyond-context results are tables in the doc, not figures.
            ["passkey" | "beyond", ..] => {}
            _ => eprintln!("skipping {name}: not a ppl-/bench- file"),
        }
    }

    for (model, by_budget) in &ppl {
        for (budget, series) in by_budget {
            let mut lines: Vec<Series> = full.get(model).cloned().into_iter().collect();
            lines.extend(sorted_by_mode(series.clone()));
            let chart = LineChart {
                title: format!("{model}: perplexity by position, attended budget B = {budget}"),
                x_label: "position (tokens; each point is the PPL of a 1K bucket)".into(),
                y_label: "perplexity".into(),
                log_x: false,
                series: lines,
            };
            write(&out.join(format!("kv-ppl-{model}-b{budget}.svg")), &chart)?;
        }
    }
    for (model, series) in speed {
        let chart = LineChart {
            title: format!("{model}: generation speed by context depth"),
            x_label: "depth (tokens of context before generating)".into(),
            y_label: "tokens/s (tg)".into(),
            log_x: true,
            series: sorted_by_mode(series),
        };
        write(&out.join(format!("kv-speed-{model}.svg")), &chart)?;
    }
    Ok(())
}

/// Adds a streaming-perplexity series labelled "`what` (B=budget)" under its model and budget;
/// `b` is the file name's "b<budget>" part.
fn push_ppl(
    ppl: &mut BTreeMap<String, BTreeMap<usize, Vec<Series>>>,
    model: &str,
    b: &str,
    what: &str,
    v: &Value,
    name: &str,
) -> Result<(), String> {
    let budget: usize =
        b.strip_prefix('b').and_then(|b| b.parse().ok()).ok_or(format!("{name}: bad budget"))?;
    let series = buckets(v, &format!("{what} (B={budget})"), name)?;
    ppl.entry(model.to_string()).or_default().entry(budget).or_default().push(series);
    Ok(())
}

fn read(path: &Path) -> Result<Value, String> {
    let text = std::fs::read_to_string(path).map_err(|e| format!("{}: {e}", path.display()))?;
    // `fovea bench --json` prints one (pretty) JSON document; `fovea perplexity --json` prints
    // the JSON line and then the human summary lines.
    if let Ok(v) = serde_json::from_str(&text) {
        return Ok(v);
    }
    let line = text.lines().find(|l| l.starts_with('{') || l.starts_with('[')).unwrap_or("");
    serde_json::from_str(line).map_err(|e| format!("{}: not JSON: {e}", path.display()))
}

/// (bucket midpoint, bucket PPL) from a streaming perplexity report.
fn buckets(v: &Value, label: &str, file: &str) -> Result<Series, String> {
    let rows = v["buckets"].as_array().ok_or(format!("{file}: no buckets"))?;
    let points = rows
        .iter()
        .map(|b| {
            let (s, e, p) = (b["start"].as_f64(), b["end"].as_f64(), b["ppl"].as_f64());
            match (s, e, p) {
                (Some(s), Some(e), Some(p)) => Ok(((s + e) / 2.0, p)),
                _ => Err(format!("{file}: a bucket lacks start/end/ppl")),
            }
        })
        .collect::<Result<_, _>>()?;
    let overall = v["ppl"].as_f64().map_or(String::new(), |p| format!(", overall {p:.2}"));
    Ok(Series { name: format!("{label}{overall}"), points })
}

/// (depth, tokens/s) of the generation rows of a `fovea bench --json` array.
fn tg_by_depth(v: &Value, mode: &str, file: &str) -> Result<Series, String> {
    let rows = v.as_array().ok_or(format!("{file}: not a JSON array"))?;
    let mut points: Vec<(f64, f64)> = rows
        .iter()
        .filter(|r| r["test"].as_str().is_some_and(|t| t.starts_with("tg")))
        .filter_map(|r| Some((r["depth"].as_f64()?, r["tokens_per_second"].as_f64()?)))
        .collect();
    points.sort_by(|a, b| a.0.total_cmp(&b.0));
    if points.is_empty() {
        return Err(format!("{file}: no tg rows with depth and tokens_per_second"));
    }
    Ok(Series { name: mode.to_string(), points })
}

/// Series in the order full, window, dilated, fovea (their names start with the mode).
fn sorted_by_mode(mut s: Vec<Series>) -> Vec<Series> {
    s.sort_by_key(|s| MODES.iter().position(|m| s.name.starts_with(m)).unwrap_or(MODES.len()));
    s
}

fn write(path: &Path, chart: &LineChart) -> Result<(), String> {
    std::fs::write(path, chart.to_svg()).map_err(|e| format!("{}: {e}", path.display()))?;
    eprintln!("wrote {}", path.display());
    Ok(())
}
