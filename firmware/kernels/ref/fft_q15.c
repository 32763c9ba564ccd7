/* ref backend: the spec's fixed-point radix-2 decimation-in-time FFT (docs/numeric-spec.md, "Fixed-point
 * FFT"; spec.py fft_q15). In place on k interleaved complex int16 values. */
#include "bl_kernels.h"

static bool is_pow2(uint16_t v) { return v >= 2u && (v & (uint16_t)(v - 1u)) == 0u; }

bl_status bl_fft_q15(int16_t *z, const bl_fft_cfg *cfg, bool inverse) {
  if (z == 0 || cfg == 0 || cfg->tw == 0) return BL_ERR_ARG;
  const uint16_t k = cfg->k;
  if (!is_pow2(k) || !is_pow2(cfg->tw_k) || cfg->tw_k < k) return BL_ERR_FFT_SIZE;
  const uint16_t tw_step = (uint16_t)(cfg->tw_k / k);

  /* 1. bit-reversal reorder (swap each pair once) */
  uint16_t bits = 0;
  while ((uint16_t)(1u << bits) < k) bits++;
  for (uint16_t i = 0; i < k; i++) {
    uint16_t r = 0;
    for (uint16_t b = 0; b < bits; b++) r = (uint16_t)(r | (((i >> b) & 1u) << (bits - 1u - b)));
    if (r > i) {
      int16_t t0 = z[2u * i], t1 = z[2u * i + 1u];
      z[2u * i] = z[2u * r];
      z[2u * i + 1u] = z[2u * r + 1u];
      z[2u * r] = t0;
      z[2u * r + 1u] = t1;
    }
  }

  /* 2. stages m = 2, 4, ..., k */
  for (uint32_t m = 2; m <= k; m *= 2u) {
    const uint16_t half = (uint16_t)(m / 2u);
    const uint16_t t_step = (uint16_t)(k / m);
    for (uint32_t g = 0; g < k; g += m) {
      for (uint16_t j = 0; j < half; j++) {
        const uint32_t ia = 2u * (g + j), ib = 2u * (g + j + half);
        const int32_t br = z[ib], bi = z[ib + 1u];
        const uint16_t t = (uint16_t)(j * t_step);
        int32_t tr, ti;
        if (t == 0) {
          tr = br; /* Q15 cannot hold +1.0: exact */
          ti = bi;
        } else {
          const uint32_t ti_idx = 2u * (uint32_t)t * tw_step;
          const int32_t wr = cfg->tw[ti_idx];
          const int32_t wi_f = cfg->tw[ti_idx + 1u];
          /* inverse twiddle q(+sin) = sat16(-q(-sin)); only -(-32768) saturates */
          const int32_t wi = inverse ? (wi_f == INT16_MIN ? INT16_MAX : -wi_f) : wi_f;
          /* |W| <= 1 (+ rounding): each sum stays below 2^31 in magnitude */
          tr = bl_asr_s32(wr * br - wi * bi + 16384, 15);
          ti = bl_asr_s32(wr * bi + wi * br + 16384, 15);
        }
        const int32_t ar = z[ia], ai = z[ia + 1u];
        z[ia] = bl_sat16_s32(bl_asr_s32(ar + tr, 1));
        z[ia + 1u] = bl_sat16_s32(bl_asr_s32(ai + ti, 1));
        z[ib] = bl_sat16_s32(bl_asr_s32(ar - tr, 1));
        z[ib + 1u] = bl_sat16_s32(bl_asr_s32(ai - ti, 1));
      }
    }
  }
  return BL_OK;
}
