// Shared body of the quantized-weight matvecs: y (n_tok, rows) = xq (n_tok, cols) · Wᵀ, where xq
// is the activation quantized by quantize_q8.comp to the weight type's partner (Q8_0, Q8_1 or
// Q8_K, as the CPU's vec_dot_type). Per 32-element unit the shader forms the exact integer dot
// of the weight quants with the activation quants and turns it into f32 with the same
// per-block expression as the CPU reference (dot_legacy.rs, dot_k.rs); only the f32 sum over
// units runs in another order (a lane-strided sum and a tree), so results differ from the CPU
// by float reassociation alone.
//
// Memory access as matvec.glsl: WG / LANES rows per workgroup, LANES invocations per row striding
// over 32-element units; each unit's weights are decoded to 32 ints once and dotted with up to
// NT activation rows. Activation quants are read as packed words (4 x i8), about a quarter of
// the f32 activation traffic. The integer dot is plain int math (4 multiplies per word), or,
// with DOT4 defined (the `_dot4` variants, for devices with shaderIntegerDotProduct), the unit's
// weights packed once into 8 words of 4 x i8 and each word's dot one OpSDot (packed 4x8):
// the same exact integer sums, so the two variants give the same bits.
//
// Each type's file defines, before including this one:
//   ABLOCK, AWORDS     elements and 32-bit words of one activation block (32/9 or 256/73)
//   row_bytes()        bytes of one weight row
//   load_unit(row_byte, u, wv, par)   unit u's 32 weight quants as ints, and its scalars
//   unit_value(par, s_lo, s_hi, ab, u) the unit's f32 contribution from the integer dots of its
//                      first and second 16 elements; ab is the activation block's first word

#extension GL_EXT_control_flow_attributes : require
#ifdef DOT4
#extension GL_EXT_spirv_intrinsics : require
// OpSDot (SPV_KHR_integer_dot_product) on two words of 4 x i8, format PackedVectorFormat4x8Bit
// (0); capabilities DotProduct (6019) and DotProductInput4x8BitPacked (6018). glslang 12 has no
// GL_EXT_integer_dot_product, so the instruction is declared directly.
spirv_instruction(extensions = ["SPV_KHR_integer_dot_product"], capabilities = [6019, 6018], id = 4450)
int sdot4x8(uint a, uint b, spirv_literal int packed_format);
#endif

layout(local_size_x_id = 0) in;
layout(constant_id = 0) const uint WG = 64;   // invocations per workgroup, a power of two
layout(constant_id = 1) const uint LANES = 16; // invocations per row, a power of two <= WG
layout(constant_id = 2) const uint NT = 8;     // tokens per pass over the row: 1 for generation

layout(push_constant) uniform Push {
    uint cols;       // elements per weight row (a multiple of ABLOCK)
    uint rows;       // weight rows in this binding (one chunk of a split matrix)
    uint n_tok;      // activation rows
    uint x_offset;   // first word of xq
    uint out_stride; // floats between output rows (the whole matrix's row count)
    uint out_offset; // first output column of this chunk
} p;

layout(std430, binding = 0) readonly buffer Weights { uint w[]; };
layout(std430, binding = 1) readonly buffer Act { uint xq[]; };  // (n_tok, cols / ABLOCK) blocks
layout(std430, binding = 2) writeonly buffer Out { float y[]; }; // (n_tok, out_stride)

shared float red[NT * WG]; // (NT, WG) partial dots

#include "weight_words.glsl"
#include "matvec_reduce.glsl"

uint row_bytes();
void load_unit(uint row_byte, uint u, out int wv[32], out vec4 par);
float unit_value(vec4 par, int s_lo, int s_hi, uint ab, uint u);

void main() {
    uint tid = gl_LocalInvocationID.x;
    uint lane = tid % LANES;
    uint group = gl_WorkGroupID.x + gl_WorkGroupID.y * gl_NumWorkGroups.x;
    uint row = group * (WG / LANES) + tid / LANES;
    uint units = row < p.rows ? p.cols / 32u : 0u;
    uint row_byte = row * row_bytes();
    uint row_words = p.cols / ABLOCK * AWORDS; // one activation row
    const uint UPB = ABLOCK / 32u;              // units per activation block
    for (uint t0 = 0u; t0 < p.n_tok; t0 += NT) {
        uint nt = min(NT, p.n_tok - t0);
        float acc[NT];
        [[unroll]] for (uint i = 0u; i < NT; ++i) {
            acc[i] = 0.0;
        }
        for (uint u = lane; u < units; u += LANES) {
            int wv[32];
            vec4 par;
            load_unit(row_byte, u, wv, par);
#ifdef DOT4
            uint wp[8]; // the unit's weights as 8 words of 4 x i8 (byte j of word k: element 4k + j)
            [[unroll]] for (uint k = 0u; k < 8u; ++k) {
                wp[k] = (uint(wv[4u * k]) & 0xFFu) | ((uint(wv[4u * k + 1u]) & 0xFFu) << 8)
                    | ((uint(wv[4u * k + 2u]) & 0xFFu) << 16) | (uint(wv[4u * k + 3u]) << 24);
            }
#endif
            [[unroll]] for (uint i = 0u; i < NT; ++i) {
                if (i < nt) {
                    uint ab = p.x_offset + (t0 + i) * row_words + (u / UPB) * AWORDS;
                    uint qw = ab + 1u + (u % UPB) * 8u;
                    int s[2] = int[2](0, 0);
#ifdef DOT4
                    [[unroll]] for (uint k = 0u; k < 8u; ++k) {
                        s[k / 4u] += sdot4x8(wp[k], xq[qw + k], 0);
                    }
#else
                    [[unroll]] for (uint k = 0u; k < 8u; ++k) {
                        int a = int(xq[qw + k]);
                        [[unroll]] for (uint j = 0u; j < 4u; ++j) {
                            s[k / 4u] += wv[4u * k + j] * bitfieldExtract(a, int(8u * j), 8);
                        }
                    }
#endif
                    acc[i] += unit_value(par, s[0], s[1], ab, u);
                }
            }
        }
        reduce_and_store(acc, tid, lane, row, t0, nt);
    }
}
