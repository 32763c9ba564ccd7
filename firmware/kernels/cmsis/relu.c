/* cmsis backend: relu with the DSP extension's USAT16 (each signed halfword saturated to 0 .. 2^15 - 1,
 * which for int16 is exactly max(x, 0)), two elements per instruction; bit-exact. y may alias x (each word
 * is read before it is written). Without the DSP extension: the ref loop. CMSIS-DSP's
 * arm_clip_q15(x, y, 0, 32767, n) computes the same values but measured about twice the ref loop's
 * instructions (benchmarks/kernels_cmsis.py), so it is not used. */
#include "bl_cmsis_dsp.h"
#include "bl_kernels.h"

bl_status bl_relu_q15(const int16_t *x, int16_t *y, uint32_t n) {
  if (x == 0 || y == 0) return BL_ERR_ARG;
  uint32_t e = 0;
#if BL_MVE
  const int16x8_t zero = vdupq_n_s16(0);
  for (; e + 8u <= n; e += 8u) vst1q_s16(y + e, vmaxq_s16(vld1q_s16(x + e), zero));
#elif BL_DSP
  for (; e + 4u <= n; e += 4u) {
    const uint32_t a = bl_ld2(x + e), b = bl_ld2(x + e + 2u);
    bl_st2(y + e, (uint32_t)__usat16((int16x2_t)a, 15));
    bl_st2(y + e + 2u, (uint32_t)__usat16((int16x2_t)b, 15));
  }
#endif
  for (; e < n; e++) y[e] = x[e] > 0 ? x[e] : 0;
  return BL_OK;
}
