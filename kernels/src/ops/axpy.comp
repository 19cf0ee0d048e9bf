#version 450
// y (n,) = scale_y * y + a * x (n,): the residual add (scale_y = 1, a = 1) and, with x bound to
// y and a = 0, an in-place scale. Mirrors axpy / scale_in_place of dot.rs.
//
// Memory access: one invocation per element, coalesced; bandwidth-bound.

layout(local_size_x_id = 0) in;
layout(constant_id = 0) const uint WG = 64;

layout(push_constant) uniform Push {
    uint n;
    float a;
    float scale_y;
} p;

layout(std430, binding = 0) buffer Y { float y[]; };
layout(std430, binding = 1) readonly buffer X { float x[]; };

void main() {
    uint i = gl_GlobalInvocationID.x + gl_GlobalInvocationID.y * gl_NumWorkGroups.x * WG;
    if (i >= p.n) {
        return;
    }
    y[i] = fma(p.a, x[i], p.scale_y * y[i]);
}
