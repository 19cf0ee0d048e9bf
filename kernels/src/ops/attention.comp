#version 450
// Causal self-attention over the device KV cache, one workgroup per (token, query head):
// out (n_tok, n_head, hdv) = softmax(kq_scale * q · Kᵀ over the visible positions) · V.
// The cache of one layer is K (n_ctx, n_kv, hd) and V (n_ctx, n_kv, hdv), row = position.
// Token t (position pos0 + t) sees positions [first, pos0 + t], first = 0 for global layers
// and pos0 + t + 1 - window for sliding-window layers. pos0 is read from the step buffer (the
// host writes it before each submission), not a push constant, so that a command buffer
// recorded once serves every position: the work per workgroup follows the KV length, the
// number of workgroups (n_tok * n_head) does not depend on it.
//
// Memory access: the query is staged in shared memory; keys are taken WG at a time, one key
// row per invocation (each invocation reads its key's hd floats: strided across invocations,
// served by cache lines); an online softmax (running max and sum, rescaling the accumulator)
// needs no score buffer, so the context length is not bounded by shared memory; for the
// values every invocation owns hdv / WG output dims and reads the chunk's value rows
// coalesced. K and V of a KV head are read once per query head of its group and per token:
// bandwidth-bound on the cache for long contexts (a tiled version would share them).

layout(local_size_x_id = 0) in;
layout(constant_id = 0) const uint WG = 64; // a power of two, hdv <= 4 * WG

const uint MAX_HD = 256;
const uint DPT = 4; // output dims per invocation: hdv <= DPT * WG

layout(push_constant) uniform Push {
    uint n_tok;
    uint n_head;
    uint group;    // query heads per KV head
    uint hd;
    uint hdv;
    uint window;   // 0: global
    float kq_scale;
} p;

layout(std430, binding = 0) readonly buffer Q { float q[]; };    // (n_tok, n_head, hd)
layout(std430, binding = 1) readonly buffer K { float k[]; };    // (n_ctx, n_kv, hd)
layout(std430, binding = 2) readonly buffer V { float v[]; };    // (n_ctx, n_kv, hdv)
layout(std430, binding = 3) writeonly buffer O { float o[]; };   // (n_tok, n_head, hdv)
layout(std430, binding = 4) readonly buffer Step { uint pos0; } step;

shared float qs[MAX_HD];
shared float ps[WG];  // the chunk's scores, then weights
shared float red[WG];

float reduce_max(float val) {
    uint tid = gl_LocalInvocationID.x;
    red[tid] = val;
    barrier();
    for (uint s = WG / 2u; s > 0u; s >>= 1) {
        if (tid < s) {
            red[tid] = max(red[tid], red[tid + s]);
        }
        barrier();
    }
    float r = red[0];
    barrier();
    return r;
}

float reduce_sum(float val) {
    uint tid = gl_LocalInvocationID.x;
    red[tid] = val;
    barrier();
    for (uint s = WG / 2u; s > 0u; s >>= 1) {
        if (tid < s) {
            red[tid] += red[tid + s];
        }
        barrier();
    }
    float r = red[0];
    barrier();
    return r;
}

void main() {
    uint item = gl_WorkGroupID.x + gl_WorkGroupID.y * gl_NumWorkGroups.x;
    if (item >= p.n_tok * p.n_head) {
        return;
    }
    uint tid = gl_LocalInvocationID.x;
    uint t = item / p.n_head;
    uint h = item % p.n_head;
    uint n_kv = p.n_head / p.group;
    uint kvh = h / p.group;
    uint pos = step.pos0 + t;
    uint first = (p.window == 0u || pos + 1u < p.window) ? 0u : pos + 1u - p.window;

    for (uint i = tid; i < p.hd; i += WG) {
        qs[i] = q[item * p.hd + i];
    }
    barrier();

    const float NEG_INF = -1.0 / 0.0;
    float m = NEG_INF; // running max of the scores
    float l = 0.0;     // running sum of exp(score - m)
    float acc[DPT];
    for (uint i = 0u; i < DPT; ++i) {
        acc[i] = 0.0;
    }
    for (uint c0 = first; c0 <= pos; c0 += WG) {
        uint j = c0 + tid;
        float s = NEG_INF;
        if (j <= pos) {
            uint kb = (j * n_kv + kvh) * p.hd;
            float dot = 0.0;
            for (uint i = 0u; i < p.hd; ++i) {
                dot = fma(qs[i], k[kb + i], dot);
            }
            s = dot * p.kq_scale;
        }
        float m_new = max(m, reduce_max(s));
        float corr = exp(m - m_new); // 0 on the first chunk (m = -inf)
        float pj = (j <= pos) ? exp(s - m_new) : 0.0;
        ps[tid] = pj;
        l = l * corr + reduce_sum(pj); // reduce_sum's barriers also publish ps
        m = m_new;
        uint nc = min(WG, pos + 1u - c0);
        for (uint i = 0u; i < DPT; ++i) {
            uint dim = tid + i * WG;
            if (dim < p.hdv) {
                float a = acc[i] * corr;
                for (uint jj = 0u; jj < nc; ++jj) {
                    a = fma(ps[jj], v[((c0 + jj) * n_kv + kvh) * p.hdv + dim], a);
                }
                acc[i] = a;
            }
        }
        barrier(); // ps is rewritten by the next chunk
    }
    for (uint i = 0u; i < DPT; ++i) {
        uint dim = tid + i * WG;
        if (dim < p.hdv) {
            o[item * p.hdv + dim] = acc[i] / l;
        }
    }
}
