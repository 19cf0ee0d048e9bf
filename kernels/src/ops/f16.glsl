// f32 -> f16 conversion in integer code, shared by the shaders that must round to f16 exactly
// as the CPU does (half::f16::from_f32: round to nearest even), independent of the device's own
// f32 -> f16 rounding mode (which SPIR-V leaves to the implementation for packHalf2x16).

// f32 -> f16 bits, round to nearest even, as half::f16::from_f32 (normal, subnormal, inf).
uint f16_bits(float f) {
    uint b = floatBitsToUint(f);
    uint sign = (b >> 16) & 0x8000u;
    uint e = (b >> 23) & 0xFFu;
    uint man = b & 0x7FFFFFu;
    if (e == 0xFFu) {
        return sign | 0x7C00u | (man != 0u ? 0x200u | (man >> 13) : 0u);
    }
    int he = int(e) - 127 + 15;
    if (he >= 31) {
        return sign | 0x7C00u;
    }
    if (he <= 0) {
        if (he < -10) {
            return sign;
        }
        uint m = man | 0x800000u;
        uint shift = uint(14 - he);
        uint h = m >> shift;
        uint rem = m & ((1u << shift) - 1u);
        uint halfway = 1u << (shift - 1u);
        if (rem > halfway || (rem == halfway && (h & 1u) != 0u)) {
            h += 1u;
        }
        return sign | h;
    }
    uint h = (uint(he) << 10) | (man >> 13);
    uint rem = man & 0x1FFFu;
    if (rem > 0x1000u || (rem == 0x1000u && (h & 1u) != 0u)) {
        h += 1u; // a carry into the exponent is the correct rounding (up to inf)
    }
    return sign | h;
}

// x rounded to the nearest f16 value, as an f32.
float round_f16(float x) {
    return unpackHalf2x16(f16_bits(x)).x;
}
