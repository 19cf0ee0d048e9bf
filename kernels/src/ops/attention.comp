#version 450
#extension GL_GOOGLE_include_directive : require
// Causal self-attention over the device KV cache, one workgroup per (token, KV head, block of
// `hpw` <= MAX_G of its GQA group's query heads; hpw = 1 is a workgroup per query head):
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
// workgroup follows the KV length, the number of workgroups (n_tok * n_kv * ceil(group / hpw))
// does not depend on it.
//
// Memory access: the group's queries are staged in shared memory; keys are taken WG at a time,
// one key row per invocation, read once and dotted with every query of the block (each
// invocation reads its key's hd values: strided across invocations, served by cache lines); an
// online softmax per head (running max and sum, rescaling the accumulators) needs no score
// buffer, so the context length is not bounded by shared memory; for the values every
// invocation owns hdv / WG output dims of every head of the block and reads the chunk's value
// rows coalesced, once for all of them. K and V of a KV head are so read once per token and
// block, not once per query head: with hpw = G a GQA group of G heads reads 1/G of the cache
// bytes. The host shares them for prompt batches (n_tok x n_kv workgroups are plenty) and keeps
// a workgroup per head for a decoded token, whose n_kv workgroups alone would leave most of a
// device idle (splitting the keys across workgroups would be the way to have both). Each head's
// scores, reductions and sums run in the same order whatever hpw, so the results are the same
// bits.

layout(local_size_x_id = 0) in;
layout(constant_id = 0) const uint WG = 64; // a power of two, hdv <= 4 * WG

const uint MAX_HD = 256;
const uint MAX_G = 8; // query heads per workgroup (a larger GQA group takes several workgroups)
const uint DPT = 4;   // output dims per invocation: hdv <= DPT * WG

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
    uint hpw;        // query heads per workgroup, 1..MAX_G (1: a workgroup per query head)
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

shared float qs[MAX_G * MAX_HD]; // (heads of the block, hd)
shared float ps[MAX_G * WG];     // (heads, WG) the chunk's scores, then weights
shared float red[MAX_G * WG];    // (heads, WG) reduction scratch

// red[g * WG + tid] reduced over tid for every head g < ng at once (the same tree as for one
// head, so each head's result has the same bits); the results stay in red[g * WG].
void reduce_max_all(uint ng) {
    uint tid = gl_LocalInvocationID.x;
    barrier();
    for (uint s = WG / 2u; s > 0u; s >>= 1) {
        if (tid < s) {
            for (uint g = 0u; g < ng; ++g) {
                red[g * WG + tid] = max(red[g * WG + tid], red[g * WG + tid + s]);
            }
        }
        barrier();
    }
}

void reduce_sum_all(uint ng) {
    uint tid = gl_LocalInvocationID.x;
    barrier();
    for (uint s = WG / 2u; s > 0u; s >>= 1) {
        if (tid < s) {
            for (uint g = 0u; g < ng; ++g) {
                red[g * WG + tid] += red[g * WG + tid + s];
            }
        }
        barrier();
    }
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
    uint hpw = clamp(p.hpw, 1u, MAX_G);
    uint blocks = (p.group + hpw - 1u) / hpw; // head blocks per KV head
    uint n_kv = p.n_head / p.group;
    uint item = gl_WorkGroupID.x + gl_WorkGroupID.y * gl_NumWorkGroups.x;
    if (item >= p.n_tok * n_kv * blocks) {
        return;
    }
    uint tid = gl_LocalInvocationID.x;
    uint t = item / (n_kv * blocks);
    uint kvh = (item / blocks) % n_kv;
    uint g0 = (item % blocks) * hpw;  // first head of the block within the group
    uint ng = min(hpw, p.group - g0); // heads in the block
    uint h0 = kvh * p.group + g0;       // its first query head
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

    for (uint i = tid; i < ng * p.hd; i += WG) {
        qs[i] = q[(t * p.n_head + h0) * p.hd + i];
    }
    barrier();

    const float NEG_INF = -1.0 / 0.0;
    float m[MAX_G]; // running max of each head's scores
    float l[MAX_G]; // running sum of exp(score - m)
    float acc[MAX_G][DPT];
    for (uint g = 0u; g < MAX_G; ++g) {
        m[g] = NEG_INF;
        l[g] = 0.0;
        for (uint i = 0u; i < DPT; ++i) {
            acc[g][i] = 0.0;
        }
    }
    for (uint c0 = 0u; c0 < n_vis; c0 += WG) {
        uint e = c0 + tid;
        float s[MAX_G];
        for (uint g = 0u; g < MAX_G; ++g) {
            s[g] = NEG_INF;
        }
        if (e < n_vis) {
            uint j = e < n_sink ? e : first + (e - n_sink);
            uint kb = (row_of(j) * n_kv + kvh) * p.hd;
            float dot[MAX_G];
            for (uint g = 0u; g < MAX_G; ++g) {
                dot[g] = 0.0;
            }
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
                    for (uint g = 0u; g < ng; ++g) {
                        dot[g] = fma(qs[g * p.hd + a], r0, dot[g]);
                        dot[g] = fma(qs[g * p.hd + b], r1, dot[g]);
                    }
                }
                for (uint i = p.n_rot; i < p.hd; ++i) {
                    float kv = kat(kb + i);
                    for (uint g = 0u; g < ng; ++g) {
                        dot[g] = fma(qs[g * p.hd + i], kv, dot[g]);
                    }
                }
            } else {
                for (uint i = 0u; i < p.hd; ++i) {
                    float kv = kat(kb + i);
                    for (uint g = 0u; g < ng; ++g) {
                        dot[g] = fma(qs[g * p.hd + i], kv, dot[g]);
                    }
                }
            }
            for (uint g = 0u; g < ng; ++g) {
                s[g] = dot[g] * p.kq_scale;
            }
        }
        for (uint g = 0u; g < ng; ++g) {
            red[g * WG + tid] = s[g];
        }
        reduce_max_all(ng);
        float m_new[MAX_G];
        float corr[MAX_G];
        for (uint g = 0u; g < ng; ++g) {
            m_new[g] = max(m[g], red[g * WG]);
            corr[g] = exp(m[g] - m_new[g]); // 0 on the first chunk (m = -inf)
        }
        barrier(); // every invocation has read the maxima before red is reused
        for (uint g = 0u; g < ng; ++g) {
            float pj = (e < n_vis) ? exp(s[g] - m_new[g]) : 0.0;
            ps[g * WG + tid] = pj;
            red[g * WG + tid] = pj;
        }
        reduce_sum_all(ng); // its barriers also publish ps
        for (uint g = 0u; g < ng; ++g) {
            l[g] = l[g] * corr[g] + red[g * WG];
            m[g] = m_new[g];
        }
        uint nc = min(WG, n_vis - c0);
        for (uint i = 0u; i < DPT; ++i) {
            uint dim = tid + i * WG;
            if (dim < p.hdv) {
                float a[MAX_G];
                for (uint g = 0u; g < ng; ++g) {
                    a[g] = acc[g][i] * corr[g];
                }
                for (uint jj = 0u; jj < nc; ++jj) {
                    uint ej = c0 + jj;
                    uint j = ej < n_sink ? ej : first + (ej - n_sink);
                    float vv = vat((row_of(j) * n_kv + kvh) * p.hdv + dim);
                    for (uint g = 0u; g < ng; ++g) {
                        a[g] = fma(ps[g * WG + jj], vv, a[g]);
                    }
                }
                for (uint g = 0u; g < ng; ++g) {
                    acc[g][i] = a[g];
                }
            }
        }
        barrier(); // ps and red are rewritten by the next chunk
    }
    for (uint g = 0u; g < ng; ++g) {
        for (uint i = 0u; i < DPT; ++i) {
            uint dim = tid + i * WG;
            if (dim < p.hdv) {
                o[((t * p.n_head) + h0 + g) * p.hdv + dim] = acc[g][i] / l[g];
            }
        }
    }
}
