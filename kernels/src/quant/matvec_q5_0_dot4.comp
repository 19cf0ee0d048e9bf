#version 450
#extension GL_GOOGLE_include_directive : require
// The Q5_0 matvec with packed 4 x i8 dot products (SPV_KHR_integer_dot_product; only on
// devices with shaderIntegerDotProduct): the same integer sums as matvec_q5_0.comp, so the same bits.
#define DOT4 1
#include "matvec_q5_0.glsl"
