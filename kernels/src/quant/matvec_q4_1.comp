#version 450
#extension GL_GOOGLE_include_directive : require
// The Q4_1 matvec with plain integer arithmetic (any device); the body is matvec_q4_1.glsl.
#include "matvec_q4_1.glsl"
