/* cmsis backend: pooling. The common 2x2 stride-2 max pool (even input width) takes two adjacent columns
 * of two rows as two words and reduces them with the DSP extension's SSUB16 + SEL (lane-wise max), then
 * the two lanes (Helium: eight columns per vector); every other window shape, and average pooling, is the ref backend's code (compiled below
 * as bl_ref_maxpool_q15). Bit-exact: max is exact in every form. */
#include "bl_cmsis_dsp.h"
#include "bl_kernels.h"

#define bl_maxpool_q15 bl_ref_maxpool_q15
#include "../ref/pool.c"
#undef bl_maxpool_q15
bl_status bl_ref_maxpool_q15(const int16_t *x, const bl_pool_geom *g, int16_t *y, uint16_t c0, uint16_t c1);

bl_status bl_maxpool_q15(const int16_t *x, const bl_pool_geom *g, int16_t *y, uint16_t c0, uint16_t c1) {
#if BL_DSP
  if (x == 0 || y == 0) return BL_ERR_ARG;
  bl_status st = bl_pool_geom_check(g);
  if (st != BL_OK) return st;
  if (c0 >= c1 || c1 > g->ch) return BL_ERR_ARG;
  if (g->kh == 2u && g->kw == 2u && g->sh == 2u && g->sw == 2u && (g->in_w & 1u) == 0) {
    const uint32_t in_hw = (uint32_t)g->in_h * g->in_w, out_hw = (uint32_t)g->out_h * g->out_w;
    for (uint32_t c = c0; c < c1; c++) {
      int16_t *out = y + c * out_hw;
      for (uint32_t oy = 0; oy < g->out_h; oy++) {
        const int16_t *r0 = x + c * in_hw + 2u * oy * g->in_w, *r1 = r0 + g->in_w;
        uint32_t ox = 0;
#if BL_MVE
        /* Helium: eight columns of both rows: lane-wise max (VMAX), then each lane pair's max with its
         * neighbour (VREV32 swaps the halfwords of each word), stored as the low halfword of each word
         * (VSTRH.32): four outputs per eight columns */
        for (; 2u * ox + 8u <= g->in_w; ox += 4u) {
          const int16x8_t m = vmaxq_s16(vld1q_s16(r0 + 2u * ox), vld1q_s16(r1 + 2u * ox));
          const int16x8_t p = vmaxq_s16(m, vrev32q_s16(m));
          vstrhq_s32(out, vreinterpretq_s32_s16(p));
          out += 4;
        }
#endif
        for (; ox < g->out_w; ox++) {
          const uint32_t a = bl_ld2(r0 + 2u * ox), b = bl_ld2(r1 + 2u * ox);
          (void)__ssub16((int16x2_t)a, (int16x2_t)b); /* sets GE per lane where a >= b */
          const uint32_t m = (uint32_t)__sel((uint8x4_t)a, (uint8x4_t)b);
          const int16_t lo = (int16_t)m, hi = (int16_t)(m >> 16);
          *out++ = lo > hi ? lo : hi;
        }
      }
    }
    return BL_OK;
  }
#endif
  return bl_ref_maxpool_q15(x, g, y, c0, c1);
}
