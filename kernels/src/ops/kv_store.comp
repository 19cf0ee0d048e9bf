#version 450
#extension GL_GOOGLE_include_directive : require
// Stores a batch's keys (or values) in a layer's device cache: cache[row(step.pos0 + t)] =
// rows[t] for t < n_tok, row(j) = j below sinks_rows, else sinks_rows + (j - sinks_rows) % ring
// (the attention shader's mapping; the full cache is a ring that never wraps, row = position).
// With `f16` the cache holds f16 pairs per word (element 2w in the low half), rounded to
// nearest even as the CPU's f16 pages (half::f16::from_f32), in integer code (f16.glsl).
// The CPU's cache store is a row copy; this is
// the same copy with the position read from the step buffer, so that a command buffer recorded
// once serves every position (a vkCmdCopyBuffer would bake the offset in). Words are copied as
// integers: bit-exact, whatever the values.
//
// Memory access: one invocation per word, coalesced on both sides; bandwidth-bound.

layout(local_size_x_id = 0) in;
layout(constant_id = 0) const uint WG = 64;

layout(push_constant) uniform Push {
    uint row;   // floats per cache row (even with f16)
    uint n_tok;
    uint sinks_rows;
    uint ring;
    uint f16;   // 1: the cache stores f16 pairs
} p;

layout(std430, binding = 0) readonly buffer Rows { uint rows[]; };    // (n_tok, row)
layout(std430, binding = 1) writeonly buffer Cache { uint cache[]; }; // (n_ctx, row)
layout(std430, binding = 2) readonly buffer Step { uint pos0; } step;

#include "f16.glsl"

void main() {
    uint i = gl_GlobalInvocationID.x + gl_GlobalInvocationID.y * gl_NumWorkGroups.x * WG;
    uint per = p.f16 != 0u ? p.row / 2u : p.row; // cache words per row
    if (i >= per * p.n_tok) {
        return;
    }
    uint t = i / per;
    uint wd = i % per;
    uint j = step.pos0 + t;
    uint r = j < p.sinks_rows ? j : p.sinks_rows + (j - p.sinks_rows) % p.ring;
    uint dst = r * per + wd;
    if (dst < uint(cache.length())) {
        if (p.f16 != 0u) {
            uint src = t * p.row + 2u * wd;
            uint lo = f16_bits(uintBitsToFloat(rows[src]));
            uint hi = f16_bits(uintBitsToFloat(rows[src + 1u]));
            cache[dst] = lo | (hi << 16);
        } else {
            cache[dst] = rows[t * p.row + wd];
        }
    }
}
