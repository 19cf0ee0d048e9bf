#version 450
#extension GL_GOOGLE_include_directive : require
// The Q4_K matvec with plain integer arithmetic (any device); the body is matvec_q4_k.glsl.
#include "matvec_q4_k.glsl"
