// The end of a matvec pass over NT tokens: a shared-memory tree over the LANES partial dots of
// each (row, token), then lane 0 of the row writes y. Every invocation must call it (barriers);
// rows past the end write nothing. Needs `red`, `y`, `p`, NT, WG and LANES declared first.
void reduce_and_store(float acc[NT], uint tid, uint lane, uint row, uint t0, uint nt) {
    [[unroll]] for (uint i = 0u; i < NT; ++i) {
        red[i * WG + tid] = acc[i];
    }
    barrier();
    for (uint s = LANES / 2u; s > 0u; s >>= 1) {
        if (lane < s) {
            [[unroll]] for (uint i = 0u; i < NT; ++i) {
                red[i * WG + tid] += red[i * WG + tid + s];
            }
        }
        barrier();
    }
    if (row < p.rows && lane == 0u) {
        for (uint i = 0u; i < nt; ++i) {
            y[(t0 + i) * p.out_stride + p.out_offset + row] = red[i * WG + tid];
        }
    }
    barrier();
}
