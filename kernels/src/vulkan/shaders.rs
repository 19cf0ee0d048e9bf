//! The compute shaders: SPIR-V compiled from the GLSL beside each CPU op
//! (`src/ops/<op>.comp`, `src/quant/matvec_<type>.comp`) and committed under `spirv/`, so a
//! plain build needs no shader compiler. `build.rs` recompiles them when `glslangValidator` is
//! present and warns when the committed files are stale; `.ci/vulkan.sh` fails on it.

use fovea_formats::GgmlType;

/// Every shader, with its binding count and push-constant size.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Shader {
    MatvecF32,
    MatvecF16,
    MatvecQ4_0,
    MatvecQ4_1,
    MatvecQ5_0,
    MatvecQ8_0,
    MatvecQ4K,
    MatvecQ6K,
    /// The quantized matvecs with packed 4 x i8 dot products (`shaderIntegerDotProduct`
    /// devices only): the same integer sums, so the same bits as the plain ones.
    MatvecQ4_0Dot4,
    MatvecQ4_1Dot4,
    MatvecQ5_0Dot4,
    MatvecQ8_0Dot4,
    MatvecQ4KDot4,
    MatvecQ6KDot4,
    /// Activation rows to Q8_0 / Q8_1 / Q8_K words (push constant 3 is [`ActQuant`]).
    QuantizeQ8,
    RmsNorm,
    Rope,
    Softmax,
    Activation,
    Axpy,
    /// Attention over the device KV cache; binding 4 is the step buffer (pos0), binding 5 the
    /// per-token visibility of the window KV mode (read when push constant 9 is set).
    Attention,
    /// Rows into a KV cache (a ring past its sink rows) at the step buffer's pos0 (binding 2).
    KvStore,
}

macro_rules! spirv {
    ($name:literal) => {
        include_bytes!(concat!(env!("CARGO_MANIFEST_DIR"), "/spirv/", $name, ".spv"))
    };
}

impl Shader {
    pub const ALL: [Shader; 22] = [
        Shader::MatvecF32,
        Shader::MatvecF16,
        Shader::MatvecQ4_0,
        Shader::MatvecQ4_1,
        Shader::MatvecQ5_0,
        Shader::MatvecQ8_0,
        Shader::MatvecQ4K,
        Shader::MatvecQ6K,
        Shader::MatvecQ4_0Dot4,
        Shader::MatvecQ4_1Dot4,
        Shader::MatvecQ5_0Dot4,
        Shader::MatvecQ8_0Dot4,
        Shader::MatvecQ4KDot4,
        Shader::MatvecQ6KDot4,
        Shader::QuantizeQ8,
        Shader::RmsNorm,
        Shader::Rope,
        Shader::Softmax,
        Shader::Activation,
        Shader::Axpy,
        Shader::Attention,
        Shader::KvStore,
    ];

    /// The matrix-vector shader for weights of type `ty`, if there is one.
    pub fn matvec(ty: GgmlType) -> Option<Shader> {
        Some(match ty {
            GgmlType::F32 => Shader::MatvecF32,
            GgmlType::F16 => Shader::MatvecF16,
            GgmlType::Q4_0 => Shader::MatvecQ4_0,
            GgmlType::Q4_1 => Shader::MatvecQ4_1,
            GgmlType::Q5_0 => Shader::MatvecQ5_0,
            GgmlType::Q8_0 => Shader::MatvecQ8_0,
            GgmlType::Q4K => Shader::MatvecQ4K,
            GgmlType::Q6K => Shader::MatvecQ6K,
            _ => return None,
        })
    }

    /// The packed-dot variant of a quantized matvec shader, if it has one.
    pub fn dot4(self) -> Option<Shader> {
        Some(match self {
            Shader::MatvecQ4_0 => Shader::MatvecQ4_0Dot4,
            Shader::MatvecQ4_1 => Shader::MatvecQ4_1Dot4,
            Shader::MatvecQ5_0 => Shader::MatvecQ5_0Dot4,
            Shader::MatvecQ8_0 => Shader::MatvecQ8_0Dot4,
            Shader::MatvecQ4K => Shader::MatvecQ4KDot4,
            Shader::MatvecQ6K => Shader::MatvecQ6KDot4,
            _ => return None,
        })
    }

    /// The plain shader a packed-dot variant computes the same bits as (itself otherwise).
    fn plain(self) -> Shader {
        match self {
            Shader::MatvecQ4_0Dot4 => Shader::MatvecQ4_0,
            Shader::MatvecQ4_1Dot4 => Shader::MatvecQ4_1,
            Shader::MatvecQ5_0Dot4 => Shader::MatvecQ5_0,
            Shader::MatvecQ8_0Dot4 => Shader::MatvecQ8_0,
            Shader::MatvecQ4KDot4 => Shader::MatvecQ4K,
            Shader::MatvecQ6KDot4 => Shader::MatvecQ6K,
            other => other,
        }
    }

    /// Whether the shader needs the device's `shaderIntegerDotProduct`: the packed-dot variants.
    pub fn needs_integer_dot(self) -> bool {
        self.plain() != self
    }

    /// The activation format a matvec shader reads: `None` for the float matvecs (F32, F16),
    /// which take f32 activations as the CPU does for those types; otherwise the quantized
    /// partner that `QuantizeQ8` must first write (the CPU's `vec_dot_type`).
    pub fn act_quant(self) -> Option<ActQuant> {
        match self.plain() {
            Shader::MatvecQ4_0 | Shader::MatvecQ5_0 | Shader::MatvecQ8_0 => Some(ActQuant::Q8_0),
            Shader::MatvecQ4_1 => Some(ActQuant::Q8_1),
            Shader::MatvecQ4K | Shader::MatvecQ6K => Some(ActQuant::Q8K),
            _ => None,
        }
    }

    /// The SPIR-V words' bytes (little-endian, as glslangValidator writes them).
    pub fn spirv(self) -> &'static [u8] {
        match self {
            Shader::MatvecF32 => spirv!("matvec_f32"),
            Shader::MatvecF16 => spirv!("matvec_f16"),
            Shader::MatvecQ4_0 => spirv!("matvec_q4_0"),
            Shader::MatvecQ4_1 => spirv!("matvec_q4_1"),
            Shader::MatvecQ5_0 => spirv!("matvec_q5_0"),
            Shader::MatvecQ8_0 => spirv!("matvec_q8_0"),
            Shader::MatvecQ4K => spirv!("matvec_q4_k"),
            Shader::MatvecQ6K => spirv!("matvec_q6_k"),
            Shader::MatvecQ4_0Dot4 => spirv!("matvec_q4_0_dot4"),
            Shader::MatvecQ4_1Dot4 => spirv!("matvec_q4_1_dot4"),
            Shader::MatvecQ5_0Dot4 => spirv!("matvec_q5_0_dot4"),
            Shader::MatvecQ8_0Dot4 => spirv!("matvec_q8_0_dot4"),
            Shader::MatvecQ4KDot4 => spirv!("matvec_q4_k_dot4"),
            Shader::MatvecQ6KDot4 => spirv!("matvec_q6_k_dot4"),
            Shader::QuantizeQ8 => spirv!("quantize_q8"),
            Shader::RmsNorm => spirv!("rmsnorm"),
            Shader::Rope => spirv!("rope"),
            Shader::Softmax => spirv!("softmax"),
            Shader::Activation => spirv!("activation"),
            Shader::Axpy => spirv!("axpy"),
            Shader::Attention => spirv!("attention"),
            Shader::KvStore => spirv!("kv_store"),
        }
    }

    /// Storage buffers the shader binds (0..n).
    pub fn n_bindings(self) -> u32 {
        match self {
            Shader::Softmax => 1,
            Shader::Rope | Shader::Activation | Shader::Axpy | Shader::QuantizeQ8 => 2,
            Shader::Attention => 6,
            _ => 3,
        }
    }

    /// Bytes of the shader's push-constant block.
    pub fn push_bytes(self) -> u32 {
        4 * match self {
            Shader::Softmax | Shader::Activation => 2,
            Shader::Axpy => 3,
            Shader::RmsNorm | Shader::QuantizeQ8 => 4,
            Shader::Rope | Shader::KvStore => 5,
            Shader::Attention => 14,
            _ => 6, // the matvecs
        }
    }
}

/// The most query heads one attention workgroup serves (the shader's MAX_G).
pub const ATTENTION_HEADS_PER_GROUP: usize = 8;

/// Query heads per attention workgroup (push constant 13) for a batch of n_tok tokens and GQA
/// groups of `group` heads: the whole group (up to ATTENTION_HEADS_PER_GROUP), so K and V are
/// read once per group, for prompt batches; one for a decoded token, whose few KV heads alone
/// would give too few workgroups.
pub fn attention_heads_per_workgroup(n_tok: usize, group: usize) -> usize {
    if n_tok == 1 {
        1
    } else {
        group.clamp(1, ATTENTION_HEADS_PER_GROUP)
    }
}

/// Workgroups of an attention dispatch over n_tok tokens of n_head query heads in GQA groups
/// of `group`, `hpw` heads per workgroup: one per (token, KV head, block of hpw heads).
pub fn attention_groups(n_tok: usize, n_head: usize, group: usize, hpw: usize) -> u32 {
    let group = group.max(1);
    (n_tok * (n_head / group) * group.div_ceil(hpw.clamp(1, ATTENTION_HEADS_PER_GROUP))) as u32
}

/// The quantized activation formats `QuantizeQ8` writes, as 32-bit words per block (the value
/// is the shader's `kind` push constant):
/// - `Q8_0`: 9 words per 32 elements: d f16 in the low half of word 0 (high half 0), qs[32] i8
///   (ggml's 34-byte `block_q8_0` padded to a word);
/// - `Q8_1`: 9 words per 32 elements: d f16, s f16, qs[32] (ggml's 36-byte `block_q8_1`);
/// - `Q8K`: 73 words per 256 elements: d f32, qs[256], bsums[16] i16 (ggml's 292-byte
///   `block_q8_K`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ActQuant {
    Q8_0 = 0,
    Q8_1 = 1,
    Q8K = 2,
}

impl ActQuant {
    /// Elements per block.
    pub fn block(self) -> usize {
        match self {
            ActQuant::Q8_0 | ActQuant::Q8_1 => 32,
            ActQuant::Q8K => 256,
        }
    }

    /// 32-bit words per block.
    pub fn block_words(self) -> usize {
        match self {
            ActQuant::Q8_0 | ActQuant::Q8_1 => 9,
            ActQuant::Q8K => 73,
        }
    }

    /// Words of one quantized row of `cols` elements (a multiple of [`ActQuant::block`]).
    pub fn row_words(self, cols: usize) -> usize {
        cols / self.block() * self.block_words()
    }

    /// An upper bound of [`ActQuant::row_words`] over all formats, for sizing one buffer that
    /// any of them may use.
    pub fn max_row_words(cols: usize) -> usize {
        cols.div_ceil(32) * 10
    }
}
