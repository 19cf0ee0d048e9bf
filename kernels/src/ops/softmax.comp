#version 450
// Softmax of rows in place: x (rows, n). The attention shader fuses its own (online) softmax;
// this one is the standalone op.
//
// Memory access: one workgroup per row, three strided passes (max, sum of exp, scale) over a
// row that stays in cache; reductions in shared memory.

layout(local_size_x_id = 0) in;
layout(constant_id = 0) const uint WG = 64; // a power of two

layout(push_constant) uniform Push {
    uint n;
    uint rows;
} p;

layout(std430, binding = 0) buffer X { float x[]; };

shared float red[WG];

float reduce(float v, bool is_max) {
    uint tid = gl_LocalInvocationID.x;
    red[tid] = v;
    barrier();
    for (uint k = WG / 2u; k > 0u; k >>= 1) {
        if (tid < k) {
            red[tid] = is_max ? max(red[tid], red[tid + k]) : red[tid] + red[tid + k];
        }
        barrier();
    }
    float r = red[0];
    barrier();
    return r;
}

void main() {
    uint row = gl_WorkGroupID.x + gl_WorkGroupID.y * gl_NumWorkGroups.x;
    if (row >= p.rows) {
        return;
    }
    uint tid = gl_LocalInvocationID.x;
    uint base = row * p.n;
    float m = -1.0 / 0.0;
    for (uint i = tid; i < p.n; i += WG) {
        m = max(m, x[base + i]);
    }
    m = reduce(m, true);
    float s = 0.0;
    for (uint i = tid; i < p.n; i += WG) {
        float e = exp(x[base + i] - m);
        x[base + i] = e;
        s += e;
    }
    s = reduce(s, false);
    for (uint i = tid; i < p.n; i += WG) {
        x[base + i] /= s;
    }
}
