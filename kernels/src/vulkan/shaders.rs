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
    RmsNorm,
    Rope,
    Softmax,
    Activation,
    Axpy,
    Attention,
}

macro_rules! spirv {
    ($name:literal) => {
        include_bytes!(concat!(env!("CARGO_MANIFEST_DIR"), "/spirv/", $name, ".spv"))
    };
}

impl Shader {
    pub const ALL: [Shader; 14] = [
        Shader::MatvecF32,
        Shader::MatvecF16,
        Shader::MatvecQ4_0,
        Shader::MatvecQ4_1,
        Shader::MatvecQ5_0,
        Shader::MatvecQ8_0,
        Shader::MatvecQ4K,
        Shader::MatvecQ6K,
        Shader::RmsNorm,
        Shader::Rope,
        Shader::Softmax,
        Shader::Activation,
        Shader::Axpy,
        Shader::Attention,
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
            Shader::RmsNorm => spirv!("rmsnorm"),
            Shader::Rope => spirv!("rope"),
            Shader::Softmax => spirv!("softmax"),
            Shader::Activation => spirv!("activation"),
            Shader::Axpy => spirv!("axpy"),
            Shader::Attention => spirv!("attention"),
        }
    }

    /// Storage buffers the shader binds (0..n).
    pub fn n_bindings(self) -> u32 {
        match self {
            Shader::Softmax => 1,
            Shader::Rope | Shader::Activation | Shader::Axpy => 2,
            Shader::Attention => 4,
            _ => 3,
        }
    }

    /// Bytes of the shader's push-constant block.
    pub fn push_bytes(self) -> u32 {
        4 * match self {
            Shader::Softmax | Shader::Activation => 2,
            Shader::Axpy => 3,
            Shader::RmsNorm => 4,
            Shader::Rope => 5,
            Shader::Attention => 8,
            _ => 6, // the matvecs
        }
    }
}
