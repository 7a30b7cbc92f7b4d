/* half.h - fp16 / bf16 <-> fp32 conversions.
 *
 * Checkpoints may store weights as IEEE half or bfloat16; the engine computes
 * in fp32, so tensors are widened once at load time.  The scalar versions are
 * exact bit manipulations (subnormals, inf, NaN payloads preserved) and match
 * torch's `.float()` bit for bit; the bulk versions use F16C when the
 * compiler targets it. */
#ifndef VGPT_HALF_H
#define VGPT_HALF_H

#include <stddef.h>
#include <stdint.h>
#include <string.h>

#if defined(__F16C__)
#include <immintrin.h>
#endif

static inline float vgpt_bits_to_float(uint32_t u) {
    float f;
    memcpy(&f, &u, sizeof f);
    return f;
}

static inline uint32_t vgpt_float_to_bits(float f) {
    uint32_t u;
    memcpy(&u, &f, sizeof u);
    return u;
}

static inline float vgpt_half_to_float(uint16_t h) {
    uint32_t sign = (uint32_t)(h & 0x8000u) << 16;
    uint32_t exp = (h >> 10) & 0x1fu;
    uint32_t man = h & 0x3ffu;
    if (exp == 0x1f) /* inf / NaN: keep the payload, as torch does */
        return vgpt_bits_to_float(sign | 0x7f800000u | (man << 13));
    if (exp == 0) {
        if (man == 0) return vgpt_bits_to_float(sign);
        /* subnormal: value = man * 2^-24, exactly representable in fp32 */
        float v = (float)man * (1.0f / 16777216.0f);
        return sign ? -v : v;
    }
    return vgpt_bits_to_float(sign | ((exp + 112u) << 23) | (man << 13));
}

static inline float vgpt_bf16_to_float(uint16_t h) {
    return vgpt_bits_to_float((uint32_t)h << 16);
}

/* Round to nearest even, overflow to inf, NaN stays NaN (quiet). */
static inline uint16_t vgpt_float_to_half(float f) {
    uint32_t u = vgpt_float_to_bits(f);
    uint16_t sign = (uint16_t)((u >> 16) & 0x8000u);
    uint32_t a = u & 0x7fffffffu;
    if (a >= 0x7f800000u) /* inf or NaN */
        return sign | 0x7c00u | (a > 0x7f800000u ? (uint16_t)(0x200u | ((a >> 13) & 0x3ffu)) : 0);
    if (a >= 0x477ff000u) return sign | 0x7c00u; /* rounds to >= 65520 -> inf */
    if (a < 0x38800000u) { /* result is subnormal or zero */
        if (a < 0x33000000u) return sign; /* below half the smallest subnormal */
        uint32_t man = (a & 0x7fffffu) | 0x800000u;
        int shift = 126 - (int)(a >> 23); /* 14..24 */
        uint32_t q = man >> shift, rem = man & ((1u << shift) - 1), half = 1u << (shift - 1);
        if (rem > half || (rem == half && (q & 1u))) q++;
        return sign | (uint16_t)q;
    }
    uint32_t r = a + 0xfffu + ((a >> 13) & 1u); /* round mantissa to 10 bits, ties to even */
    return sign | (uint16_t)((r - 0x38000000u) >> 13);
}

/* Round to nearest even (as torch's .bfloat16()). */
static inline uint16_t vgpt_float_to_bf16(float f) {
    uint32_t u = vgpt_float_to_bits(f);
    if ((u & 0x7fffffffu) > 0x7f800000u) return (uint16_t)((u >> 16) | 0x40u);
    return (uint16_t)((u + 0x7fffu + ((u >> 16) & 1u)) >> 16);
}

static inline void vgpt_half_to_float_n(const uint16_t *src, float *dst, size_t n) {
    size_t done = 0;
#if defined(__F16C__)
    /* vcvtph2ps quiets signalling NaNs; fine for weights, and exact otherwise */
    done = n / 8 * 8;
    for (size_t i = 0; i < done; i += 8)
        _mm256_storeu_ps(dst + i, _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)(src + i))));
#endif
    for (size_t i = done; i < n; i++) dst[i] = vgpt_half_to_float(src[i]);
}

static inline void vgpt_bf16_to_float_n(const uint16_t *src, float *dst, size_t n) {
    for (size_t i = 0; i < n; i++) dst[i] = vgpt_bf16_to_float(src[i]);
}

static inline void vgpt_float_to_bf16_n(const float *src, uint16_t *dst, size_t n) {
    for (size_t i = 0; i < n; i++) dst[i] = vgpt_float_to_bf16(src[i]);
}

static inline void vgpt_float_to_half_n(const float *src, uint16_t *dst, size_t n) {
    for (size_t i = 0; i < n; i++) dst[i] = vgpt_float_to_half(src[i]);
}

#endif
