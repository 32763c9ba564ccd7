/* lea backend: conv1d / conv2d (docs/numeric-spec.md, "direct path (convolutions)" and "Convolution, FFT
 * path"). Direct paths: one msp_mac_q15 dot product (staged in LEA RAM, bl_lea_internal.h) per
 * output element over the taps that fall inside the input (zero padding contributes nothing). FFT path: the
 * channel-block spectra with msp_cmplx_fft_fixed_q15, the frequency MAC over blocks and taps as one
 * msp_cmplx_mac_q15 per bin (bl_lea_bins), the inverse with msp_cmplx_ifft_fixed_q15; bookkeeping on the
 * CPU (ref helpers). */
#include "bl_kernels.h"
#include "bl_lea_eve.h"
#include "bl_lea_internal.h"

bl_status bl_conv_geom_check(const bl_conv_geom *g) { return bl_ref_conv_geom_check(g); }

static bl_status conv_direct_rows(const int16_t *x, const bl_conv_geom *g, const int16_t *w16, const int8_t *w8,
                             uint16_t k, const int32_t *bias, int16_t shift, int16_t *y, uint16_t o0,
                             uint16_t o1, uint16_t oy0, uint16_t oy1) {
  if (x == 0 || y == 0 || (w16 == 0 && w8 == 0)) return BL_ERR_ARG;
  bl_status st = bl_conv_geom_check(g);
  if (st != BL_OK) return st;
  if (k == 0) return BL_ERR_SHAPE;
  if (o0 >= o1 || o1 > g->out_ch || oy0 >= oy1 || oy1 > g->out_h) return BL_ERR_ARG;
  const uint16_t taps = (uint16_t)(g->kh * g->kw);
  const uint32_t in_hw = (uint32_t)g->in_h * g->in_w, out_hw = (uint32_t)g->out_h * g->out_w;
  const uint32_t q = bl_lea_blocks(g->in_ch, k);
  /* Index arithmetic by pointer steps (a 32-bit multiply per product is a helper call on the MSP430 that
   * costs more than staging the product): per output the live taps [dy0, dy1) x [dx0, dx1), per channel
   * the input plane and the weight vector W[o][c] (k = 1: o*in_ch + c; circulant: block (o/k, c/k),
   * diagonal (o - c) mod k, walked as in the ref mac_step). */
  for (uint16_t o = o0; o < o1; o++) {
    const uint16_t rr = (uint16_t)(o % k);
    const uint32_t w_o = k == 1 ? (uint32_t)o * g->in_ch * taps : (uint32_t)(o / k) * q * k * taps;
    int16_t *yp = y + (uint32_t)o * out_hw + (uint32_t)oy0 * g->out_w; /* stepped per output */
    int16_t iy0 = (int16_t)((int16_t)(oy0 * g->sh) - (int16_t)g->ph); /* coordinates fit 16 bits */
    for (uint16_t oy = oy0; oy < oy1; oy++, iy0 = (int16_t)(iy0 + g->sh)) {
      const uint16_t dy0 = bl_ref_live_first(iy0, g->kh), dy1 = bl_ref_live_end(iy0, g->kh, g->in_h);
      const int16_t *xrow = x + (int32_t)(iy0 + (int16_t)dy0) * g->in_w; /* channel 0, first live row */
      int16_t ix0 = (int16_t)(-(int16_t)g->pw);
      for (uint16_t ox = 0; ox < g->out_w; ox++, ix0 = (int16_t)(ix0 + g->sw)) {
        const uint16_t dx0 = bl_ref_live_first(ix0, g->kw), dx1 = bl_ref_live_end(ix0, g->kw, g->in_w);
        bl_lea_dot d = {0u, 0u};
        if (dy1 > dy0 && dx1 > dx0) {
          const uint16_t nx = (uint16_t)(dx1 - dx0);
          const uint16_t woff = (uint16_t)(dy0 * g->kw + dx0); /* first live tap within W[o][c] */
          const int16_t *xc = xrow + (ix0 + (int16_t)dx0); /* channel 0's first live tap */
          uint32_t wb = w_o; /* W[o][0] (k = 1) or block (o/k, 0) */
          uint16_t cc = 0, dd = rr;
          int16_t *sx = bl_lea_xt, *sw = bl_lea_st; /* staging pointers: d.n = sx - bl_lea_xt */
          const uint16_t rows = (uint16_t)(dy1 - dy0), per_c = (uint16_t)(rows * nx); /* products per channel */
          for (uint16_t c = 0; c < g->in_ch; c++, xc += in_hw) {
            const uint32_t wv = (k == 1 ? wb : wb + (uint32_t)dd * taps) + woff; /* W[o][c][dy0][dx0] */
            if ((uint16_t)(sx - bl_lea_xt) + per_c > BL_LEA_AREA) { /* the area is full: one MAC so far */
              d.n = (uint16_t)(sx - bl_lea_xt);
              st = bl_lea_dot_flush(&d);
              if (st != BL_OK) return st;
              sx = bl_lea_xt;
              sw = bl_lea_st;
            }
            const int16_t *xr = xc;
            if (w16 != 0) {
              const int16_t *wq = w16 + wv;
              for (uint16_t dy = 0; dy < rows; dy++, xr += g->in_w, wq += g->kw) {
                for (uint16_t dx = 0; dx < nx; dx++) {
                  *sx++ = xr[dx];
                  *sw++ = wq[dx];
                }
              }
            } else {
              const int8_t *wq = w8 + wv;
              for (uint16_t dy = 0; dy < rows; dy++, xr += g->in_w, wq += g->kw) {
                for (uint16_t dx = 0; dx < nx; dx++) {
                  *sx++ = xr[dx];
                  *sw++ = wq[dx];
                }
              }
            }
            if (k == 1) {
              wb += taps;
            } else if (++cc == k) { /* next block of channels */
              cc = 0;
              dd = rr;
              wb += (uint32_t)k * taps;
            } else {
              dd = dd == 0 ? (uint16_t)(k - 1u) : (uint16_t)(dd - 1u);
            }
          }
          d.n = (uint16_t)(sx - bl_lea_xt);
        }
        if (st == BL_OK) st = bl_lea_dot_flush(&d);
        if (st != BL_OK) return st;
        if (bias != 0) d.acc += (uint32_t)bias[o];
        *yp++ = bl_lea_requant(bl_lea_wrap(d.acc), shift);
      }
    }
  }
  return BL_OK;
}

/* ---- resident route: each input patch staged once, every weight vector of the call resident ------------
 * A call's output channels [o0, o1) share every input patch. The route stages the call's weight vectors
 * W[o] (in_ch x kh x kw taps, c-major as the dense layout; circulant: block (o/k, c/k), diagonal (o - c) mod
 * k, per channel; w8 widened) ONCE per call into LEA RAM, then per output position the patch (the same
 * order, zeros where the taps fall in the padding) ONCE, and runs one MAC per (position, channel) on the
 * resident vectors. Vector length L = in_ch kh kw rounded up to even (a zero pads both). The patch takes
 * bl_lea_xt[0, L); the weight vectors the L-sized slots of bl_lea_st and of bl_lea_xt after the patch;
 * channels beyond the slots go in groups (weights restaged per group, patches per group and position). On
 * the MSP430 each MAC is started without waiting (bl_lea_mac_ab_begin) and the CPU converts the previous
 * result while LEA runs. Exact as the staged path: a result at an int32 bound is recomputed on the CPU from
 * the staged operands (bl_lea_internal.h, "Exact MACs"). Nothing is kept between calls (FLEX: a re-run
 * stages again; the layer residency of the FFT path is dropped). Returns BL_ERR_SHAPE, before writing
 * anything, for a geometry it does not take (L > BL_LEA_AREA): the caller then takes the staged path. */
/* 1 when an IQ31 MAC result may have saturated (high word 0x7FFF or 0x8000): recomputed on the CPU. */
static inline int conv_maybe_saturated(int32_t r) {
  const uint16_t hi = (uint16_t)((uint32_t)r >> 16);
  return (uint16_t)((uint16_t)(hi + 1u) & 0xFFFEu) == 0x8000u;
}

/* r / 2 for an even MAC result that did not saturate (an arithmetic shift without shifting a negative). */
static inline uint32_t conv_half(int32_t r) {
  return ((uint32_t)r >> 1) | ((uint32_t)r & 0x80000000u);
}

/* The output of a MAC result r = sat32(2 * sum(a * w)) with bias b: the spec's
 * requant(wrap32(sum + b), shift). Common case (|r| < 2^30, |b| < 2^28, 1 <= shift <= 15) straight from r
 * (rq_iq31, as linear.c's rows); else the general way, the sum recomputed when r may have saturated. */
static __attribute__((noinline)) int16_t conv_out_slow(int32_t r, int32_t b, int16_t shift, const int16_t *a,
                                                        const int16_t *w, uint16_t n) {
  uint32_t acc;
  if (conv_maybe_saturated(r)) {
    acc = 0u;
    for (uint16_t i = 0; i < n; i++) acc += (uint32_t)bl_ref_mul16(a[i], w[i]);
  } else {
    acc = conv_half(r);
  }
  acc += (uint32_t)b;
  return bl_lea_requant(bl_lea_wrap(acc), shift);
}

static inline int16_t conv_out(int32_t r, int32_t b, const rq_t *rq, int fast, int16_t shift, const int16_t *a,
                               const int16_t *w, uint16_t n) {
  const uint16_t rh = (uint16_t)((uint32_t)r >> 16), bh = (uint16_t)((uint32_t)b >> 16);
  if (fast && (rh < 0x4000u || rh >= 0xC000u) && (bh < 0x1000u || bh >= 0xF000u)) {
    return rq_iq31((int32_t)((uint32_t)r + (uint32_t)b + (uint32_t)b), rq);
  }
  return conv_out_slow(r, b, shift, a, w, n);
}

/* n values from src (int16 or int8, widened) to d. */
static inline void conv_copy_w(int16_t *d, const int16_t *w16, const int8_t *w8, uint32_t at, uint16_t n) {
  if (w16 != 0) {
#if MSP_HAVE_CMAC_MANY
    bl_lea_dma_copy16(d, w16 + at, n); /* LEA cannot read FRAM: DMA, 2 cycles a word */
#else
    const int16_t *s = w16 + at;
    for (uint16_t i = 0; i < n; i++) *d++ = *s++;
#endif
  } else {
    const int8_t *s = w8 + at;
    for (uint16_t i = 0; i < n; i++) *d++ = *s++;
  }
}

/* The patch of one output position into p: per channel kh rows of kw taps, zeros outside the input. xrow:
 * channel 0's first live row (rows of them, after lead zeros and before trail zeros per channel), ix0 the
 * first tap's column, [dx0, dx1) the live columns. */
static __attribute__((noinline)) void conv_patch(int16_t *p, const int16_t *xrow, int16_t ix0, uint16_t dx0,
                                                 uint16_t dx1, uint16_t rows, uint16_t lead, uint16_t trail,
                                                 uint16_t len0, uint16_t in_ch, uint16_t in_hw, uint16_t in_w,
                                                 uint16_t kw) {
  if (rows == 0u || dx1 <= dx0) {
    for (uint16_t t = 0; t < len0; t++) *p++ = 0;
    return;
  }
  const uint16_t nx = (uint16_t)(dx1 - dx0), tail = (uint16_t)(kw - dx1);
  const int16_t *xc = xrow + (int16_t)(ix0 + (int16_t)dx0); /* channel 0, first live tap */
  for (uint16_t c = 0; c < in_ch; c++, xc += in_hw) {
    for (uint16_t t = 0; t < lead; t++) *p++ = 0;
    const int16_t *xr = xc;
    for (uint16_t dy = 0; dy < rows; dy++, xr += in_w) {
      for (uint16_t t = 0; t < dx0; t++) *p++ = 0;
      const int16_t *xs = xr;
      for (uint16_t t = 0; t < nx; t++) *p++ = *xs++;
      for (uint16_t t = 0; t < tail; t++) *p++ = 0;
    }
    for (uint16_t t = 0; t < trail; t++) *p++ = 0;
  }
}

/* The rows the call's output rows read, [iy_base, iy_base + rp), of nch channels from x, columns -pw .. -pw + wp - 1,
 * zero-padded, into h[in_ch][rp][wp] (a halo copy: then every patch is kw-runs of it, no padding tests). */
static __attribute__((noinline)) void conv_halo(int16_t *h, const int16_t *x, const bl_conv_geom *g, uint16_t nch,
                                                int16_t iy_base, uint16_t rp, uint16_t wp, uint16_t in_hw) {
  const uint16_t in_w = g->in_w, pw = g->pw;
  const uint16_t left = pw < wp ? pw : wp;
  const uint16_t ncopy = (uint16_t)(wp - left) < in_w ? (uint16_t)(wp - left) : in_w;
  const uint16_t right = (uint16_t)(wp - left - ncopy);
  for (uint16_t c = 0; c < nch; c++, x += in_hw) {
    int16_t iy = iy_base;
    for (uint16_t r = 0; r < rp; r++, iy++) {
      if (iy < 0 || iy >= (int16_t)g->in_h) {
        for (uint16_t t = 0; t < wp; t++) *h++ = 0;
        continue;
      }
      const int16_t *xs = x + (uint16_t)((uint16_t)iy * in_w);
      for (uint16_t t = 0; t < left; t++) *h++ = 0;
      for (uint16_t t = 0; t < ncopy; t++) *h++ = *xs++;
      for (uint16_t t = 0; t < right; t++) *h++ = 0;
    }
  }
}

/* The patch of one output position from the halo copy: s = its first tap, per channel kh runs of kw. */
static __attribute__((noinline)) void conv_patch_halo(int16_t *p, const int16_t *s, uint16_t in_ch, uint16_t kh,
                                                      uint16_t kw, uint16_t plane, uint16_t wp) {
  for (uint16_t c = 0; c < in_ch; c++, s += plane) {
    const int16_t *r = s;
    if (kw == 3u) {
      for (uint16_t dy = 0; dy < kh; dy++, r += wp, p += 3) {
        p[0] = r[0];
        p[1] = r[1];
        p[2] = r[2];
      }
    } else {
      for (uint16_t dy = 0; dy < kh; dy++, r += wp) {
        const int16_t *q = r;
        for (uint16_t t = 0; t < kw; t++) *p++ = *q++;
      }
    }
  }
}

#define CONV_RQ_MAX 32u /* channels a bl_lea_mac_rq_run takes: 3 words each in bl_lea_acc, results */

static bl_status conv_resident(const int16_t *x, const bl_conv_geom *g, const int16_t *w16, const int8_t *w8,
                               uint16_t k, const int32_t *bias, int16_t shift, int16_t *y, uint16_t o0,
                               uint16_t o1, uint16_t oy0, uint16_t oy1, uint16_t c0, uint16_t ce) {
  const uint16_t kh = g->kh, kw = g->kw, in_ch = g->in_ch, in_w = g->in_w;
  if (in_ch > BL_LEA_AREA || kh > BL_LEA_AREA || kw > BL_LEA_AREA || ce > in_ch || c0 >= ce) return BL_ERR_SHAPE;
  const uint16_t nch = (uint16_t)(ce - c0); /* the patch's input channels: [c0, ce) */
  uint16_t taps = 0u, len0 = 0u; /* kh * kw and nch * taps by addition, bounded by BL_LEA_AREA */
  for (uint16_t i = 0; i < kh; i++) {
    taps = (uint16_t)(taps + kw);
    if (taps > BL_LEA_AREA) return BL_ERR_SHAPE;
  }
  for (uint16_t i = 0; i < nch; i++) {
    len0 = (uint16_t)(len0 + taps);
    if (len0 > BL_LEA_AREA) return BL_ERR_SHAPE;
  }
  const uint16_t len = (uint16_t)(len0 + (len0 & 1u));
  if (len > BL_LEA_AREA || len == 0u) return BL_ERR_SHAPE;
  /* slots: ns in bl_lea_st, then bl_lea_xt after the patch */
  uint16_t ns = 0u, nslots = 0u;
  for (uint16_t u = len; u <= BL_LEA_AREA; u = (uint16_t)(u + len)) ns++;
  nslots = ns;
  for (uint16_t u = (uint16_t)(2u * len); u <= BL_LEA_AREA; u = (uint16_t)(u + len)) nslots++;
#if MSP_HAVE_CMAC_MANY
  if (bl_lea_mac_ab_prepare(&bl_lea_result[0], len) != MSP_SUCCESS) return BL_ERR_SHAPE;
#endif
  bl_lea_res_drop(); /* bl_lea_xt / bl_lea_st are rewritten */
  rq_t rq = {0u, 0u, 0};
  const int fast = rq_init(&rq, shift);
  const uint16_t out_w = g->out_w, sh = g->sh, sw = g->sw;
  if ((uint32_t)g->in_h * in_w > 0xFFFFu || (uint32_t)g->out_h * out_w > 0xFFFFu) return BL_ERR_SHAPE;
  const uint16_t in_hw = (uint16_t)((uint32_t)g->in_h * in_w), out_hw = (uint16_t)((uint32_t)g->out_h * out_w);
  const uint32_t q = bl_lea_blocks(in_ch, k);
  const uint32_t blk_row = (uint32_t)q * k * taps; /* circulant: weights per block row */
  /* input channel c0 and its taps' offset in a block row (no 32-bit multiply helper for the plain c0 = 0) */
  const int16_t *const xc0 = c0 != 0u ? x + (uint32_t)c0 * in_hw : x;
  const uint32_t c0_taps = c0 != 0u ? (uint32_t)c0 * taps : 0u;
  int16_t *const patch = bl_lea_xt;
  patch[len0] = 0; /* the odd pad (when len > len0), never rewritten below */
  /* the halo copy of the rows the call reads, in bl_lea_xt after the patch and its weight slots when it fits
   * (LEA RAM the LEA does not read here); else each patch tests the padding (conv_patch) */
  int16_t *halo = 0;
  uint16_t hrp = 0u, hwp = 0u, hplane = 0u;
  {
    const uint16_t most = (uint16_t)(o1 - o0) < nslots ? (uint16_t)(o1 - o0) : nslots;
    const uint16_t used = (uint16_t)(len + (most > ns ? (uint16_t)(most - ns) * len : 0u));
    const uint32_t rp = (uint32_t)(oy1 - oy0 - 1u) * sh + g->kh, wp = (uint32_t)(out_w - 1u) * sw + kw;
    const uint32_t plane = rp * wp, total = plane * nch;
    if (total <= (uint32_t)(BL_LEA_AREA - used)) {
      halo = bl_lea_xt + used;
      hrp = (uint16_t)rp;
      hwp = (uint16_t)wp;
      hplane = (uint16_t)plane;
      conv_halo(halo, xc0, g, nch, (int16_t)((int16_t)(oy0 * sh) - (int16_t)g->ph), hrp, hwp, in_hw);
    }
  }
  for (uint16_t ga = o0; ga < o1;) {
    const uint16_t n = (uint16_t)(o1 - ga) < nslots ? (uint16_t)(o1 - ga) : nslots, gb = (uint16_t)(ga + n);
    /* the group's weight vectors */
    {
      int16_t *d = bl_lea_st;
      uint16_t j = 0;
      uint32_t at = (uint32_t)ga * len0; /* dense: W[o] */
      uint16_t rr = (uint16_t)(ga % k);
      uint32_t brow = (uint32_t)(ga / k) * blk_row + c0_taps; /* circulant: block (o / k, c0 / k) */
      for (uint16_t o = ga; o < gb; o++, j++) {
        if (j == ns) d = bl_lea_xt + len;
        if (k == 1u) {
          conv_copy_w(d, w16, w8, at, len0);
          at += len0;
        } else {
          uint32_t wb = brow;
          uint16_t cc = 0, dd = rr;
          int16_t *dc = d;
          for (uint16_t c = 0; c < nch; c++, dc += taps) {
            conv_copy_w(dc, w16, w8, wb + (uint32_t)dd * taps, taps);
            if (++cc == k) {
              cc = 0;
              dd = rr;
              wb += (uint32_t)k * taps;
            } else {
              dd = dd == 0 ? (uint16_t)(k - 1u) : (uint16_t)(dd - 1u);
            }
          }
          if (++rr == k) {
            rr = 0;
            brow += blk_row;
          }
        }
        d[len0] = 0;
        d += len;
      }
    }
#if MSP_HAVE_CMAC_MANY
    /* the MAC + requantisation loop of the driver (bl_lea_mac_rq_run) when every bias of the group is
     * below 2^28 and the group fits its records (3 words a channel in bl_lea_acc, unused by the direct path)
     * and results (bl_lea_result) */
    bl_lea_mac_rq_t mq;
    int use_rq = fast && n <= CONV_RQ_MAX && out_hw <= 0x7FFFu;
    if (use_rq) {
      uint16_t *rec = (uint16_t *)bl_lea_acc;
      const int16_t *wv = bl_lea_st;
      for (uint16_t j = 0; j < n && use_rq; j++, rec += 3) {
        if (j == ns) wv = bl_lea_xt + len;
        const int32_t b = bias != 0 ? bias[ga + j] : 0;
        const uint16_t bh = (uint16_t)((uint32_t)b >> 16);
        const uint32_t v = (uint32_t)b + (uint32_t)b + rq.half;
        rec[0] = (uint16_t)((uintptr_t)wv >> 2);
        rec[1] = (uint16_t)v;
        rec[2] = (uint16_t)(v >> 16);
        use_rq = bh < 0x1000u || bh >= 0xF000u;
        wv += len;
      }
      use_rq = use_rq && bl_lea_mac_rq_prepare(&mq, patch, (const uint16_t *)bl_lea_acc, n, &bl_lea_result[0],
                                               (uint16_t)(out_hw << 1), shift) == MSP_SUCCESS;
    }
#endif
    int16_t *yg = y + (uint32_t)ga * out_hw + (uint32_t)oy0 * out_w; /* channel ga at (oy, ox) */
    int16_t iy0 = (int16_t)((int16_t)(oy0 * sh) - (int16_t)g->ph);
    const int16_t *hrow = halo; /* the halo copy's row of output row oy */
    const uint16_t hstep = (uint16_t)(sh * hwp);
    for (uint16_t oy = oy0; oy < oy1; oy++, iy0 = (int16_t)(iy0 + sh), hrow = halo != 0 ? hrow + hstep : 0) {
      const uint16_t dy0 = bl_ref_live_first(iy0, kh), dy1 = bl_ref_live_end(iy0, kh, g->in_h);
      const uint16_t rows = dy1 > dy0 ? (uint16_t)(dy1 - dy0) : 0u;
      const uint16_t lead = (uint16_t)(dy0 * kw), trail = (uint16_t)(taps - lead - rows * kw);
      /* the first live row's offset in a plane (< in_hw: no overflow in 16 bits) */
      const uint16_t row0 = rows != 0u ? (uint16_t)((uint16_t)(iy0 + (int16_t)dy0) * in_w) : 0u;
      int16_t ix0 = (int16_t)(-(int16_t)g->pw);
      const int16_t *hp = hrow; /* this position's first tap in the halo copy */
      for (uint16_t ox = 0; ox < out_w; ox++, ix0 = (int16_t)(ix0 + sw), yg++) {
        const uint16_t dx0 = bl_ref_live_first(ix0, kw), dx1 = bl_ref_live_end(ix0, kw, in_w);
        if (halo != 0) {
          conv_patch_halo(patch, hp, nch, kh, kw, hplane, hwp);
          hp += sw;
        } else {
          conv_patch(patch, xc0 + row0, ix0, dx0, dx1, rows, lead, trail, len0, nch, in_hw, in_w, kw);
        }
        /* one MAC per channel on the resident vectors; result j converted while MAC j + 1 runs */
        const int16_t *wv = bl_lea_st;
        int16_t *yo = yg;
        const int32_t *bp = bias != 0 ? bias + ga : 0;
#if MSP_HAVE_CMAC_MANY
        if (use_rq) {
          if (bl_lea_mac_rq_run(&mq, yg) != MSP_SUCCESS) return BL_ERR_ARG;
          if (mq.flag) { /* a result outside the fast range: every output of the position the general way */
            for (uint16_t j = 0; j < n; j++, yo += out_hw) {
              if (j == ns) wv = bl_lea_xt + len;
              *yo = conv_out_slow(bl_lea_result[j], bp != 0 ? *bp++ : 0, shift, patch, wv, len);
              wv += len;
            }
          }
          continue;
        }
        if (bl_lea_mac_ab_begin(patch, wv) != MSP_SUCCESS) return BL_ERR_ARG;
        for (uint16_t j = 0; j < n; j++) {
          if (bl_lea_done() != MSP_SUCCESS) return BL_ERR_ARG;
          const int32_t r = bl_lea_result[0];
          const int16_t *wj = wv;
          if (j + 1u < n) {
            wv = (uint16_t)(j + 1u) == ns ? bl_lea_xt + len : wv + len;
            if (bl_lea_mac_ab_begin(patch, wv) != MSP_SUCCESS) return BL_ERR_ARG;
          }
          *yo = conv_out(r, bp != 0 ? *bp++ : 0, &rq, fast, shift, patch, wj, len);
          yo += out_hw;
        }
#else
        for (uint16_t j = 0; j < n; j++) {
          if (j == ns) wv = bl_lea_xt + len;
          const msp_mac_q15_params prm = {len};
          if (msp_mac_q15(&prm, patch, wv, &bl_lea_result[0]) != MSP_SUCCESS) return BL_ERR_ARG;
          *yo = conv_out(bl_lea_result[0], bp != 0 ? *bp++ : 0, &rq, fast, shift, patch, wv, len);
          yo += out_hw;
          wv += len;
        }
#endif
      }
    }
    ga = gb;
  }
  return BL_OK;
}

/* The resident route, else the rows with the flushes' LEA MAC prepared once (bl_lea_dot_begin / end around
 * every way out). ce = 0: every input channel; else (EVE, bl_lea_conv_circ_win) the resident route alone over
 * input channels [c0, ce), BL_ERR_SHAPE with nothing written where it does not take the call. */
static bl_status conv_direct(const int16_t *x, const bl_conv_geom *g, const int16_t *w16, const int8_t *w8,
                             uint16_t k, const int32_t *bias, int16_t shift, int16_t *y, uint16_t o0,
                             uint16_t o1, uint16_t oy0, uint16_t oy1, uint16_t c0, uint16_t ce) {
  if (x != 0 && y != 0 && (w16 != 0 || w8 != 0) && k != 0 && o0 < o1 && o1 <= g->out_ch && oy0 < oy1 &&
      oy1 <= g->out_h && bl_conv_geom_check(g) == BL_OK) {
    const bl_status rst =
        conv_resident(x, g, w16, w8, k, bias, shift, y, o0, o1, oy0, oy1, c0, ce != 0u ? ce : g->in_ch);
    if (rst != BL_ERR_SHAPE) return rst;
  }
  if (ce != 0u) return BL_ERR_SHAPE;
  bl_lea_dot_begin();
  const bl_status st = conv_direct_rows(x, g, w16, w8, k, bias, shift, y, o0, o1, oy0, oy1);
  bl_lea_dot_end();
  return st;
}

bl_status bl_conv_dense_w16(const int16_t *x, const bl_conv_geom *g, const int16_t *w, const int32_t *bias,
                            int16_t shift, int16_t *y, uint16_t o0, uint16_t o1, uint16_t oy0, uint16_t oy1) {
  if (w == 0) return BL_ERR_ARG;
  return conv_direct(x, g, w, 0, 1, bias, shift, y, o0, o1, oy0, oy1, 0u, 0u);
}

bl_status bl_conv_dense_w8(const int16_t *x, const bl_conv_geom *g, const int8_t *w, const int32_t *bias,
                           int16_t shift, int16_t *y, uint16_t o0, uint16_t o1, uint16_t oy0, uint16_t oy1) {
  if (w == 0) return BL_ERR_ARG;
  return conv_direct(x, g, 0, w, 1, bias, shift, y, o0, o1, oy0, oy1, 0u, 0u);
}

bl_status bl_conv_circ_w16(const int16_t *x, const bl_conv_geom *g, const int16_t *w, uint16_t k,
                           const int32_t *bias, int16_t shift, int16_t *y, uint16_t o0, uint16_t o1, uint16_t oy0,
                           uint16_t oy1) {
  if (w == 0) return BL_ERR_ARG;
  return conv_direct(x, g, w, 0, k, bias, shift, y, o0, o1, oy0, oy1, 0u, 0u);
}

bl_status bl_conv_circ_w8(const int16_t *x, const bl_conv_geom *g, const int8_t *w, uint16_t k,
                          const int32_t *bias, int16_t shift, int16_t *y, uint16_t o0, uint16_t o1, uint16_t oy0,
                          uint16_t oy1) {
  if (w == 0) return BL_ERR_ARG;
  return conv_direct(x, g, 0, w, k, bias, shift, y, o0, o1, oy0, oy1, 0u, 0u);
}

bl_status bl_lea_conv_circ_win(const int16_t *x, const bl_conv_geom *g, const int16_t *w16, const int8_t *w8,
                               uint16_t k, const int32_t *bias, int16_t shift, int16_t *y, uint16_t o0, uint16_t o1,
                               uint16_t oy1, uint16_t c0, uint16_t ce) {
  if (k < 2u || ce == 0u) return BL_ERR_SHAPE;
  return conv_direct(x, g, w16, w8, k, bias, shift, y, o0, o1, 0u, oy1, c0, ce);
}

static bl_status check_cfg(const bl_fft_cfg *cfg) {
  const uint16_t k = cfg->k, t = cfg->tw_k;
  if (cfg->tw == 0) return BL_ERR_ARG;
  if (k < 2u || (k & (uint16_t)(k - 1u)) != 0u || t < k || (t & (uint16_t)(t - 1u)) != 0u) return BL_ERR_FFT_SIZE;
  return BL_OK;
}

bl_status bl_conv_fft_input_q15(const int16_t *x, const bl_conv_geom *g, const bl_fft_cfg *cfg, int16_t *xs,
                                uint16_t y0, uint16_t y1, int16_t *work) {
  bl_lea_res_drop(); /* xs is rewritten (bl_lea_internal.h, "Layer residency") */
  if (x == 0 || cfg == 0 || xs == 0 || work == 0) return BL_ERR_ARG;
  bl_status st = bl_conv_geom_check(g);
  if (st != BL_OK) return st;
  const uint16_t k = cfg->k;
  if (k < 2u) return BL_ERR_SHAPE;
  if (y0 >= y1 || y1 > g->in_h) return BL_ERR_ARG;
  st = check_cfg(cfg);
  if (st != BL_OK) return st;
  int16_t *buf = bl_lea_fft_target(k, work);
  const uint32_t hw = (uint32_t)g->in_h * g->in_w;
  const uint32_t q = bl_lea_blocks(g->in_ch, k);
  for (uint16_t yy = y0; yy < y1; yy++) {
    for (uint16_t xx = 0; xx < g->in_w; xx++) {
      const uint32_t pos = (uint32_t)yy * g->in_w + xx;
      for (uint32_t j = 0; j < q; j++) {
        for (uint16_t b = 0; b < k; b++) {
          const uint32_t c = j * k + b;
          buf[2u * b] = c < g->in_ch ? x[c * hw + pos] : 0;
          buf[2u * b + 1u] = 0;
        }
        st = bl_lea_fft_run(buf, cfg, false);
        if (st != BL_OK) return st;
        bl_ref_pack_spectrum(buf, k, xs + j * k * hw + pos, hw);
      }
    }
  }
  return BL_OK;
}

bl_status bl_conv_fft_block_q15(const int16_t *xs, const bl_conv_geom *g, const int16_t *spectra,
                                const bl_fft_cfg *cfg, int16_t shift_z, int16_t shift_out, const int32_t *bias_out,
                                int16_t *y, uint16_t i, uint16_t oy0, uint16_t oy1, int16_t *work) {
  if (xs == 0 || spectra == 0 || cfg == 0 || y == 0 || work == 0) return BL_ERR_ARG;
  bl_status st = bl_conv_geom_check(g);
  if (st != BL_OK) return st;
  const uint16_t k = cfg->k;
  if (k < 2u) return BL_ERR_SHAPE;
  const uint32_t q = bl_lea_blocks(g->in_ch, k);
  const uint32_t p = bl_lea_blocks(g->out_ch, k);
  if (i >= p || oy0 >= oy1 || oy1 > g->out_h) return BL_ERR_ARG;
  st = check_cfg(cfg);
  if (st != BL_OK) return st;
  int16_t *buf = bl_lea_fft_target(k, work);
  const uint32_t taps = (uint32_t)g->kh * g->kw;
  const uint32_t in_hw = (uint32_t)g->in_h * g->in_w, out_hw = (uint32_t)g->out_h * g->out_w;
  for (uint16_t oy = oy0; oy < oy1; oy++) {
    for (uint16_t ox = 0; ox < g->out_w; ox++) {
      for (uint16_t f0 = 0; f0 <= k / 2u; f0 = (uint16_t)(f0 + BL_LEA_BINS_MAX)) {
        bl_lea_bins acc;
        bl_lea_bins_init(&acc, k, f0);
        for (uint32_t j = 0; j < q && st == BL_OK; j++) {
          const int16_t *xj = xs + j * k * in_hw;
          const int16_t *sij = spectra + ((uint32_t)i * q + j) * k * taps;
          for (uint16_t dy = 0; dy < g->kh && st == BL_OK; dy++) {
            const int32_t iy = bl_ref_in_coord(oy, g->sh, dy, g->ph, g->in_h);
            if (iy < 0) continue; /* zero padding: the spectrum of zeros is zero */
            for (uint16_t dx = 0; dx < g->kw && st == BL_OK; dx++) {
              const int32_t ix = bl_ref_in_coord(ox, g->sw, dx, g->pw, g->in_w);
              if (ix < 0) continue;
              st = bl_lea_bins_push(&acc, xj + (uint32_t)iy * g->in_w + (uint32_t)ix, (size_t)in_hw,
                                    sij + (uint32_t)dy * g->kw + dx, (size_t)taps);
            }
          }
        }
        if (st == BL_OK) st = bl_lea_bins_flush(&acc);
        if (st != BL_OK) return st;
        for (uint16_t b = 0; b < acc.bins; b++) {
          bl_ref_store_bin(buf, k, (uint16_t)(f0 + b), bl_lea_requant(bl_lea_wrap(bl_lea_acc[2u * b]), shift_z),
                           bl_lea_requant(bl_lea_wrap(bl_lea_acc[2u * b + 1u]), shift_z));
        }
      }
      bl_ref_hermitian_complete(buf, k);
      st = bl_lea_fft_run(buf, cfg, true);
      if (st != BL_OK) return st;
      for (uint16_t r = 0; r < k; r++) {
        const uint32_t o = (uint32_t)i * k + r;
        if (o >= g->out_ch) break;
        y[o * out_hw + (uint32_t)oy * g->out_w + ox] =
            bl_lea_finish(buf[2u * r], shift_out, bias_out != 0 ? bias_out[o] : 0);
      }
    }
  }
  return BL_OK;
}
