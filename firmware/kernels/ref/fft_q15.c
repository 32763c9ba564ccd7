/* ref backend: the spec's fixed-point radix-2 decimation-in-time FFT (docs/numeric-spec.md, "Fixed-point
 * FFT"; spec.py fft_q15). In place on k interleaved complex int16 values.
 * Written for 16-bit targets too (docs/kernels.md, "ref on the MSP430"): int16 x int16 products through
 * bl_ref_mul16, constant shifts only (no variable-shift helper loops), twiddles and bit reversal by
 * stepping instead of index multiplies. */
#include "bl_kernels.h"
#include "bl_ref_internal.h"

static bool is_pow2(uint16_t v) { return v >= 2u && (v & (uint16_t)(v - 1u)) == 0u; }

/* floor(v / 2^15) with a constant shift (no implementation-defined >> of a negative value). */
static inline int32_t asr15(int32_t v) { return v >= 0 ? (int32_t)(v >> 15) : (int32_t)~((~v) >> 15); }

/* sat16(floor(v / 2)) */
static inline int16_t half_sat16(int32_t v) {
  const int32_t h = v >= 0 ? (int32_t)(v >> 1) : (int32_t)~((~v) >> 1);
  return h > INT16_MAX ? INT16_MAX : (h < INT16_MIN ? INT16_MIN : (int16_t)h);
}

bl_status bl_fft_q15(int16_t *z, const bl_fft_cfg *cfg, bool inverse) {
  if (z == 0 || cfg == 0 || cfg->tw == 0) return BL_ERR_ARG;
  const uint16_t k = cfg->k;
  if (!is_pow2(k) || !is_pow2(cfg->tw_k) || cfg->tw_k < k) return BL_ERR_FFT_SIZE;

  /* 1. bit-reversal reorder (swap each pair once); r = bitrev(i), advanced by a reversed-carry increment */
  uint16_t r = 0;
  for (uint16_t i = 0; i < k; i++) {
    if (r > i) {
      int16_t *a = z + 2u * i, *b = z + 2u * r;
      const int16_t t0 = a[0], t1 = a[1];
      a[0] = b[0];
      a[1] = b[1];
      b[0] = t0;
      b[1] = t1;
    }
    uint16_t bit = (uint16_t)(k >> 1);
    while (r & bit) {
      r = (uint16_t)(r ^ bit);
      bit = (uint16_t)(bit >> 1);
    }
    r = (uint16_t)(r | bit);
  }

  /* 2. stages m = 2 half = 2, 4, ..., k; butterfly j of a stage uses twiddle t = j * tw_k / m */
  for (uint16_t half = 1; half < k; half = (uint16_t)(half * 2u)) {
    const uint16_t w_step = (uint16_t)(cfg->tw_k / half); /* 2 * tw_k / m: int16 elements per j */
    for (uint16_t g = 0; g < k; g = (uint16_t)(g + 2u * half)) {
      int16_t *pa = z + 2u * g, *pb = pa + 2u * half;
      const int16_t *w = cfg->tw;
      for (uint16_t j = 0; j < half; j++, pa += 2, pb += 2, w += w_step) {
        int32_t tr = pb[0], ti = pb[1];
        if (j != 0) { /* t = 0: W = 1, exact (Q15 cannot hold +1.0) */
          const int16_t br = pb[0], bi = pb[1], wr = w[0];
          /* inverse twiddle q(+sin) = sat16(-q(-sin)); only -(-32768) saturates */
          const int16_t wi = inverse ? (w[1] == INT16_MIN ? INT16_MAX : (int16_t)-w[1]) : w[1];
          /* |W| <= 1 (+ rounding): each sum stays below 2^31 in magnitude */
          tr = asr15(bl_ref_mul16(wr, br) - bl_ref_mul16(wi, bi) + 16384);
          ti = asr15(bl_ref_mul16(wr, bi) + bl_ref_mul16(wi, br) + 16384);
        }
        const int32_t ar = pa[0], ai = pa[1];
        pa[0] = half_sat16(ar + tr);
        pa[1] = half_sat16(ai + ti);
        pb[0] = half_sat16(ar - tr);
        pb[1] = half_sat16(ai - ti);
      }
    }
  }
  return BL_OK;
}
