#version 450
#extension GL_GOOGLE_include_directive : require
// The Q8_0 matvec with plain integer arithmetic (any device); the body is matvec_q8_0.glsl.
#include "matvec_q8_0.glsl"
