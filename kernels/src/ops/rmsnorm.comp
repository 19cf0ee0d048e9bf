#version 450
// RMSNorm of rows: out (rows, n) = x (rows, n) / sqrt(mean(x^2) + eps) * w (n,).
// Also the per-head Q/K norms (rows = tokens * heads, n = head_dim) and in place (x and out
// bound to the same range: every element is read before the barrier and written after it by
// the same invocation).
//
// Memory access: one workgroup per row; invocations stride over the row (coalesced), sum
// squares in f32 (the CPU reference sums in f64), reduce in shared memory, then scale.
// Two reads and one write of the row; bound by activation bandwidth, tiny next to the matvecs.

layout(local_size_x_id = 0) in;
layout(constant_id = 0) const uint WG = 64; // a power of two

layout(push_constant) uniform Push {
    uint n;        // row width
    uint rows;
    uint x_offset; // first float of x
    float eps;
} p;

layout(std430, binding = 0) readonly buffer X { float x[]; };
layout(std430, binding = 1) readonly buffer W { float w[]; };
layout(std430, binding = 2) writeonly buffer Out { float o[]; };

shared float red[WG];

void main() {
    uint row = gl_WorkGroupID.x + gl_WorkGroupID.y * gl_NumWorkGroups.x;
    if (row >= p.rows) {
        return;
    }
    uint tid = gl_LocalInvocationID.x;
    uint base = p.x_offset + row * p.n;
    float s = 0.0;
    for (uint i = tid; i < p.n; i += WG) {
        float v = x[base + i];
        s = fma(v, v, s);
    }
    red[tid] = s;
    barrier();
    for (uint k = WG / 2u; k > 0u; k >>= 1) {
        if (tid < k) {
            red[tid] += red[tid + k];
        }
        barrier();
    }
    float scale = 1.0 / sqrt(red[0] / float(p.n) + p.eps);
    for (uint i = tid; i < p.n; i += WG) {
        o[row * p.n + i] = (x[base + i] * scale) * w[i];
    }
}
