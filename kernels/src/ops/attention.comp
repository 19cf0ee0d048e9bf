#version 450
#extension GL_GOOGLE_include_directive : require
// Causal self-attention over the device KV cache, one workgroup per (token, query head):
// out (n_tok, n_head, hdv) = softmax(kq_scale * q · Kᵀ over the visible positions) · V.
// The cache of one layer is K (rows, n_kv, hd) and V (rows, n_kv, hdv): positions below
// `sinks_rows` have rows of their own, later ones share a ring of `ring` rows
// (row = sinks_rows + (position - sinks_rows) % ring; the full cache is the ring that never
// wraps). Token t (position pos0 + t) sees positions [first, pos0 + t], first = 0 for global
// layers and pos0 + t + 1 - window for sliding-window layers; with `vis` (the window KV mode's
// global layers) it sees the sinks 0..n_sink and the positions lo..=pos0 + t, both from the
// token's record in binding 5, the sinks' keys re-rotated by the record's cos/sin when the
// cache re-numbers them (past the trained context), exactly as the CPU's window mode decides.
// pos0 is read from the step buffer (the host writes it before each submission), not a push
// constant, so that a command buffer recorded once serves every position: the work per
// workgroup follows the KV length, the number of workgroups (n_tok * n_head) does not depend
// on it.
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
    uint sinks_rows; // positions with rows of their own before the ring
    uint ring;       // rows of the ring after them
    uint vis;        // 1: visibility per token from binding 5
    uint n_rot;      // rotated dims (re-rotation of sinks)
    uint neox;       // pair layout: 0 (2i, 2i+1), 1 (i, i + n_rot/2)
    uint kv_f16;     // 1: K and V hold f16 pairs per word (kv_store's f16 layout)
} p;

layout(std430, binding = 0) readonly buffer Q { float q[]; };    // (n_tok, n_head, hd)
layout(std430, binding = 1) readonly buffer K { uint k[]; };     // (rows, n_kv, hd) f32 or f16 pairs
layout(std430, binding = 2) readonly buffer V { uint v[]; };     // (rows, n_kv, hdv)
layout(std430, binding = 3) writeonly buffer O { float o[]; };   // (n_tok, n_head, hdv)
layout(std430, binding = 4) readonly buffer Step { uint pos0; } step;
// Per token t, words 4t..4t+3: lo, n_sink, cs (word offset of the sinks' cos/sin: n_sink x
// n_rot/2 pairs (cos, sin) as float bits; 0xffffffff: not re-rotated), round (1: the turned
// sink keys are rounded to f16, as the CPU's decoding reads its f16 copy of them).
layout(std430, binding = 5) readonly buffer Vis { uint vis[]; };

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

// Element idx of the K (V) cache, widened from f16 when the cache holds f16 (exact).
float kat(uint idx) {
    return p.kv_f16 != 0u ? unpackHalf2x16(k[idx >> 1])[idx & 1u] : uintBitsToFloat(k[idx]);
}

float vat(uint idx) {
    return p.kv_f16 != 0u ? unpackHalf2x16(v[idx >> 1])[idx & 1u] : uintBitsToFloat(v[idx]);
}

#include "f16.glsl"

uint row_of(uint j) {
    return j < p.sinks_rows ? j : p.sinks_rows + (j - p.sinks_rows) % p.ring;
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
    uint n_sink = 0u;
    uint cs = 0xffffffffu;
    bool round_turned = false;
    if (p.vis != 0u) {
        first = vis[4u * t];
        n_sink = vis[4u * t + 1u];
        cs = vis[4u * t + 2u];
        round_turned = vis[4u * t + 3u] != 0u;
    }
    // Visible entries: index e < n_sink is sink e, the rest are positions first.. in order.
    uint n_vis = n_sink + pos + 1u - first;
    uint half_rot = p.n_rot / 2u;

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
    for (uint c0 = 0u; c0 < n_vis; c0 += WG) {
        uint e = c0 + tid;
        float s = NEG_INF;
        if (e < n_vis) {
            uint j = e < n_sink ? e : first + (e - n_sink);
            uint kb = (row_of(j) * n_kv + kvh) * p.hd;
            float dot = 0.0;
            if (e < n_sink && cs != 0xffffffffu) {
                // The key as the CPU re-rotates it: each pair (a, b) turned by the sink's angle.
                uint at = cs + 2u * e * half_rot;
                for (uint f = 0u; f < half_rot; ++f) {
                    uint a = p.neox != 0u ? f : 2u * f;
                    uint b = p.neox != 0u ? f + half_rot : 2u * f + 1u;
                    float c = uintBitsToFloat(vis[at + 2u * f]);
                    float sn = uintBitsToFloat(vis[at + 2u * f + 1u]);
                    float k0 = kat(kb + a);
                    float k1 = kat(kb + b);
                    // Plain products, not fused: the CPU's rotate_unfused, so rounding agrees.
                    precise float r0 = k0 * c - k1 * sn;
                    precise float r1 = k0 * sn + k1 * c;
                    if (round_turned) {
                        r0 = round_f16(r0);
                        r1 = round_f16(r1);
                    }
                    dot = fma(qs[a], r0, dot);
                    dot = fma(qs[b], r1, dot);
                }
                for (uint i = p.n_rot; i < p.hd; ++i) {
                    dot = fma(qs[i], kat(kb + i), dot);
                }
            } else {
                for (uint i = 0u; i < p.hd; ++i) {
                    dot = fma(qs[i], kat(kb + i), dot);
                }
            }
            s = dot * p.kq_scale;
        }
        float m_new = max(m, reduce_max(s));
        float corr = exp(m - m_new); // 0 on the first chunk (m = -inf)
        float pj = (e < n_vis) ? exp(s - m_new) : 0.0;
        ps[tid] = pj;
        l = l * corr + reduce_sum(pj); // reduce_sum's barriers also publish ps
        m = m_new;
        uint nc = min(WG, n_vis - c0);
        for (uint i = 0u; i < DPT; ++i) {
            uint dim = tid + i * WG;
            if (dim < p.hdv) {
                float a = acc[i] * corr;
                for (uint jj = 0u; jj < nc; ++jj) {
                    uint ej = c0 + jj;
                    uint j = ej < n_sink ? ej : first + (ej - n_sink);
                    a = fma(ps[jj], vat((row_of(j) * n_kv + kvh) * p.hdv + dim), a);
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
