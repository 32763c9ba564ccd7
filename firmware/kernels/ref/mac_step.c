/* ref backend: the resumable direct path (bl_kernels.h, mac_step.c): one step of a linear / conv layer
 * over a unit of outputs and a range of input channels, with a double-buffered int32 partial. The terms are
 * those of conv.c's conv_direct (same live-tap ranges), only the channel loop is cut into [c0, c1). */
#include "bl_kernels.h"
#include "bl_ref_internal.h"


/* acc += sum over i < n of w[-i] * x[i]: a circulant diagonal walked downwards, the input upwards (no
 * per-MAC wrap test: the caller splits a block's run where the diagonal index wraps). */
static uint32_t dot_down16(uint32_t acc, const int16_t *w, const int16_t *x, uint16_t n) {
  for (; n != 0u; n--) acc += (uint32_t)bl_ref_mul16(*w--, *x++);
  return acc;
}
static uint32_t dot_down8(uint32_t acc, const int8_t *w, const int16_t *x, uint16_t n) {
  for (; n != 0u; n--) acc += (uint32_t)bl_ref_mul16((int16_t)*w--, *x++);
  return acc;
}
static uint32_t dot_up16(uint32_t acc, const int16_t *w, const int16_t *x, uint16_t n) {
  for (; n != 0u; n--) acc += (uint32_t)bl_ref_mul16(*w++, *x++);
  return acc;
}
static uint32_t dot_up8(uint32_t acc, const int8_t *w, const int16_t *x, uint16_t n) {
  for (; n != 0u; n--) acc += (uint32_t)bl_ref_mul16((int16_t)*w++, *x++);
  return acc;
}

/* A linear layer (1x1 on 1x1: in_h = in_w = 1), outputs [o0, o1) over input columns [c0, c1): the same
 * wrap-32 sums as the general walk below (addition mod 2^32 does not depend on the order), with none of its
 * per-output geometry: the fine-grained MLP's steps are a few dozen MACs, so set-up is most of their cost. */
static void mac_linear(const int16_t *x, uint16_t in_ch, const int16_t *w16, const int8_t *w8, uint16_t k,
                       const int32_t *acc_in, int32_t *acc_out, const int32_t *bias, int16_t shift, int16_t *y,
                       const bl_mac_unit *u, bool last) {
  const uint16_t q = (uint16_t)(in_ch / k + (in_ch % k != 0u)); /* blocks of input columns */
  for (uint16_t o = u->o0; o < u->o1; o++) {
    uint32_t acc = u->c0 == 0 ? 0u : (uint32_t)acc_in[o];
    if (k == 1u) { /* dense: row o, columns c0 .. c1-1 */
      const uint32_t at = (uint32_t)o * in_ch + u->c0;
      const uint16_t n = (uint16_t)(u->c1 - u->c0);
      acc = w16 != 0 ? dot_up16(acc, w16 + at, x + u->c0, n) : dot_up8(acc, w8 + at, x + u->c0, n);
    } else {
      /* W[o][c] = block (o/k, c/k), diagonal d = (o - c) mod k; within a block d falls as c rises */
      const uint16_t rr = (uint16_t)(o % k);
      uint16_t c = u->c0, cc = (uint16_t)(c % k);
      uint32_t block = ((uint32_t)(o / k) * q + c / k) * k;
      while (c < u->c1) {
        uint16_t n = (uint16_t)(k - cc);
        if (n > (uint16_t)(u->c1 - c)) n = (uint16_t)(u->c1 - c);
        const uint16_t d = (uint16_t)(rr >= cc ? rr - cc : rr + k - cc);
        const uint16_t n1 = n <= d ? n : (uint16_t)(d + 1u); /* d, d-1, .., 0 */
        if (w16 != 0) {
          acc = dot_down16(acc, w16 + block + d, x + c, n1);
          acc = dot_down16(acc, w16 + block + k - 1u, x + c + n1, (uint16_t)(n - n1)); /* k-1, k-2, .. */
        } else {
          acc = dot_down8(acc, w8 + block + d, x + c, n1);
          acc = dot_down8(acc, w8 + block + k - 1u, x + c + n1, (uint16_t)(n - n1));
        }
        c = (uint16_t)(c + n);
        cc = 0u;
        block += k;
      }
    }
    if (last) {
      if (bias != 0) acc += (uint32_t)bias[o];
      y[o] = bl_requant_s32(bl_wrap_s32(acc), shift);
    } else {
      acc_out[o] = bl_wrap_s32(acc);
    }
  }
}

static bl_status mac_step(const int16_t *x, const bl_conv_geom *g, const int16_t *w16, const int8_t *w8,
                          uint16_t k, const int32_t *acc_in, int32_t *acc_out, const int32_t *bias,
                          int16_t shift, int16_t *y, const bl_mac_unit *u) {
  if (x == 0 || u == 0 || g == 0 || (w16 == 0 && w8 == 0)) return BL_ERR_ARG;
  /* a 1x1 geometry (every linear layer) is checked without the general check's 32-bit divisions, which
   * are software routines on the MSP430 and cost more than a fine-grained step's MACs */
  const bool one = g->kh == 1u && g->kw == 1u && g->sh == 1u && g->sw == 1u && g->ph == 0u && g->pw == 0u;
  if (one) {
    if (g->in_ch == 0 || g->out_ch == 0 || g->in_h == 0 || g->in_w == 0 || g->out_h != g->in_h ||
        g->out_w != g->in_w)
      return BL_ERR_SHAPE;
  } else {
    bl_status st = bl_ref_conv_geom_check(g);
    if (st != BL_OK) return st;
  }
  if (k == 0) return BL_ERR_SHAPE;
  if (u->o0 >= u->o1 || u->o1 > g->out_ch || u->oy0 >= u->oy1 || u->oy1 > g->out_h || u->ox0 >= u->ox1 ||
      u->ox1 > g->out_w || u->c0 >= u->c1 || u->c1 > g->in_ch)
    return BL_ERR_ARG;
  const bool last = u->c1 == g->in_ch;
  /* the partial in must exist unless this is the first step, and is never the buffer written */
  if ((u->c0 > 0 && acc_in == 0) || (last ? y == 0 : acc_out == 0) || (acc_in != 0 && acc_in == acc_out))
    return BL_ERR_ARG;
  if (one && g->in_h == 1u && g->in_w == 1u) {
    mac_linear(x, g->in_ch, w16, w8, k, acc_in, acc_out, bias, shift, y, u, last);
    return BL_OK;
  }
  const uint32_t taps = (uint32_t)g->kh * g->kw;
  const uint32_t in_hw = (uint32_t)g->in_h * g->in_w, out_hw = (uint32_t)g->out_h * g->out_w;
  const uint16_t q = (uint16_t)(g->in_ch / k + (g->in_ch % k != 0u)); /* blocks of input channels */
  for (uint16_t o = u->o0; o < u->o1; o++) {
    for (uint16_t oy = u->oy0; oy < u->oy1; oy++) {
      const int32_t iy0 = (int32_t)oy * g->sh - (int32_t)g->ph;
      const uint16_t dy0 = bl_ref_live_first(iy0, g->kh), dy1 = bl_ref_live_end(iy0, g->kh, g->in_h);
      for (uint16_t ox = u->ox0; ox < u->ox1; ox++) {
        const uint32_t idx = (uint32_t)o * out_hw + (uint32_t)oy * g->out_w + ox;
        const int32_t ix0 = (int32_t)ox * g->sw - (int32_t)g->pw;
        const uint16_t dx0 = bl_ref_live_first(ix0, g->kw), dx1 = bl_ref_live_end(ix0, g->kw, g->in_w);
        const uint16_t nx = dx1 > dx0 ? (uint16_t)(dx1 - dx0) : 0u;
        const bool live = dy1 > dy0 && nx > 0;
        const uint32_t x0 = live ? (uint32_t)(iy0 + dy0) * g->in_w + (uint32_t)(ix0 + dx0) : 0u;
        const uint32_t t0 = live ? (uint32_t)dy0 * g->kw + dx0 : 0u;
        uint32_t acc = u->c0 == 0 ? 0u : (uint32_t)acc_in[idx]; /* wrap32 accumulation */
        uint32_t xc = x0 + (uint32_t)u->c0 * in_hw;
        /* W[o][c][0][0] = block (o/k, c/k), diagonal d = (o - c) mod k: walked incrementally over c (no
         * per-channel divisions); dense (k == 1) is the same walk with one channel per block */
        const uint16_t rr = (uint16_t)(o % k);
        uint16_t cc = (uint16_t)(u->c0 % k);
        uint16_t d = (uint16_t)((rr + k - cc) % k);
        uint32_t block = k == 1 ? ((uint32_t)o * g->in_ch + u->c0) * taps
                                : (((uint32_t)(o / k) * q + u->c0 / k) * k) * taps;
        const uint32_t block_step = (uint32_t)k * taps;
        for (uint16_t c = u->c0; live && c < u->c1; c++, xc += in_hw) {
          uint32_t xo = xc, wo = block + (uint32_t)d * taps + t0;
          for (uint16_t dy = dy0;;) {
            for (uint16_t dx = 0; dx < nx; dx++)
              acc += (uint32_t)bl_ref_mul16(bl_ref_weight_at(w16, w8, wo + dx), x[xo + dx]);
            if (++dy >= dy1) break;
            xo += g->in_w;
            wo += g->kw;
          }
          if (++cc == k) { /* next block of channels */
            cc = 0;
            d = rr;
            block += block_step;
          } else {
            d = d == 0 ? (uint16_t)(k - 1u) : (uint16_t)(d - 1u);
          }
        }
        if (last) {
          if (bias != 0) acc += (uint32_t)bias[o];
          y[idx] = bl_requant_s32(bl_wrap_s32(acc), shift);
        } else {
          acc_out[idx] = bl_wrap_s32(acc);
        }
      }
    }
  }
  return BL_OK;
}

bl_status bl_mac_step_w16(const int16_t *x, const bl_conv_geom *g, const int16_t *w, uint16_t k,
                          const int32_t *acc_in, int32_t *acc_out, const int32_t *bias, int16_t shift, int16_t *y,
                          const bl_mac_unit *u) {
  if (w == 0) return BL_ERR_ARG;
  return mac_step(x, g, w, 0, k, acc_in, acc_out, bias, shift, y, u);
}

bl_status bl_mac_step_w8(const int16_t *x, const bl_conv_geom *g, const int8_t *w, uint16_t k,
                         const int32_t *acc_in, int32_t *acc_out, const int32_t *bias, int16_t shift, int16_t *y,
                         const bl_mac_unit *u) {
  if (w == 0) return BL_ERR_ARG;
  return mac_step(x, g, 0, w, k, acc_in, acc_out, bias, shift, y, u);
}
