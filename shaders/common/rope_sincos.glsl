// sin and cos of an f32 angle, accurate to a few ulp for |a| up to ~1e5 on any device.
//
// Vulkan bounds the built-in sin/cos only on [-pi, pi] (absolute error 2^-11), so the
// angle is reduced here: a = k*(pi/2) + r with r in [-pi/4, pi/4] (Cody-Waite: pi/2
// split in three parts, the first with 8 significant bits so k*P1 is exact for
// |k| < 2^16), then the Cephes minimax polynomials for sinf/cosf.
// Returns vec2(sin(a), cos(a)).
#ifndef COMMON_ROPE_SINCOS_GLSL
#define COMMON_ROPE_SINCOS_GLSL

vec2 rope_sincos(float a) {
    const float k = round(a * 0.63661977236758134); // 2/pi
    // pi/2 = P1 + P2 + P3; `precise` keeps the subtractions in this order.
    precise float r = a - k * 1.5703125;
    r = r - k * 4.837512969970703125e-4;
    r = r - k * 7.549789948768648e-8;
    const float r2 = r * r;
    // sin(r) ~ r + r^3 * (s1 + r2*(s2 + r2*s3)),  cos(r) ~ 1 + r2*(c1 + r2*(c2 + r2*c3))
    const float s = r + r * r2 * (-1.6666654611e-1 + r2 * (8.3321608736e-3 + r2 * -1.9515295891e-4));
    const float c = 1.0 + r2 * (-0.5 + r2 * (4.166664568298827e-2 + r2 * (-1.388731625493765e-3 + r2 * 2.443315711809948e-5)));
    const int q = int(k) & 3;
    vec2 sc;
    if (q == 0) {
        sc = vec2(s, c);
    } else if (q == 1) {
        sc = vec2(c, -s);
    } else if (q == 2) {
        sc = vec2(-s, -c);
    } else {
        sc = vec2(-c, s);
    }
    return sc;
}

#endif
