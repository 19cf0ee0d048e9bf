//! What the user asks of the KV cache (`KvOptions`) and how a mode spends its budget (`KvPlan`).
//!
//! Every non-full mode attends, per layer and KV head, to at most `budget` entries per query:
//! `sinks` first tokens, the `window` most recent tokens, and a mode-specific share of older
//! tokens (dilated: a geometric grid; fovea: the `k_pages` best pages of `page` exact tokens).
//! The defaults split one number, `budget`, so that modes compare at equal attended entries.

use crate::error::{EngineError, Result};

/// Which tokens a query attends to.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum KvMode {
    /// Every position (the dense cache; bit-exact with llama.cpp).
    #[default]
    Full,
    /// Sinks plus the most recent tokens (StreamingLLM).
    Window,
    /// Sinks, the recent window, then every 2nd, 4th, 8th ... token further back (LongNet).
    Dilated,
    /// Sinks, the recent window and the best-scoring pages of exact tokens, chosen per query chunk.
    Fovea,
}

impl KvMode {
    pub const NAMES: &'static str = "full, window, dilated, fovea";

    pub fn from_name(s: &str) -> Option<KvMode> {
        Some(match s {
            "full" => KvMode::Full,
            "window" => KvMode::Window,
            "dilated" => KvMode::Dilated,
            "fovea" => KvMode::Fovea,
            _ => return None,
        })
    }

    pub fn name(self) -> &'static str {
        match self {
            KvMode::Full => "full",
            KvMode::Window => "window",
            KvMode::Dilated => "dilated",
            KvMode::Fovea => "fovea",
        }
    }
}

/// How keys and values are stored in the pages of the non-full modes.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum KvType {
    #[default]
    F32,
    F16,
    /// ggml's Q8_0 layout: blocks of 32 values, an f16 scale and 32 signed bytes.
    Q8_0,
}

impl KvType {
    pub const NAMES: &'static str = "f32, f16, q8_0";

    pub fn from_name(s: &str) -> Option<KvType> {
        Some(match s {
            "f32" => KvType::F32,
            "f16" => KvType::F16,
            "q8_0" => KvType::Q8_0,
            _ => return None,
        })
    }

    pub fn name(self) -> &'static str {
        match self {
            KvType::F32 => "f32",
            KvType::F16 => "f16",
            KvType::Q8_0 => "q8_0",
        }
    }
}

/// How fovea scores a page for a chunk of queries.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum Scoring {
    /// Quest's upper bound on q.k from the page's elementwise key min/max (keeps needles).
    Bound,
    /// q . mean key, softmax over pages (ranks best for perplexity in the prototype).
    Mean,
    /// Half the pages by bound, the other half by mean key, each found by the beam descent.
    #[default]
    Union,
    /// `Union` with every page scored (no beam): what the descent loses is measured against it.
    UnionFlat,
    /// Reads every key of every page: the attention mass each page would get. An oracle for
    /// measuring what the summaries lose, not an index.
    Exact,
}

impl Scoring {
    pub const NAMES: &'static str = "bound, mean, union, union-flat, exact";

    pub fn from_name(s: &str) -> Option<Scoring> {
        Some(match s {
            "bound" => Scoring::Bound,
            "mean" => Scoring::Mean,
            "union" => Scoring::Union,
            "union-flat" => Scoring::UnionFlat,
            "exact" => Scoring::Exact,
            _ => return None,
        })
    }

    pub fn name(self) -> &'static str {
        match self {
            Scoring::Bound => "bound",
            Scoring::Mean => "mean",
            Scoring::Union => "union",
            Scoring::UnionFlat => "union-flat",
            Scoring::Exact => "exact",
        }
    }
}

/// Which positions the gathered keys are rotated to.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum PositionMode {
    /// True positions while the chunk ends inside the trained context, `Renumber` beyond it.
    #[default]
    Auto,
    /// Always the true positions (distances may exceed the trained context).
    True,
    /// StreamingLLM: older entries are re-numbered to sit right before the window, in order, so
    /// no distance exceeds budget + chunk.
    Renumber,
    /// InfLLM: every older entry (sinks and pages) sits at one fixed distance, just before the window.
    Fixed,
    /// True positions up to the trained distance; older entries all sit at that distance (the
    /// farthest the model was trained on), so recent memory keeps its exact geometry.
    Clamp,
}

impl PositionMode {
    pub const NAMES: &'static str = "auto, true, renumber, fixed, clamp";

    pub fn from_name(s: &str) -> Option<PositionMode> {
        Some(match s {
            "auto" => PositionMode::Auto,
            "true" => PositionMode::True,
            "renumber" => PositionMode::Renumber,
            "fixed" => PositionMode::Fixed,
            "clamp" => PositionMode::Clamp,
            _ => return None,
        })
    }
}

/// The KV-cache settings of a session (`--kv*` on the command line). `None` fields take the
/// mode's default split of `budget`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct KvOptions {
    pub mode: KvMode,
    /// Attended entries per layer, KV head and query (default 1024).
    pub budget: Option<usize>,
    pub sinks: Option<usize>,
    pub window: Option<usize>,
    /// Tokens per page (fovea's unit of retrieval and the store's unit of spilling).
    pub page: Option<usize>,
    /// Resident bytes of the KV cache (pages, summaries, kept selections); the oldest pages beyond
    /// it go to a spill file (None: no cap).
    pub ram_bytes: Option<usize>,
    pub kv_type: KvType,
    pub scoring: Scoring,
    pub positions: PositionMode,
    /// Queries that share one selection: consecutive prompt tokens, or decoded positions.
    pub select_chunk: usize,
    /// Tree nodes the descent keeps per level and ranking, as a multiple of the pages wanted.
    pub beam: usize,
}

impl Default for KvOptions {
    fn default() -> Self {
        KvOptions {
            mode: KvMode::Full,
            budget: None,
            sinks: None,
            window: None,
            page: None,
            ram_bytes: None,
            kv_type: KvType::F32,
            scoring: Scoring::default(),
            positions: PositionMode::Auto,
            select_chunk: DEFAULT_SELECT_CHUNK,
            beam: DEFAULT_BEAM,
        }
    }
}

pub const DEFAULT_BUDGET: usize = 1024;
pub const DEFAULT_SINKS: usize = 4;
pub const DEFAULT_PAGE: usize = 16;
/// Queries per page selection in prompt processing. Fewer queries choose pages that suit each
/// of them better: on SmolLM2 at B = 512 (2048 tokens) chunks of 64 / 16 / 8 / 4 gave PPL
/// 18.19 / 18.01 / 17.96 / 17.97 (full 17.57, window 18.38). The scoring cost is the same
/// (queries x pages); only gathers multiply.
pub const DEFAULT_SELECT_CHUNK: usize = 8;
/// Beam of the tree descent, per ranking, in multiples of the pages that ranking picks.
pub const DEFAULT_BEAM: usize = 2;

/// A resolved split of the budget: what every query of a non-full mode attends to.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct KvPlan {
    pub mode: KvMode,
    pub budget: usize,
    pub sinks: usize,
    pub window: usize,
    pub page: usize,
    /// Pages retrieved per query chunk (fovea).
    pub k_pages: usize,
    /// Entries beyond sinks and window on the dilated grid (dilated).
    pub dilated: usize,
    pub ram_bytes: Option<usize>,
    pub kv_type: KvType,
    pub scoring: Scoring,
    pub positions: PositionMode,
    pub select_chunk: usize,
    pub beam: usize,
}

impl KvOptions {
    /// Splits the budget for the mode, checking that the parts fit.
    pub fn plan(&self) -> Result<KvPlan> {
        let bad = |m: String| Err(EngineError::InvalidSetting(m));
        let budget = self.budget.unwrap_or(DEFAULT_BUDGET);
        let sinks = self.sinks.unwrap_or(DEFAULT_SINKS);
        let page = self.page.unwrap_or(DEFAULT_PAGE);
        if page == 0 {
            return bad("--kv-page must be at least 1".into());
        }
        if self.beam == 0 {
            return bad("--kv-beam must be at least 1".into());
        }
        if self.select_chunk == 0 {
            return bad("the selection chunk must be at least 1 query".into());
        }
        if sinks >= budget {
            return bad(format!("--kv-sinks {sinks} leaves nothing of --kv-budget {budget}"));
        }
        let rest = budget - sinks;
        let (window, k_pages, dilated) = match self.mode {
            KvMode::Full => (0, 0, 0),
            KvMode::Window => (self.window.unwrap_or(rest), 0, 0),
            KvMode::Dilated => {
                let w = self.window.unwrap_or(rest / 2);
                (w, 0, rest.saturating_sub(w))
            }
            KvMode::Fovea => {
                // Default: an eighth of the budget (at least 64) for the recent window, the rest in
                // pages; the window absorbs what does not make a whole page. Measured on SmolLM2
                // at B = 512 (2048 tokens): windows of 32 / 64 / 140 / 256 gave PPL 18.06 / 17.95 /
                // 17.96 / 18.40 (selection chunk 8); the pages are worth more than recency.
                let min_window = self.window.unwrap_or((budget / 8).max(64));
                let k = rest.saturating_sub(min_window) / page;
                (self.window.unwrap_or(rest - k * page), k, 0)
            }
        };
        if self.mode != KvMode::Full {
            if window == 0 {
                return bad(format!("--kv {} needs a recent window of at least 1 token", self.mode.name()));
            }
            if sinks + window + k_pages * page + dilated > budget {
                return bad(format!("--kv-sinks {sinks} + --kv-window {window} exceed --kv-budget {budget}"));
            }
        }
        if self.kv_type != KvType::F32 && self.mode == KvMode::Full {
            return bad("--kv-type q8_0 and f16 apply to the paged modes (window, dilated, fovea)".into());
        }
        Ok(KvPlan {
            mode: self.mode,
            budget,
            sinks,
            window,
            page,
            k_pages,
            dilated,
            ram_bytes: self.ram_bytes,
            kv_type: self.kv_type,
            scoring: self.scoring,
            positions: self.positions,
            select_chunk: self.select_chunk,
            beam: self.beam,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn opts(mode: KvMode, budget: usize) -> KvOptions {
        KvOptions { mode, budget: Some(budget), ..KvOptions::default() }
    }

    #[test]
    fn every_mode_spends_exactly_the_budget() {
        for b in [64, 256, 512, 1000, 1024] {
            for m in [KvMode::Window, KvMode::Dilated, KvMode::Fovea] {
                let p = opts(m, b).plan().unwrap();
                assert_eq!(p.sinks + p.window + p.k_pages * p.page + p.dilated, b, "{m:?} B={b}");
            }
        }
        let p = opts(KvMode::Fovea, 512).plan().unwrap();
        assert_eq!((p.sinks, p.window, p.k_pages, p.page), (4, 76, 27, 16));
    }

    #[test]
    fn impossible_splits_are_errors() {
        let mut o = opts(KvMode::Window, 16);
        o.sinks = Some(16);
        assert!(o.plan().unwrap_err().to_string().contains("--kv-sinks 16"));
        let mut o = opts(KvMode::Fovea, 256);
        o.window = Some(300);
        assert!(o.plan().is_err());
        let mut o = opts(KvMode::Fovea, 256);
        o.page = Some(0);
        assert!(o.plan().is_err());
    }
}
