//! `--kv*`: the KV-cache mode and its budget, shared by every command that runs the model.

use anyhow::{bail, Result};
use fovea_engine::kv::{KvMode, KvOptions, KvType, PositionMode, Scoring};

#[derive(clap::Args, Clone, Debug, Default)]
pub struct KvArgs {
    /// KV-cache mode: full, window, dilated, fovea.
    #[arg(long = "kv", default_value = "full")]
    pub kv: String,
    /// Attended entries per layer, KV head and query in the non-full modes (default 1024).
    #[arg(long = "kv-budget")]
    pub budget: Option<usize>,
    /// First tokens always attended (default 4).
    #[arg(long = "kv-sinks")]
    pub sinks: Option<usize>,
    /// Most recent tokens always attended (default: the mode's share of the budget).
    #[arg(long = "kv-window")]
    pub window: Option<usize>,
    /// Tokens per page (default 16).
    #[arg(long = "kv-page")]
    pub page: Option<usize>,
    /// Resident bytes of the KV cache: pages, summaries and kept selections (suffixes K, M, G); the oldest pages spill to a mapped file.
    #[arg(long = "kv-ram")]
    pub ram: Option<String>,
    /// Element type of the pages: f32, f16, q8_0.
    #[arg(long = "kv-type", default_value = "f32")]
    pub kv_type: String,
    /// Page scoring of the fovea mode: bound, mean, union (found by a beam descent of the tree),
    /// union-flat (every page scored), exact (an oracle reading every key).
    #[arg(long = "kv-score", default_value = "union")]
    pub score: String,
    /// Key positions: auto (true within the trained context, renumbered beyond), true, renumber, fixed, clamp (true up to the trained distance, older at it).
    #[arg(long = "kv-pos", default_value = "auto")]
    pub positions: String,
    /// Queries sharing one page selection: consecutive prompt tokens, or decoded positions.
    #[arg(long = "kv-chunk", default_value_t = fovea_engine::kv::mode::DEFAULT_SELECT_CHUNK)]
    pub select_chunk: usize,
    /// Tree nodes the fovea descent keeps per level, as a multiple of the pages it picks.
    #[arg(long = "kv-beam", default_value_t = fovea_engine::kv::mode::DEFAULT_BEAM)]
    pub beam: usize,
}

impl KvArgs {
    pub fn options(&self) -> Result<KvOptions> {
        let Some(mode) = KvMode::from_name(&self.kv) else {
            bail!("unknown --kv '{}' (expected one of: {})", self.kv, KvMode::NAMES);
        };
        let Some(kv_type) = KvType::from_name(&self.kv_type) else {
            bail!("unknown --kv-type '{}' (expected one of: {})", self.kv_type, KvType::NAMES);
        };
        let Some(scoring) = Scoring::from_name(&self.score) else {
            bail!("unknown --kv-score '{}' (expected one of: {})", self.score, Scoring::NAMES);
        };
        let Some(positions) = PositionMode::from_name(&self.positions) else {
            bail!("unknown --kv-pos '{}' (expected one of: {})", self.positions, PositionMode::NAMES);
        };
        if mode == KvMode::Full {
            let set = [
                ("--kv-budget", self.budget.is_some()),
                ("--kv-sinks", self.sinks.is_some()),
                ("--kv-window", self.window.is_some()),
                ("--kv-page", self.page.is_some()),
                ("--kv-ram", self.ram.is_some()),
            ];
            if let Some((flag, _)) = set.iter().find(|(_, s)| *s) {
                bail!("{flag} needs a non-full --kv mode (window, dilated or fovea)");
            }
        }
        if self.budget == Some(0) {
            bail!("--kv-budget must be at least 1");
        }
        let ram_bytes = self.ram.as_deref().map(parse_bytes).transpose()?;
        let opts = KvOptions {
            mode,
            budget: self.budget,
            sinks: self.sinks,
            window: self.window,
            page: self.page,
            ram_bytes,
            kv_type,
            scoring,
            positions,
            select_chunk: self.select_chunk,
            beam: self.beam,
        };
        if mode != KvMode::Full {
            opts.plan().map_err(|e| anyhow::anyhow!("{e}"))?;
        }
        Ok(opts)
    }
}

/// "1048576", "512K", "64M", "2G" (binary units) -> bytes.
pub fn parse_bytes(s: &str) -> Result<usize> {
    let t = s.trim();
    let (digits, mul) = match t.char_indices().last() {
        Some((i, c)) if c.is_ascii_alphabetic() => {
            let m: usize = match c.to_ascii_uppercase() {
                'K' => 1 << 10,
                'M' => 1 << 20,
                'G' => 1 << 30,
                _ => bail!("--kv-ram '{s}': unknown unit '{c}' (use K, M or G)"),
            };
            (&t[..i], m)
        }
        _ => (t, 1),
    };
    let n: usize = digits.parse().map_err(|_| anyhow::anyhow!("--kv-ram '{s}' is not a byte count"))?;
    n.checked_mul(mul).ok_or_else(|| anyhow::anyhow!("--kv-ram '{s}' is too large"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(kv: &str) -> KvArgs {
        KvArgs {
            kv: kv.into(),
            kv_type: "f32".into(),
            score: "union".into(),
            positions: "auto".into(),
            select_chunk: 8,
            beam: 2,
            ..KvArgs::default()
        }
    }

    #[test]
    fn byte_counts_take_binary_units() {
        assert_eq!(parse_bytes("4096").unwrap(), 4096);
        assert_eq!(parse_bytes("64M").unwrap(), 64 << 20);
        assert_eq!(parse_bytes("2g").unwrap(), 2 << 30);
        assert!(parse_bytes("12X").unwrap_err().to_string().contains("unknown unit 'X'"));
        assert!(parse_bytes("lots").is_err());
    }

    #[test]
    fn flag_errors_name_the_flag_and_the_choices() {
        let e = args("sparse").options().unwrap_err().to_string();
        assert!(e.contains("unknown --kv 'sparse'") && e.contains("fovea"), "{e}");
        let e = KvArgs { budget: Some(512), ..args("full") }.options().unwrap_err().to_string();
        assert!(e.contains("--kv-budget needs a non-full --kv mode"), "{e}");
        let e =
            KvArgs { budget: Some(8), sinks: Some(8), ..args("window") }.options().unwrap_err().to_string();
        assert!(e.contains("--kv-sinks 8"), "{e}");
        let e = KvArgs { score: "best".into(), ..args("fovea") }.options().unwrap_err().to_string();
        assert!(e.contains("--kv-score 'best'"), "{e}");
        assert_eq!(KvArgs { budget: Some(512), ..args("fovea") }.options().unwrap().budget, Some(512));
    }
}
