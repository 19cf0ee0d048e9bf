#version 450
// Stores a batch's keys (or values) in a layer's device cache: cache[row(step.pos0 + t)] =
// rows[t] for t < n_tok, row(j) = j below sinks_rows, else sinks_rows + (j - sinks_rows) % ring
// (the attention shader's mapping; the full cache is a ring that never wraps, row = position).
// The CPU's cache store is a row copy; this is
// the same copy with the position read from the step buffer, so that a command buffer recorded
// once serves every position (a vkCmdCopyBuffer would bake the offset in). Words are copied as
// integers: bit-exact, whatever the values.
//
// Memory access: one invocation per word, coalesced on both sides; bandwidth-bound.

layout(local_size_x_id = 0) in;
layout(constant_id = 0) const uint WG = 64;

layout(push_constant) uniform Push {
    uint row;   // words per cache row
    uint n_tok;
    uint sinks_rows;
    uint ring;
} p;

layout(std430, binding = 0) readonly buffer Rows { uint rows[]; };    // (n_tok, row)
layout(std430, binding = 1) writeonly buffer Cache { uint cache[]; }; // (n_ctx, row)
layout(std430, binding = 2) readonly buffer Step { uint pos0; } step;

void main() {
    uint i = gl_GlobalInvocationID.x + gl_GlobalInvocationID.y * gl_NumWorkGroups.x * WG;
    if (i >= p.row * p.n_tok) {
        return;
    }
    uint j = step.pos0 + i / p.row;
    uint r = j < p.sinks_rows ? j : p.sinks_rows + (j - p.sinks_rows) % p.ring;
    uint dst = r * p.row + i % p.row;
    if (dst < uint(cache.length())) {
        cache[dst] = rows[i];
    }
}
