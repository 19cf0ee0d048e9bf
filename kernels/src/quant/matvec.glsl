// Shared body of the float-activation matvecs (matvec_f32.comp, matvec_f16.comp; the quantized types use matvec_q8.glsl): y (n_tok, rows) = x (n_tok, cols) · Wᵀ.
//
// Memory access: a workgroup of WG invocations takes WG / LANES consecutive weight rows, LANES
// invocations per row. The lanes of a row stride over it in 32-element units (unit u, u + LANES,
// ...), so neighbouring lanes read neighbouring blocks; the row's bytes are read once per group
// of NT = 8 tokens, and each dequantized unit is multiplied with up to NT activation rows held
// in registers. The f32 activations are re-read per row but are small (n_tok * cols floats) and
// stay in cache. A shared-memory tree over the LANES partial dots finishes each (row, token).
// For n_tok = 1 (generation) this streams the weights once: bandwidth-bound on weight bytes.
// LANES (specialization constant 1) is 16 on GPUs; on CPU devices (lavapipe) it is 4, because
// there the per-workgroup overhead dominates and invocations run as SIMD lanes anyway.
//
// Weights are bound as 32-bit words (no 8-bit storage needed); blocks of 18/22/34/210 bytes
// are not word-aligned, so bytes are extracted from words (byte_at, u16_at).
//
// Each type's file defines dequant_unit(row_byte, u, v): the 32 f32 values of unit u of the row
// starting at byte row_byte, then includes this file.

#extension GL_EXT_control_flow_attributes : require

layout(local_size_x_id = 0) in;
layout(constant_id = 0) const uint WG = 64;   // invocations per workgroup, a power of two
layout(constant_id = 1) const uint LANES = 16; // invocations per row, a power of two <= WG

layout(constant_id = 2) const uint NT = 8;     // tokens per pass over the row: 1 for generation

layout(push_constant) uniform Push {
    uint cols;       // elements per weight row (a multiple of 32)
    uint rows;       // weight rows in this binding (one chunk of a split matrix)
    uint n_tok;      // activation rows
    uint x_offset;   // first float of x
    uint out_stride; // floats between output rows (the whole matrix's row count)
    uint out_offset; // first output column of this chunk
} p;

layout(std430, binding = 0) readonly buffer Weights { uint w[]; };
layout(std430, binding = 1) readonly buffer Act { vec4 x4[]; };   // (n_tok, cols) as vec4
layout(std430, binding = 2) writeonly buffer Out { float y[]; };  // (n_tok, out_stride)

shared float red[NT * WG]; // (NT, WG) partial dots

#include "weight_words.glsl"
#include "matvec_reduce.glsl"

uint row_bytes(); // defined per type
void dequant_unit(uint row_byte, uint u, out float v[32]);

void main() {
    uint tid = gl_LocalInvocationID.x;
    uint lane = tid % LANES;
    uint group = gl_WorkGroupID.x + gl_WorkGroupID.y * gl_NumWorkGroups.x;
    uint row = group * (WG / LANES) + tid / LANES;
    // Rows past the end still take part in the barriers; they just read and write nothing.
    uint units = row < p.rows ? p.cols / 32u : 0u;
    uint row_byte = row * row_bytes();
    for (uint t0 = 0u; t0 < p.n_tok; t0 += NT) {
        uint nt = min(NT, p.n_tok - t0);
        // Loops over NT and 32 have constant bounds and are unrolled, so acc and v stay in
        // registers (a dynamically indexed array would live in slow private memory).
        float acc[NT];
        [[unroll]] for (uint i = 0u; i < NT; ++i) {
            acc[i] = 0.0;
        }
        for (uint u = lane; u < units; u += LANES) {
            float v[32];
            dequant_unit(row_byte, u, v);
            [[unroll]] for (uint i = 0u; i < NT; ++i) {
                if (i < nt) {
                    uint xb = (p.x_offset + (t0 + i) * p.cols + u * 32u) / 4u;
                    float s = 0.0;
                    [[unroll]] for (uint j = 0u; j < 8u; ++j) {
                        vec4 xv = x4[xb + j];
                        s += dot(vec4(v[4u * j], v[4u * j + 1u], v[4u * j + 2u], v[4u * j + 3u]), xv);
                    }
                    acc[i] += s;
                }
            }
        }
        reduce_and_store(acc, tid, lane, row, t0, nt);
    }
}
