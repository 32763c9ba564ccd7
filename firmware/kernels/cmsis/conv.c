/* cmsis backend: conv1d / conv2d.
 *
 * Direct paths (dense and block-circulant, int16 / int8 weights): for each output position the input patch
 * is gathered once (zeros for padding and for channels beyond in_ch) and every output channel of the unit is
 * one or a few CMSIS-DSP arm_dot_prod_q15 calls (exact 64-bit sums, low 32 bits = the spec's wrap32, so
 * bit-exact). Dense: w[o] (C*KH*KW, contiguous) . patch. Block-circulant, row rr of block i: per input block
 * j, sum_d sum_t w[i][j][d][t] * patch[j*k + (rr - d) mod k][t]; the patch is stored per block with its
 * channels reversed and doubled (R_j[u] = channel j*k + (-u mod k), u < 2k), so the needed channels are the
 * contiguous run R_j[k - rr ...], one dot of k*KH*KW. int8 weights of the unit's blocks are widened once per
 * call with arm_q7_to_q15 (value * 256; sums divided back exactly). Units whose patch or weights exceed the
 * stack buffers use the ref code (compiled below with its direct entry points renamed bl_ref_conv_*).
 *
 * FFT path: the ref backend's code; its transforms call bl_fft_q15, which here is CMSIS-DSP's arm_cfft_q15
 * (fft_q15.c), so the FFT path differs from the spec in the last bits as that transform does. The
 * frequency-domain complex MAC stays plain C (CMSIS-DSP's complex products shift and saturate where the spec
 * wraps; see linear.c). */
#include "arm_math.h"
#include "bl_kernels.h"

#define bl_conv_dense_w16 bl_ref_conv_dense_w16
#define bl_conv_dense_w8 bl_ref_conv_dense_w8
#define bl_conv_circ_w16 bl_ref_conv_circ_w16
#define bl_conv_circ_w8 bl_ref_conv_circ_w8
#include "../ref/conv.c"
#undef bl_conv_dense_w16
#undef bl_conv_dense_w8
#undef bl_conv_circ_w16
#undef bl_conv_circ_w8

bl_status bl_ref_conv_dense_w16(const int16_t *x, const bl_conv_geom *g, const int16_t *w, const int32_t *bias,
                                int16_t shift, int16_t *y, uint16_t o0, uint16_t o1, uint16_t oy0, uint16_t oy1);
bl_status bl_ref_conv_dense_w8(const int16_t *x, const bl_conv_geom *g, const int8_t *w, const int32_t *bias,
                               int16_t shift, int16_t *y, uint16_t o0, uint16_t o1, uint16_t oy0, uint16_t oy1);
bl_status bl_ref_conv_circ_w16(const int16_t *x, const bl_conv_geom *g, const int16_t *w, uint16_t k,
                               const int32_t *bias, int16_t shift, int16_t *y, uint16_t o0, uint16_t o1,
                               uint16_t oy0, uint16_t oy1);
bl_status bl_ref_conv_circ_w8(const int16_t *x, const bl_conv_geom *g, const int8_t *w, uint16_t k,
                              const int32_t *bias, int16_t shift, int16_t *y, uint16_t o0, uint16_t o1,
                              uint16_t oy0, uint16_t oy1);

#define BL_CMSIS_PATCH_MAX 256u /* int16: gathered patch (doubled for circulant blocks), 512 B of stack */
#define BL_CMSIS_WIDE_MAX 512u  /* int16: widened int8 weights of the unit's blocks, 1 KB of stack */

static bool fits(const bl_conv_geom *g, const int8_t *w8, uint16_t k, uint16_t o0, uint16_t o1) {
  if (k == 0) return false;
  const uint32_t taps = (uint32_t)g->kh * g->kw;
  const uint32_t q = ((uint32_t)g->in_ch + k - 1u) / k;
  const uint32_t patch = (k == 1u ? 1u : 2u * k) * q * taps;
  const uint32_t blocks = (uint32_t)(o1 - 1u) / k - o0 / k + 1u;
  return patch <= BL_CMSIS_PATCH_MAX && (w8 == 0 || blocks * q * k * taps <= BL_CMSIS_WIDE_MAX);
}

/* Caller checked arguments, geometry, ranges and fits(). */
static void conv_dot(const int16_t *x, const bl_conv_geom *g, const int16_t *w16, const int8_t *w8, uint16_t k,
                     const int32_t *bias, int16_t shift, int16_t *y, uint16_t o0, uint16_t o1, uint16_t oy0,
                     uint16_t oy1) {
  q15_t patch[BL_CMSIS_PATCH_MAX];
  q15_t wide[BL_CMSIS_WIDE_MAX];
  const uint32_t taps = (uint32_t)g->kh * g->kw;
  const uint32_t q = ((uint32_t)g->in_ch + k - 1u) / k;
  const uint32_t seg = (uint32_t)k * taps;    /* weights of one (i, j) block */
  const uint32_t ulen = k == 1u ? 1u : 2u * k; /* patch channels stored per input block */
  const uint32_t in_hw = (uint32_t)g->in_h * g->in_w, out_hw = (uint32_t)g->out_h * g->out_w;
  const uint32_t i0 = o0 / k;
  const q15_t *wbase = w16 != 0 ? w16 + i0 * q * seg : wide;
  if (w8 != 0) arm_q7_to_q15(w8 + i0 * q * seg, wide, ((uint32_t)(o1 - 1u) / k - i0 + 1u) * q * seg);
  for (uint16_t oy = oy0; oy < oy1; oy++) {
    for (uint16_t ox = 0; ox < g->out_w; ox++) {
      for (uint32_t j = 0; j < q; j++) {
        for (uint32_t u = 0; u < ulen; u++) {
          const uint32_t c = j * k + (k - u % k) % k;
          q15_t *dst = patch + (j * ulen + u) * taps;
          for (uint16_t dy = 0; dy < g->kh; dy++) {
            const int32_t iy = bl_ref_in_coord(oy, g->sh, dy, g->ph, g->in_h);
            for (uint16_t dx = 0; dx < g->kw; dx++) {
              const int32_t ix = bl_ref_in_coord(ox, g->sw, dx, g->pw, g->in_w);
              dst[(uint32_t)dy * g->kw + dx] =
                  (c < g->in_ch && iy >= 0 && ix >= 0) ? x[c * in_hw + (uint32_t)iy * g->in_w + (uint32_t)ix] : 0;
            }
          }
        }
      }
      for (uint16_t o = o0; o < o1; o++) {
        const q15_t *wi = wbase + ((uint32_t)o / k - i0) * q * seg;
        uint32_t acc = 0;
        q63_t s;
        if (k == 1u) {
          arm_dot_prod_q15(wi, patch, q * seg, &s);
          acc = (uint32_t)(uint64_t)(w8 != 0 ? s / 256 : s);
        } else {
          const uint32_t rr = o % k;
          for (uint32_t j = 0; j < q; j++) {
            arm_dot_prod_q15(wi + j * seg, patch + (j * ulen + k - rr) * taps, seg, &s);
            acc += (uint32_t)(uint64_t)(w8 != 0 ? s / 256 : s);
          }
        }
        if (bias != 0) acc += (uint32_t)bias[o];
        y[(uint32_t)o * out_hw + (uint32_t)oy * g->out_w + ox] = bl_requant_s32(bl_wrap_s32(acc), shift);
      }
    }
  }
}

static bl_status conv_check(const int16_t *x, const bl_conv_geom *g, const int16_t *y, uint16_t o0, uint16_t o1,
                            uint16_t oy0, uint16_t oy1) {
  if (x == 0 || y == 0) return BL_ERR_ARG;
  bl_status st = bl_conv_geom_check(g);
  if (st != BL_OK) return st;
  if (o0 >= o1 || o1 > g->out_ch || oy0 >= oy1 || oy1 > g->out_h) return BL_ERR_ARG;
  return BL_OK;
}

bl_status bl_conv_dense_w16(const int16_t *x, const bl_conv_geom *g, const int16_t *w, const int32_t *bias,
                            int16_t shift, int16_t *y, uint16_t o0, uint16_t o1, uint16_t oy0, uint16_t oy1) {
  if (w == 0) return BL_ERR_ARG;
  bl_status st = conv_check(x, g, y, o0, o1, oy0, oy1);
  if (st != BL_OK) return st;
  if (!fits(g, 0, 1u, o0, o1)) return bl_ref_conv_dense_w16(x, g, w, bias, shift, y, o0, o1, oy0, oy1);
  conv_dot(x, g, w, 0, 1u, bias, shift, y, o0, o1, oy0, oy1);
  return BL_OK;
}

bl_status bl_conv_dense_w8(const int16_t *x, const bl_conv_geom *g, const int8_t *w, const int32_t *bias,
                           int16_t shift, int16_t *y, uint16_t o0, uint16_t o1, uint16_t oy0, uint16_t oy1) {
  if (w == 0) return BL_ERR_ARG;
  bl_status st = conv_check(x, g, y, o0, o1, oy0, oy1);
  if (st != BL_OK) return st;
  if (!fits(g, w, 1u, o0, o1)) return bl_ref_conv_dense_w8(x, g, w, bias, shift, y, o0, o1, oy0, oy1);
  conv_dot(x, g, 0, w, 1u, bias, shift, y, o0, o1, oy0, oy1);
  return BL_OK;
}

bl_status bl_conv_circ_w16(const int16_t *x, const bl_conv_geom *g, const int16_t *w, uint16_t k,
                           const int32_t *bias, int16_t shift, int16_t *y, uint16_t o0, uint16_t o1, uint16_t oy0,
                           uint16_t oy1) {
  if (w == 0) return BL_ERR_ARG;
  bl_status st = conv_check(x, g, y, o0, o1, oy0, oy1);
  if (st != BL_OK) return st;
  if (k == 0) return BL_ERR_SHAPE;
  if (!fits(g, 0, k, o0, o1)) return bl_ref_conv_circ_w16(x, g, w, k, bias, shift, y, o0, o1, oy0, oy1);
  conv_dot(x, g, w, 0, k, bias, shift, y, o0, o1, oy0, oy1);
  return BL_OK;
}

bl_status bl_conv_circ_w8(const int16_t *x, const bl_conv_geom *g, const int8_t *w, uint16_t k,
                          const int32_t *bias, int16_t shift, int16_t *y, uint16_t o0, uint16_t o1, uint16_t oy0,
                          uint16_t oy1) {
  if (w == 0) return BL_ERR_ARG;
  bl_status st = conv_check(x, g, y, o0, o1, oy0, oy1);
  if (st != BL_OK) return st;
  if (k == 0) return BL_ERR_SHAPE;
  if (!fits(g, w, k, o0, o1)) return bl_ref_conv_circ_w8(x, g, w, k, bias, shift, y, o0, o1, oy0, oy1);
  conv_dot(x, g, 0, w, k, bias, shift, y, o0, o1, oy0, oy1);
  return BL_OK;
}
