/* ref backend: max / average pooling (docs/numeric-spec.md, "maxpool" and "avgpool"; spec.py _pool).
 * No padding, floor output size; pool1d is pool2d with H = KH = sh = 1. */
#include "bl_kernels.h"
#include "bl_ref_internal.h"

/* 16x16 -> 32 products on the MSP430's hardware multiplier when start-up found one (bl_mpy, as mac_step.c's
 * index products): a helper call with its operand moves is ~15 instructions, this 4; a fine-grained pool
 * step (one output row) does seven of them in its geometry check and set-up. */
#if defined(__MSP430__)
extern volatile uint16_t *bl_mpy;
static inline uint32_t pmul(uint16_t a, uint16_t b) {
  volatile uint16_t *m = bl_mpy;
  if (m == 0) return bl_ref_umul16(a, b);
  m[0] = a; /* MPY */
  m[4] = b; /* OP2 */
  return (uint32_t)m[5] | ((uint32_t)m[6] << 16); /* RESLO, RESHI */
}
#else
static inline uint32_t pmul(uint16_t a, uint16_t b) { return bl_ref_umul16(a, b); }
#endif

/* out == (in - k) / s + 1. Where division is a software routine (BL_REF_SOFT_DIVIDE: the MSP430, ~700
 * cycles for 16 bits) as (out - 1) * s <= in - k < out * s: a fine-grained pool step (one output row) is
 * otherwise mostly these two divisions. */
static bool pool_out_ok(uint16_t out, uint16_t in, uint16_t k, uint16_t s) {
#if BL_REF_SOFT_DIVIDE
  if (out == 0u) return false;
  if (out <= 0xFFu && s <= 0xFFu) { /* both products fit 16 bits: 16-bit compares (a 32-bit one is ~4) */
    const uint16_t span16 = (uint16_t)(in - k), lo = (uint16_t)pmul((uint16_t)(out - 1u), s);
    return lo <= span16 && (uint32_t)span16 < (uint32_t)(uint16_t)(lo + s);
  }
  const uint32_t span = (uint32_t)(in - k);
  return pmul((uint16_t)(out - 1u), s) <= span && span < pmul(out, s);
#else
  return out == (in - k) / s + 1u;
#endif
}

bl_status bl_pool_geom_check(const bl_pool_geom *g) {
  if (g == 0) return BL_ERR_ARG;
  if (g->ch == 0 || g->kh == 0 || g->kw == 0 || g->sh == 0 || g->sw == 0) return BL_ERR_SHAPE;
  if (g->in_h < g->kh || g->in_w < g->kw) return BL_ERR_SHAPE;
  if (pmul(g->kh, g->kw) > 65535u) return BL_ERR_SHAPE; /* the int32 window sum must not overflow */
  if (!pool_out_ok(g->out_h, g->in_h, g->kh, g->sh) || !pool_out_ok(g->out_w, g->in_w, g->kw, g->sw))
    return BL_ERR_SHAPE;
  return BL_OK;
}

/* The window walk by pointer increments: the only products are per call (the start channel's offset and
 * the row strides), none per element. On the MSP430 a 32-bit index product is a helper call, and a
 * fine-grained pool step (one output row of one channel) was ~1,600 instructions with one per element;
 * cut that way, the step must fit a 1,000-instruction power-on period with its boot and commit. */
static inline __attribute__((always_inline)) bl_status pool(const int16_t *x, const bl_pool_geom *g, int16_t *y, uint16_t c0, uint16_t c1, bool avg) {
  if (x == 0 || y == 0) return BL_ERR_ARG;
  bl_status st = bl_pool_geom_check(g);
  if (st != BL_OK) return st;
  if (c0 >= c1 || c1 > g->ch) return BL_ERR_ARG;
  const uint32_t in_hw = pmul(g->in_h, g->in_w), out_hw = pmul(g->out_h, g->out_w);
  const uint32_t row_step = pmul(g->sh, g->in_w); /* input elements between output rows */
  const int32_t n = (int32_t)pmul(g->kh, g->kw);
  const uint16_t kh = g->kh, kw = g->kw, sw = g->sw, in_w = g->in_w, out_h = g->out_h, out_w = g->out_w;
  const int16_t *xc = x + (c0 == 0u ? 0u : (uint32_t)c0 * in_hw);
  int16_t *yo = y + (c0 == 0u ? 0u : (uint32_t)c0 * out_hw);
  for (uint16_t c = c0; c < c1; c++, xc += in_hw) {
    const int16_t *xr = xc;
    for (uint16_t oy = 0; oy < out_h; oy++, xr += row_step) {
      const int16_t *xw = xr;
      for (uint16_t ox = 0; ox < out_w; ox++, xw += sw) {
        int32_t s = 0;
        int16_t mx = INT16_MIN;
        const int16_t *row = xw;
        for (uint16_t dy = kh; dy != 0u; dy--, row += in_w) {
          const int16_t *e = row;
          if (avg) { /* (avg is a constant here: pool is inlined into each entry point) */
            for (uint16_t dx = kw; dx != 0u; dx--) s += *e++;
          } else {
            for (uint16_t dx = kw; dx != 0u; dx--, e++)
              if (*e > mx) mx = *e;
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
          v = mx;
        }
        *yo++ = v;
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
