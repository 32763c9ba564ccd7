/* cmsis backend: the block FFT with CMSIS-DSP's arm_cfft_q15 (radix-4 / radix-4-by-2, its own twiddle and
 * bit-reversal tables). arm_cfft_q15 scales by 1/2 per radix-2 stage (1/4 per radix-4 stage), so the
 * forward transform returns DFT(z)/k and the inverse IDFT(z): the same overall scale as the numeric spec,
 * but not the same bits (different butterfly order, truncation instead of the spec's rounding of the
 * twiddle products, its own twiddle table). The difference is measured and documented in docs/kernels.md
 * ("cmsis backend").
 *
 * arm_cfft_q15 has lengths 16 ... 4096. For k = 8 the transform is a 16-point one on a stretched signal:
 * forward, z padded with zeros to 16 points gives bins X16[2f] = X_8[f], scaled by 1/16 instead of 1/8, so
 * the result is doubled (saturating); inverse, Z_8[f] placed at bin 2f (odd bins zero) gives
 * x16[n] = IDFT_8(Z)[n] / 2 for n < 8, again doubled. The caller's twiddle table is validated (same rules as
 * ref) but not read by the CMSIS path.
 *
 * For k = 2 and 4 the ref backend's transform is used (compiled below as bl_ref_fft_q15): the 16-point
 * stretch would multiply CMSIS-DSP's rounding error by 8 / 4 and cost more instructions than the plain
 * radix-2 code (measured on QEMU: 644 vs 208 and 738 vs 607 instructions per call for k = 2 and 4, and up
 * to 11 and 8 LSB from the spec, where the ref code is exact); see docs/kernels.md. */
#include "arm_const_structs.h"
#include "arm_math.h"
#include "bl_cmsis_dsp.h"
#include "bl_kernels.h"

#define bl_fft_q15 bl_ref_fft_q15
#include "../ref/fft_q15.c"
#undef bl_fft_q15
bl_status bl_ref_fft_q15(int16_t *z, const bl_fft_cfg *cfg, bool inverse);

#define BL_CMSIS_FFT_MIN 16u
#define BL_CMSIS_FFT_STRETCH_MIN 8u /* smaller k: the ref transform */

/* BL_FFT_MAX_K: the largest transform the generated model runs (codegen's model.cmake). Only the CMSIS-DSP
 * instances up to it (16 for k = 8, the stretched transform) are referenced, so the linker drops the other
 * sizes' twiddle and bit-reversal tables (--gc-sections); a larger k then returns BL_ERR_FFT_SIZE. Builds
 * without a model (kernel tests) keep every size. */
#ifndef BL_FFT_MAX_K
#define BL_FFT_MAX_K 4096
#endif
#define BL_FFT_LINKED(n) ((n) <= BL_FFT_MAX_K || ((n) == BL_CMSIS_FFT_MIN && BL_FFT_MAX_K >= BL_CMSIS_FFT_STRETCH_MIN))

#if defined(ARM_MATH_MVEI)
/* Helium (ARM_MATH_MVEI): CMSIS-DSP's MVE transform needs its rearranged twiddles, which only the
 * arm_cfft_init_<N>_q15 functions set up (arm_const_structs.h has no q15 instances in this build), so the
 * instance lives on the stack, initialised per call (a few field stores). */
static const arm_cfft_instance_q15 *cfft_instance(uint16_t k, arm_cfft_instance_q15 *s) {
  arm_status st;
  switch (k) {
    case 16: st = BL_FFT_LINKED(16u) ? arm_cfft_init_16_q15(s) : ARM_MATH_ARGUMENT_ERROR; break;
    case 32: st = BL_FFT_LINKED(32u) ? arm_cfft_init_32_q15(s) : ARM_MATH_ARGUMENT_ERROR; break;
    case 64: st = BL_FFT_LINKED(64u) ? arm_cfft_init_64_q15(s) : ARM_MATH_ARGUMENT_ERROR; break;
    case 128: st = BL_FFT_LINKED(128u) ? arm_cfft_init_128_q15(s) : ARM_MATH_ARGUMENT_ERROR; break;
    case 256: st = BL_FFT_LINKED(256u) ? arm_cfft_init_256_q15(s) : ARM_MATH_ARGUMENT_ERROR; break;
    case 512: st = BL_FFT_LINKED(512u) ? arm_cfft_init_512_q15(s) : ARM_MATH_ARGUMENT_ERROR; break;
    case 1024: st = BL_FFT_LINKED(1024u) ? arm_cfft_init_1024_q15(s) : ARM_MATH_ARGUMENT_ERROR; break;
    case 2048: st = BL_FFT_LINKED(2048u) ? arm_cfft_init_2048_q15(s) : ARM_MATH_ARGUMENT_ERROR; break;
    case 4096: st = BL_FFT_LINKED(4096u) ? arm_cfft_init_4096_q15(s) : ARM_MATH_ARGUMENT_ERROR; break;
    default: return 0;
  }
  return st == ARM_MATH_SUCCESS ? s : 0;
}
#else
static const arm_cfft_instance_q15 *cfft_instance(uint16_t k, arm_cfft_instance_q15 *s) {
  (void)s;
  switch (k) {
    case 16: return BL_FFT_LINKED(16u) ? &arm_cfft_sR_q15_len16 : 0;
    case 32: return BL_FFT_LINKED(32u) ? &arm_cfft_sR_q15_len32 : 0;
    case 64: return BL_FFT_LINKED(64u) ? &arm_cfft_sR_q15_len64 : 0;
    case 128: return BL_FFT_LINKED(128u) ? &arm_cfft_sR_q15_len128 : 0;
    case 256: return BL_FFT_LINKED(256u) ? &arm_cfft_sR_q15_len256 : 0;
    case 512: return BL_FFT_LINKED(512u) ? &arm_cfft_sR_q15_len512 : 0;
    case 1024: return BL_FFT_LINKED(1024u) ? &arm_cfft_sR_q15_len1024 : 0;
    case 2048: return BL_FFT_LINKED(2048u) ? &arm_cfft_sR_q15_len2048 : 0;
    case 4096: return BL_FFT_LINKED(4096u) ? &arm_cfft_sR_q15_len4096 : 0;
    default: return 0;
  }
}
#endif

bl_status bl_fft_q15(int16_t *z, const bl_fft_cfg *cfg, bool inverse) {
#ifdef BL_CMSIS_FFT_REF
  /* test hook (tests/test_kernels_cmsis.py): the spec's transform under this backend's own FFT-path steps
   * (complex MAC, finish, requantisation), which must then be bit-exact with the spec */
  return bl_ref_fft_q15(z, cfg, inverse);
#endif
  if (z == 0 || cfg == 0 || cfg->tw == 0) return BL_ERR_ARG;
  const uint16_t k = cfg->k;
  if (!is_pow2(k) || !is_pow2(cfg->tw_k) || cfg->tw_k < k) return BL_ERR_FFT_SIZE;
  if (k >= BL_CMSIS_FFT_MIN) {
    arm_cfft_instance_q15 inst;
    const arm_cfft_instance_q15 *s = cfft_instance(k, &inst);
    if (s == 0) return BL_ERR_FFT_SIZE; /* beyond CMSIS-DSP's 4096 points */
    arm_cfft_q15(s, z, inverse ? 1u : 0u, 1u);
    return BL_OK;
  }
  if (k < BL_CMSIS_FFT_STRETCH_MIN) return bl_ref_fft_q15(z, cfg, inverse);
  /* k = 8: one 16-point transform on the stretched signal (see above). Each complex value (re, im) moves
   * as one 32-bit word; the doubling saturates per halfword (QADD16 of the word with itself = sat16(2v),
   * the same as the plain C below, which the M4 image ran before: 3.7k of the digits CNN's FFT path per
   * 100 transforms went to its element-wise copies and bl_sat16_s32 calls). */
  int16_t buf[2u * BL_CMSIS_FFT_MIN] __attribute__((aligned(4)));
  const uint16_t up = (uint16_t)(BL_CMSIS_FFT_MIN / k); /* 2 */
  memset(buf, 0, sizeof buf);
  for (uint16_t f = 0; f < k; f++) bl_st2(buf + (inverse ? 2u * f * up : 2u * f), bl_ld2(z + 2u * f));
  arm_cfft_instance_q15 inst16;
  const arm_cfft_instance_q15 *s16 = cfft_instance(BL_CMSIS_FFT_MIN, &inst16);
  if (s16 == 0) return BL_ERR_FFT_SIZE;
  arm_cfft_q15(s16, buf, inverse ? 1u : 0u, 1u);
  for (uint16_t f = 0; f < k; f++) {
    const uint16_t s = inverse ? (uint16_t)(2u * f) : (uint16_t)(2u * f * up);
#if BL_DSP
    const uint32_t w = bl_ld2(buf + s);
    bl_st2(z + 2u * f, (uint32_t)__qadd16((int16x2_t)w, (int16x2_t)w));
#else
    z[2u * f] = bl_sat16_s32((int32_t)buf[s] * up);
    z[2u * f + 1u] = bl_sat16_s32((int32_t)buf[s + 1u] * up);
#endif
  }
  return BL_OK;
}
