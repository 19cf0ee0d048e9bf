#version 450
#extension GL_GOOGLE_include_directive : require
// The Q5_0 matvec with plain integer arithmetic (any device); the body is matvec_q5_0.glsl.
#include "matvec_q5_0.glsl"
