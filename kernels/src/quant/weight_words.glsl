// Reading a weight row bound as 32-bit words (no 8-bit storage needed): ggml's blocks of
// 18/20/22/34/144/210 bytes are not word-aligned, so bytes and halves are extracted from words.
// Needs `w` (the weight words) declared before the include.

uint byte_at(uint off) {
    return (w[off >> 2] >> ((off & 3u) * 8u)) & 0xFFu;
}

// A little-endian u16 at an even byte offset.
uint u16_at(uint off) {
    return (w[off >> 2] >> ((off & 2u) * 8u)) & 0xFFFFu;
}

float f16_at(uint off) {
    return unpackHalf2x16(u16_at(off)).x;
}

// The little-endian word at an even byte offset: two aligned loads and a select.
uint u32_at(uint off) {
    uint i = off >> 2;
    uint lo = w[i];
    uint hi = w[i + ((off >> 1) & 1u)];
    return (off & 2u) == 0u ? lo : (lo >> 16) | (hi << 16);
}
