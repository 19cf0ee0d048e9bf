#version 450
// RoPE in place on x (n_tok, n_heads, head_dim), with the cos/sin of each token's angles
// computed on the host by the CPU's RopeTable (so both backends rotate by the same angles):
// cs (2, n_tok, n_rot / 2), cos first. neox = 1 pairs (i, i + n_rot/2), 0 pairs (2i, 2i + 1).
//
// Memory access: one invocation per rotated pair; a head's pairs are neighbours in the
// dispatch, so reads and writes of x are coalesced (NeoX: two contiguous half-rows).

layout(local_size_x_id = 0) in;
layout(constant_id = 0) const uint WG = 64;

layout(push_constant) uniform Push {
    uint n_tok;
    uint n_heads;
    uint head_dim;
    uint n_rot;
    uint neox;
} p;

layout(std430, binding = 0) buffer X { float x[]; };
layout(std430, binding = 1) readonly buffer CosSin { float cs[]; };

void main() {
    uint half_rot = p.n_rot / 2u;
    uint id = gl_GlobalInvocationID.x + gl_GlobalInvocationID.y * gl_NumWorkGroups.x * WG;
    if (id >= p.n_tok * p.n_heads * half_rot) {
        return;
    }
    uint i = id % half_rot;
    uint head = (id / half_rot) % p.n_heads;
    uint t = id / (half_rot * p.n_heads);
    uint base = (t * p.n_heads + head) * p.head_dim;
    uint a = p.neox != 0u ? base + i : base + 2u * i;
    uint b = p.neox != 0u ? base + i + half_rot : base + 2u * i + 1u;
    float c = cs[t * half_rot + i];
    float s = cs[p.n_tok * half_rot + t * half_rot + i];
    float x0 = x[a];
    float x1 = x[b];
    x[a] = fma(x0, c, -(x1 * s));
    x[b] = fma(x0, s, x1 * c);
}
