/* ref backend: max / average pooling (docs/numeric-spec.md, "maxpool" and "avgpool"; spec.py _pool).
 * No padding, floor output size; pool1d is pool2d with H = KH = sh = 1. */
#include "bl_kernels.h"
#include "bl_ref_internal.h"

/* out == (in - k) / s + 1. Where division is a software routine (BL_REF_SOFT_DIVIDE: the MSP430, ~700
 * cycles for 16 bits) as (out - 1) * s <= in - k < out * s: a fine-grained pool step (one output row) is
 * otherwise mostly these two divisions. */
static bool pool_out_ok(uint16_t out, uint16_t in, uint16_t k, uint16_t s) {
#if BL_REF_SOFT_DIVIDE
  const uint32_t span = (uint32_t)(in - k);
  return out != 0u && bl_ref_umul16((uint16_t)(out - 1u), s) <= span && span < bl_ref_umul16(out, s);
#else
  return out == (in - k) / s + 1u;
#endif
}

bl_status bl_pool_geom_check(const bl_pool_geom *g) {
  if (g == 0) return BL_ERR_ARG;
  if (g->ch == 0 || g->kh == 0 || g->kw == 0 || g->sh == 0 || g->sw == 0) return BL_ERR_SHAPE;
  if (g->in_h < g->kh || g->in_w < g->kw) return BL_ERR_SHAPE;
  if ((uint32_t)g->kh * g->kw > 65535u) return BL_ERR_SHAPE; /* the int32 window sum must not overflow */
  if (!pool_out_ok(g->out_h, g->in_h, g->kh, g->sh) || !pool_out_ok(g->out_w, g->in_w, g->kw, g->sw))
    return BL_ERR_SHAPE;
  return BL_OK;
}

static bl_status pool(const int16_t *x, const bl_pool_geom *g, int16_t *y, uint16_t c0, uint16_t c1, bool avg) {
  if (x == 0 || y == 0) return BL_ERR_ARG;
  bl_status st = bl_pool_geom_check(g);
  if (st != BL_OK) return st;
  if (c0 >= c1 || c1 > g->ch) return BL_ERR_ARG;
  const uint32_t in_hw = (uint32_t)g->in_h * g->in_w, out_hw = (uint32_t)g->out_h * g->out_w;
  const int32_t n = (int32_t)g->kh * g->kw;
  for (uint16_t c = c0; c < c1; c++) {
    for (uint16_t oy = 0; oy < g->out_h; oy++) {
      for (uint16_t ox = 0; ox < g->out_w; ox++) {
        int32_t s = 0, mx = INT16_MIN;
        for (uint16_t dy = 0; dy < g->kh; dy++) {
          const int16_t *row = x + (uint32_t)c * in_hw + ((uint32_t)oy * g->sh + dy) * g->in_w + (uint32_t)ox * g->sw;
          for (uint16_t dx = 0; dx < g->kw; dx++) {
            s += row[dx];
            if (row[dx] > mx) mx = row[dx];
          }
        }
        int16_t v;
        if (avg) {
          /* floor((s + floor(n/2)) / n), mathematical floor also for negative sums (C's / truncates) */
          const int32_t t = s + n / 2;
          int32_t qv = t / n;
          if (t % n != 0 && t < 0) qv -= 1;
          v = (int16_t)qv; /* a mean of int16 values stays in int16 range */
        } else {
          v = (int16_t)mx;
        }
        y[(uint32_t)c * out_hw + (uint32_t)oy * g->out_w + ox] = v;
      }
    }
  }
  return BL_OK;
}

bl_status bl_maxpool_q15(const int16_t *x, const bl_pool_geom *g, int16_t *y, uint16_t c0, uint16_t c1) {
  return pool(x, g, y, c0, c1, false);
}

bl_status bl_avgpool_q15(const int16_t *x, const bl_pool_geom *g, int16_t *y, uint16_t c0, uint16_t c1) {
  return pool(x, g, y, c0, c1, true);
}
