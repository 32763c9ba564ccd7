/* cmsis backend: conv1d / conv2d.
 *
 * Direct paths (dense and block-circulant, int16 / int8 weights): per output position the input patch is
 * gathered once (zeros for padding and for channels beyond in_ch) and four output channels at a time are
 * accumulated with the DSP extension's dual 16-bit MACs (SMLAD; bl_cmsis_dsp.h, MVE on the Cortex-M55),
 * modulo 2^32 = the spec's wrap32, and requantised in the same pass: bit-exact. Dense: dot(w[o], patch).
 * Block-circulant: the patch holds each input block's channels reversed and doubled per tap, so the
 * channels a row of the block needs are a contiguous window (see conv_circ). int8 weights of the unit are
 * widened once per call. Units whose patch or weights exceed the stack buffers use the ref code (compiled
 * below with its direct entry points renamed bl_ref_conv_*).
 *
 * FFT path: the ref backend's code; its transforms call bl_fft_q15, which here is CMSIS-DSP's arm_cfft_q15
 * (fft_q15.c), so the FFT path differs from the spec in the last bits as that transform does. Its finish
 * and requantisation use the DSP extension (below); the frequency-domain complex MAC stays the ref C
 * (CMSIS-DSP's complex products shift and saturate where the spec wraps; see linear.c). */
#include "bl_cmsis_dsp.h"
#include "bl_kernels.h"

/* The FFT path's finish and requantisation with the DSP extension (bl_cmsis_dsp.h; the ref code's calls
 * are redirected, its helpers header included first so its own definitions keep their names). Its complex
 * MAC stays the ref one: a convolution's (re, im) slots are in_hw apart, not one word. */
#include "../ref/bl_ref_internal.h"
#define bl_conv_dense_w16 bl_ref_conv_dense_w16
#define bl_conv_dense_w8 bl_ref_conv_dense_w8
#define bl_conv_circ_w16 bl_ref_conv_circ_w16
#define bl_conv_circ_w8 bl_ref_conv_circ_w8
#define bl_ref_finish bl_dsp_fft_finish
#define bl_requant_s32(acc, shift) bl_dsp_requant((uint32_t)(acc), (shift))
#define bl_wrap_s32(acc) ((int32_t)(uint32_t)(acc)) /* inline (GCC converts modulo 2^32), not a call */
#include "../ref/conv.c"
#undef bl_conv_dense_w16
#undef bl_conv_dense_w8
#undef bl_conv_circ_w16
#undef bl_conv_circ_w8
#undef bl_ref_finish
#undef bl_requant_s32
#undef bl_wrap_s32

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

#define BL_CMSIS_PATCH_MAX 512u /* int16: gathered patch (doubled per circulant block), 1 KB of stack */
#define BL_CMSIS_WIDE_MAX 512u  /* int16: the unit's weights, widened / rearranged, 1 KB of stack */

/* Weights of one output-channel chunk (dense) or one block row i (circulant) fit the stack buffers, and so
 * does one position's patch; otherwise the ref code runs. */
static bool fits(const bl_conv_geom *g, uint16_t k) {
  if (k == 0) return false;
  const uint32_t taps = (uint32_t)g->kh * g->kw;
  const uint32_t q = ((uint32_t)g->in_ch + k - 1u) / k;
  (void)q;
  const uint32_t n = (uint32_t)g->in_ch * taps + 1u;
  return k == 1u && n <= BL_CMSIS_PATCH_MAX && 4u * n <= BL_CMSIS_WIDE_MAX;
}

/* The input value at channel c, tap (dy, dx) of output position (oy, ox), 0 in the padding. */
static inline int16_t tap_at(const int16_t *x, const bl_conv_geom *g, uint32_t c, uint16_t oy, uint16_t ox,
                             uint16_t dy, uint16_t dx) {
  const int32_t iy = bl_ref_in_coord(oy, g->sh, dy, g->ph, g->in_h);
  const int32_t ix = bl_ref_in_coord(ox, g->sw, dx, g->pw, g->in_w);
  if (iy < 0 || ix < 0) return 0;
  return x[(c * g->in_h + (uint32_t)iy) * g->in_w + (uint32_t)ix];
}

/* Dense: per output position the patch p[c][t] (C*KH*KW, one zero appended when odd) is gathered once;
 * four output channels at a time share its loads (bl_dot_multi, SMLAD). The unit's channels are processed
 * in chunks whose weights (widened / copied with the padded row length) fit BL_CMSIS_WIDE_MAX. */
static void conv_dense(const int16_t *x, const bl_conv_geom *g, const int16_t *w16, const int8_t *w8,
                       const int32_t *bias, int16_t shift, int16_t *y, uint16_t o0, uint16_t o1, uint16_t oy0,
                       uint16_t oy1, bool relu) {
  int16_t patch[BL_CMSIS_PATCH_MAX];
  int16_t wide[BL_CMSIS_WIDE_MAX];
  const uint32_t taps = (uint32_t)g->kh * g->kw, n = (uint32_t)g->in_ch * taps, np = n + (n & 1u);
  const uint32_t out_hw = (uint32_t)g->out_h * g->out_w, in_hw = (uint32_t)g->in_h * g->in_w;
  const uint32_t chunk = BL_CMSIS_WIDE_MAX / np;
  patch[np - 1u] = 0; /* the padding element when n is odd (overwritten by the gather otherwise) */
  for (uint32_t c0 = o0; c0 < o1; c0 += chunk) {
    const uint32_t c1 = o1 - c0 < chunk ? o1 : c0 + chunk;
    for (uint32_t o = c0; o < c1; o++) {
      int16_t *dst = wide + (o - c0) * np;
      if (w16 != 0) memcpy(dst, w16 + o * n, n * sizeof *dst);
      else bl_widen8(w8 + o * n, dst, n);
      if (np != n) dst[n] = 0;
    }
    for (uint16_t oy = oy0; oy < oy1; oy++) {
      for (uint16_t ox = 0; ox < g->out_w; ox++) {
        int16_t *pp = patch;
        const int32_t iy0 = (int32_t)oy * g->sh - g->ph, ix0 = (int32_t)ox * g->sw - g->pw;
        if (iy0 >= 0 && ix0 >= 0 && iy0 + g->kh <= g->in_h && ix0 + g->kw <= g->in_w) {
          /* the window lies inside the input: copy its rows */
          const int16_t *src = x + (uint32_t)iy0 * g->in_w + (uint32_t)ix0;
          for (uint32_t c = 0; c < g->in_ch; c++, src += in_hw)
            for (uint16_t dy = 0; dy < g->kh; dy++)
              for (uint16_t dx = 0; dx < g->kw; dx++) *pp++ = src[(uint32_t)dy * g->in_w + dx];
        } else {
          for (uint32_t c = 0; c < g->in_ch; c++)
            for (uint16_t dy = 0; dy < g->kh; dy++)
              for (uint16_t dx = 0; dx < g->kw; dx++) *pp++ = tap_at(x, g, c, oy, ox, dy, dx);
        }
        const uint32_t pos = (uint32_t)oy * g->out_w + ox;
        for (uint32_t o = c0; o < c1; o += 4u) {
          const uint32_t nv = c1 - o < 4u ? c1 - o : 4u;
          uint32_t acc[4] = {0, 0, 0, 0};
          bl_dot_multi(patch, wide + (o - c0) * np, (int32_t)np, nv, np, acc);
          for (uint32_t v = 0; v < nv; v++) {
            uint32_t a = acc[v];
            if (bias != 0) a += (uint32_t)bias[o + v];
            y[(o + v) * out_hw + pos] = bl_dsp_requant_r(a, shift, relu);
          }
        }
      }
    }
  }
}

/* Dense, stride 1 along the width: output row by output row. The input rows the unit reads are copied once
 * per call with the width padding as zeros (plus one zero, for pair loads past the last tap), and each
 * channel's weight rows are widened once with their length rounded up to even (zero tap). An output is then
 * sum over the (channel, kernel row) pairs whose input row exists of dot(weight row, padded row + ox), pairs
 * of taps per SMLAD; the list of those pairs is built once per output row. */
#define BL_CMSIS_ROWS_MAX 1024u /* int16: padded input rows, 2 KB of stack */
#define BL_CMSIS_RLIST_MAX 64u  /* (channel, kernel row) pairs per output row */

static bool rows_fit(const bl_conv_geom *g, uint16_t o0, uint16_t o1, uint16_t oy0, uint16_t oy1) {
  const uint32_t kwp = (uint32_t)g->kw + (g->kw & 1u), rw = (uint32_t)g->in_w + 2u * g->pw + 1u;
  const uint32_t rows = (uint32_t)(oy1 - oy0 - 1u) * g->sh + g->kh;
  return g->sw == 1u && (uint32_t)g->in_ch * g->kh <= BL_CMSIS_RLIST_MAX &&
         (uint32_t)g->in_ch * rows * rw <= BL_CMSIS_ROWS_MAX &&
         (uint32_t)(o1 - o0) * g->in_ch * g->kh * kwp <= BL_CMSIS_WIDE_MAX;
}


#if BL_MVE
/* four outputs' taps of one kernel row: acc += w[dx] * (the four inputs from pr + dx), dx < kw */
static inline __attribute__((always_inline)) int32x4_t dense_taps_mve(int32x4_t acc, const int16_t *pr,
                                                                      const int16_t *wr, uint32_t kw) {
  for (uint32_t dx = 0; dx < kw; dx++) acc = vmlaq_n_s32(acc, vldrhq_s32(pr + dx), wr[dx]);
  return acc;
}

/* One output row (out_w a multiple of 4, stride 1) of one output channel under Helium: p points at the
 * first kernel row of channel 0 in P, each channel's kh rows follow (rw apart), then `cskip` int16 to the
 * next channel; w the channel's weights, kwp per kernel row; the spec's requantisation on the vector. */
static void dense_row_mve(const int16_t *p, const int16_t *w, uint32_t nrows, uint32_t cskip, const bl_conv_geom *g,
                          uint32_t kwp, uint32_t rw, int32_t bias, int16_t shift, int16_t *out, bool relu) {
  const int32x4_t sh = vdupq_n_s32(-(int32_t)(shift - 1));
  for (uint32_t ox = 0; ox < g->out_w; ox += 4u) {
    int32x4_t acc = vdupq_n_s32(bias);
    const int16_t *pr = p + ox, *wr = w;
    for (uint32_t r = 0, dy = 0; r < nrows; r++, wr += kwp) {
      acc = g->kw == 3u ? dense_taps_mve(acc, pr, wr, 3u) : dense_taps_mve(acc, pr, wr, g->kw);
      pr += rw;
      if (++dy == g->kh) {
        dy = 0;
        pr += cskip;
      }
    }
    const int32x4_t a = vshlq_s32(acc, sh); /* floor(acc / 2^(shift-1)) */
    const int32x4_t v = vaddq_s32(vshrq_n_s32(a, 1), vandq_s32(a, vdupq_n_s32(1)));
    vstrhq_s32(out + ox, vminq_s32(vmaxq_s32(v, vdupq_n_s32(relu ? 0 : -32768)), vdupq_n_s32(32767)));
  }
}
#endif

#if BL_MVE
/* Dense 3x3, stride 1, under Helium (the first convolution of an image model: few input channels, so the
 * general paths' per-tap bookkeeping cost more than the MACs; the digits CNN's conv1 measured 18.3k
 * instructions with dense_row_mve above, GCC 12 spilling its weights and row addresses).
 * The input rows are copied once per call into P with the width padding as zeros and a fixed row stride RW
 * (a compile-time constant, so the nine taps of a vector are immediate offsets from one pointer), per
 * channel `rows` rows. Per output channel and column quad, one output row after another: nine VLDRH.S32 +
 * VMLA by a scalar weight (four outputs per vector, int32 lanes, modulo 2^32 = the spec's wrap32), then
 * requantised on the vector: VRSHL by -shift is the spec's floor((v + 2^(shift-1)) / 2^shift) (the
 * Armv8.1-M pseudo-code rounds in unbounded integer arithmetic before shifting, so no overflow), VQMOVNB
 * saturates to int16 into each word's low halfword, VSTRH.32 stores those: bit-exact. With one input
 * channel (C1) the nine weights stay in scalar registers for the whole output channel. */
#define BL_CMSIS_P3_MAX 1024u /* int16: padded input rows, 2 KB of stack */

static inline __attribute__((always_inline)) void conv3x3_quad_mve(const int16_t *p, const int16_t *w, uint32_t C,
                                                                    uint32_t cstride, uint32_t RW, uint32_t nrow,
                                                                    uint32_t out_w, int32x4_t bias_v,
                                                                    int32x4_t nshift_v, int32x4_t lo_v,
                                                                    int16_t *out) {
  const int16x8_t zero = vdupq_n_s16(0);
  if (C == 1u) {
    const int32_t w0 = w[0], w1 = w[1], w2 = w[2], w3 = w[3], w4 = w[4], w5 = w[5], w6 = w[6], w7 = w[7];
    const int32_t w8 = w[8];
    for (uint32_t r = 0; r < nrow; r++, p += RW, out += out_w) {
      int32x4_t acc = bias_v;
      acc = vmlaq_n_s32(acc, vldrhq_s32(p), w0);
      acc = vmlaq_n_s32(acc, vldrhq_s32(p + 1), w1);
      acc = vmlaq_n_s32(acc, vldrhq_s32(p + 2), w2);
      acc = vmlaq_n_s32(acc, vldrhq_s32(p + RW), w3);
      acc = vmlaq_n_s32(acc, vldrhq_s32(p + RW + 1), w4);
      acc = vmlaq_n_s32(acc, vldrhq_s32(p + RW + 2), w5);
      acc = vmlaq_n_s32(acc, vldrhq_s32(p + 2 * RW), w6);
      acc = vmlaq_n_s32(acc, vldrhq_s32(p + 2 * RW + 1), w7);
      acc = vmlaq_n_s32(acc, vldrhq_s32(p + 2 * RW + 2), w8);
      vstrhq_s32(out, vreinterpretq_s32_s16(vqmovnbq_s32(zero, vmaxq_s32(vrshlq_s32(acc, nshift_v), lo_v))));
    }
    return;
  }
  for (uint32_t r = 0; r < nrow; r++, p += RW, out += out_w) {
    int32x4_t acc = bias_v;
    const int16_t *pc = p, *wc = w;
    for (uint32_t c = 0; c < C; c++, pc += cstride, wc += 9) {
      acc = vmlaq_n_s32(acc, vldrhq_s32(pc), wc[0]);
      acc = vmlaq_n_s32(acc, vldrhq_s32(pc + 1), wc[1]);
      acc = vmlaq_n_s32(acc, vldrhq_s32(pc + 2), wc[2]);
      acc = vmlaq_n_s32(acc, vldrhq_s32(pc + RW), wc[3]);
      acc = vmlaq_n_s32(acc, vldrhq_s32(pc + RW + 1), wc[4]);
      acc = vmlaq_n_s32(acc, vldrhq_s32(pc + RW + 2), wc[5]);
      acc = vmlaq_n_s32(acc, vldrhq_s32(pc + 2 * RW), wc[6]);
      acc = vmlaq_n_s32(acc, vldrhq_s32(pc + 2 * RW + 1), wc[7]);
      acc = vmlaq_n_s32(acc, vldrhq_s32(pc + 2 * RW + 2), wc[8]);
    }
    vstrhq_s32(out, vreinterpretq_s32_s16(vqmovnbq_s32(zero, vmaxq_s32(vrshlq_s32(acc, nshift_v), lo_v))));
  }
}

/* The row stride conv3x3_mve uses for this geometry (16 or 32 int16), 0 when it does not apply. */
static uint32_t conv3x3_stride(const bl_conv_geom *g, int16_t shift, uint16_t o0, uint16_t o1, uint16_t oy0,
                               uint16_t oy1) {
  if (g->kh != 3u || g->kw != 3u || g->sh != 1u || g->sw != 1u || g->out_w % 4u != 0 || shift < 1 || shift > 31)
    return 0;
  const uint32_t pw = (uint32_t)g->in_w + 2u * g->pw, rows = (uint32_t)(oy1 - oy0) + 2u;
  const uint32_t RW = pw <= 16u ? 16u : (pw <= 32u ? 32u : 0u);
  if (RW == 0 || (uint32_t)g->out_w + 2u > pw) return 0; /* out_w + 2 = the padded columns the taps read */
  if ((uint32_t)g->in_ch * rows * RW > BL_CMSIS_P3_MAX || (uint32_t)(o1 - o0) * g->in_ch * 9u > BL_CMSIS_WIDE_MAX)
    return 0;
  return RW;
}

static void conv3x3_mve(const int16_t *x, const bl_conv_geom *g, const int16_t *w16, const int8_t *w8,
                        const int32_t *bias, int16_t shift, int16_t *y, uint16_t o0, uint16_t o1, uint16_t oy0,
                        uint16_t oy1, uint32_t RW, bool relu) {
  int16_t P[BL_CMSIS_P3_MAX];
  int16_t wt[BL_CMSIS_WIDE_MAX];
  const uint32_t C = g->in_ch, rows = (uint32_t)(oy1 - oy0) + 2u, nrow = (uint32_t)(oy1 - oy0);
  const uint32_t out_hw = (uint32_t)g->out_h * g->out_w, in_hw = (uint32_t)g->in_h * g->in_w;
  const int32_t ylo = (int32_t)oy0 - g->ph;
  memset(P, 0, C * rows * RW * sizeof *P);
  for (uint32_t c = 0; c < C; c++)
    for (uint32_t r = 0; r < rows; r++) {
      const int32_t iy = ylo + (int32_t)r;
      if (iy >= 0 && iy < (int32_t)g->in_h)
        memcpy(P + (c * rows + r) * RW + g->pw, x + c * in_hw + (uint32_t)iy * g->in_w,
               (uint32_t)g->in_w * sizeof *P);
    }
  const uint32_t n = (uint32_t)(o1 - o0) * C * 9u, base = (uint32_t)o0 * C * 9u;
  for (uint32_t t = 0; t < n; t++) wt[t] = w16 != 0 ? w16[base + t] : (int16_t)w8[base + t];
  const int32x4_t nshift_v = vdupq_n_s32(-(int32_t)shift);
  /* the fused relu's clamp before the saturating narrow (sat16(max(0, v)) = max(0, sat16(v))); INT32_MIN
   * when not fused (the VMAX then changes nothing). Measured: one VMAX per vector here costs less than a
   * test of `relu` per row (digits CNN conv1 on the M55: 6,922 vs 7,322 instructions) */
  const int32x4_t lo_v = vdupq_n_s32(relu ? 0 : INT32_MIN);
  for (uint32_t o = o0; o < o1; o++) {
    const int16_t *wo = wt + (o - o0) * C * 9u;
    const int32x4_t bias_v = vdupq_n_s32(bias != 0 ? bias[o] : 0);
    int16_t *out = y + o * out_hw + (uint32_t)oy0 * g->out_w;
    for (uint32_t ox = 0; ox < g->out_w; ox += 4u) {
      if (C == 1u && RW == 16u)
        conv3x3_quad_mve(P + ox, wo, 1u, 0, 16u, nrow, g->out_w, bias_v, nshift_v, lo_v, out + ox);
      else if (C == 1u)
        conv3x3_quad_mve(P + ox, wo, 1u, 0, 32u, nrow, g->out_w, bias_v, nshift_v, lo_v, out + ox);
      else if (RW == 16u)
        conv3x3_quad_mve(P + ox, wo, C, rows * 16u, 16u, nrow, g->out_w, bias_v, nshift_v, lo_v, out + ox);
      else
        conv3x3_quad_mve(P + ox, wo, C, rows * 32u, 32u, nrow, g->out_w, bias_v, nshift_v, lo_v, out + ox);
    }
  }
}
#endif

static void conv_dense_rows(const int16_t *x, const bl_conv_geom *g, const int16_t *w16, const int8_t *w8,
                            const int32_t *bias, int16_t shift, int16_t *y, uint16_t o0, uint16_t o1, uint16_t oy0,
                            uint16_t oy1, bool relu) {
  int16_t P[BL_CMSIS_ROWS_MAX];
  int16_t wide[BL_CMSIS_WIDE_MAX];
  const int16_t *wl[BL_CMSIS_RLIST_MAX], *pl[BL_CMSIS_RLIST_MAX];
  const uint32_t kwp = (uint32_t)g->kw + (g->kw & 1u), rw = (uint32_t)g->in_w + 2u * g->pw + 1u;
  const uint32_t C = g->in_ch, taps = (uint32_t)g->kh * g->kw;
  const uint32_t out_hw = (uint32_t)g->out_h * g->out_w, in_hw = (uint32_t)g->in_h * g->in_w;
  const int32_t ylo = (int32_t)oy0 * g->sh - g->ph; /* input row of P's row 0 (may be padding) */
  const uint32_t rows = (uint32_t)(oy1 - oy0 - 1u) * g->sh + g->kh;
  for (uint32_t c = 0; c < C; c++)
    for (uint32_t r = 0; r < rows; r++) {
      int16_t *dst = P + (c * rows + r) * rw;
      const int32_t iy = ylo + (int32_t)r;
      if (iy < 0 || iy >= (int32_t)g->in_h) {
        memset(dst, 0, rw * sizeof *dst); /* a padding row */
        continue;
      }
      for (uint32_t e = 0; e < g->pw; e++) dst[e] = 0;
      memcpy(dst + g->pw, x + c * in_hw + (uint32_t)iy * g->in_w, (uint32_t)g->in_w * sizeof *dst);
      for (uint32_t e = g->pw + g->in_w; e < rw; e++) dst[e] = 0;
    }
  for (uint32_t o = o0; o < o1; o++)
    for (uint32_t c = 0; c < C; c++)
      for (uint32_t dy = 0; dy < g->kh; dy++) {
        int16_t *dst = wide + (((o - o0) * C + c) * g->kh + dy) * kwp;
        const uint32_t src = (o * C + c) * taps + dy * g->kw;
        for (uint32_t dx = 0; dx < g->kw; dx++) dst[dx] = w16 != 0 ? w16[src + dx] : (int16_t)w8[src + dx];
        if (kwp != g->kw) dst[g->kw] = 0;
      }
#if BL_MVE
  if (shift >= 1 && shift <= 31 && g->sw == 1u && g->out_w % 4u == 0) {
    /* Helium: four outputs of a row per vector (int32 lanes, VMLA by the scalar weight, modulo 2^32), over
     * every (channel, kernel row) of P including its padding rows (zeros: their products add nothing), so
     * no per-row list is built. (Measured on the digits CNN's conv1, 1 -> 8 channels: 18.3k instructions
     * against 20.9k with the list; sliding VMLADAVA windows as in the circulant path measured 24.6k-25.0k:
     * GCC 12 spills their accumulators.) */
    for (uint32_t o = o0; o < o1; o++)
      for (uint32_t oy = oy0; oy < oy1; oy++)
        dense_row_mve(P + (oy - oy0) * g->sh * rw, wide + (o - o0) * C * g->kh * kwp, C * g->kh,
                      rows * rw - g->kh * rw, g, kwp, rw, bias != 0 ? bias[o] : 0, shift,
                      y + o * out_hw + oy * g->out_w, relu);
    return;
  }
#endif
  for (uint32_t o = o0; o < o1; o++) {
    const uint32_t b = bias != 0 ? (uint32_t)bias[o] : 0u;
    for (uint32_t oy = oy0; oy < oy1; oy++) {
      uint32_t n = 0;
      for (uint32_t c = 0; c < C; c++)
        for (uint32_t dy = 0; dy < g->kh; dy++) {
          const int32_t iy = (int32_t)oy * g->sh + (int32_t)dy - g->ph;
          if (iy < 0 || iy >= (int32_t)g->in_h) continue;
          wl[n] = wide + (((o - o0) * C + c) * g->kh + dy) * kwp;
          pl[n] = P + (c * rows + (uint32_t)(iy - ylo)) * rw;
          n++;
        }
      int16_t *out = y + o * out_hw + oy * g->out_w;
      uint32_t ox = 0;
#if BL_MVE
      if (shift >= 1 && shift <= 31) {
        /* Helium: four outputs per vector (int32 lanes): each tap adds its weight times four input values
         * loaded widened (VLDRH.S32), VMLA modulo 2^32; then the spec's rounding shift and saturation on
         * the vector, stored narrowed (VSTRH.32) */
        const int32x4_t bias_v = vdupq_n_s32((int32_t)b);
        const int32x4_t sh = vdupq_n_s32(-(int32_t)(shift - 1)), one = vdupq_n_s32(1);
        const int32x4_t lo = vdupq_n_s32(relu ? 0 : -32768), hi = vdupq_n_s32(32767);
        for (; ox + 4u <= g->out_w; ox += 4u) {
          int32x4_t acc = bias_v;
          for (uint32_t e = 0; e < n; e++) {
            const int16_t *pr = pl[e] + ox, *wr = wl[e];
            for (uint32_t dx = 0; dx < g->kw; dx++) acc = vmlaq_n_s32(acc, vldrhq_s32(pr + dx), wr[dx]);
          }
          const int32x4_t a = vshlq_s32(acc, sh); /* floor(acc / 2^(shift-1)) */
          const int32x4_t v = vaddq_s32(vshrq_n_s32(a, 1), vandq_s32(a, one));
          vstrhq_s32(out + ox, vminq_s32(vmaxq_s32(v, lo), hi));
        }
      }
#endif
      if (kwp == 4u) {
        /* four outputs per pass share the weight loads */
        for (; ox + 4u <= g->out_w; ox += 4u) {
          uint32_t a0 = b, a1 = b, a2 = b, a3 = b;
          for (uint32_t e = 0; e < n; e++) {
            const int16_t *pr = pl[e] + ox;
            const uint32_t w0 = bl_ld2(wl[e]), w1 = bl_ld2(wl[e] + 2);
            const uint32_t p0 = bl_ld2(pr), p1 = bl_ld2(pr + 1), p2 = bl_ld2(pr + 2), p3 = bl_ld2(pr + 3);
            const uint32_t p4 = bl_ld2(pr + 4), p5 = bl_ld2(pr + 5);
            a0 = bl_mac2(w1, p2, bl_mac2(w0, p0, a0));
            a1 = bl_mac2(w1, p3, bl_mac2(w0, p1, a1));
            a2 = bl_mac2(w1, p4, bl_mac2(w0, p2, a2));
            a3 = bl_mac2(w1, p5, bl_mac2(w0, p3, a3));
          }
          out[ox] = bl_dsp_requant_r(a0, shift, relu);
          out[ox + 1u] = bl_dsp_requant_r(a1, shift, relu);
          out[ox + 2u] = bl_dsp_requant_r(a2, shift, relu);
          out[ox + 3u] = bl_dsp_requant_r(a3, shift, relu);
        }
      }
      for (; ox < g->out_w; ox++) {
        uint32_t acc = b;
        if (kwp == 4u) {
          for (uint32_t e = 0; e < n; e++) {
            const int16_t *wr = wl[e], *pr = pl[e] + ox;
            acc = bl_mac2(bl_ld2(wr), bl_ld2(pr), acc);
            acc = bl_mac2(bl_ld2(wr + 2), bl_ld2(pr + 2), acc);
          }
        } else {
          for (uint32_t e = 0; e < n; e++)
            for (uint32_t dx = 0; dx < kwp; dx += 2u) acc = bl_mac2(bl_ld2(wl[e] + dx), bl_ld2(pl[e] + ox + dx), acc);
        }
        out[ox] = bl_dsp_requant_r(acc, shift, relu);
      }
    }
  }
}

/* Block-circulant. The weights of block row i are rearranged once per call to wt[j*taps + t][d] =
 * w[i][j][d][t], and the input rows the unit reads are rewritten once per call, pixel by pixel, as each input
 * block's channels reversed and doubled: X[(j*rows + y)*W + x][u] = x[channel j*k + (-u mod k)][y][x],
 * u < 2k (0 beyond in_ch). Output channel rr of the block row at a position is then the sum over the taps
 * inside the input and the blocks j of dot(wt[j, t], X[j, pixel of t] + k - rr): the sliding windows of the
 * circulant linear layer (bl_circ_rows4, four channels per pass, pointer lists that skip padded taps).
 * Units whose rows do not fit BL_CMSIS_XR_MAX use the ref code. */
#define BL_CMSIS_XR_MAX 1024u /* int16: rewritten input rows, 2 KB of stack */
#define BL_CMSIS_LIST_MAX 64u /* (tap, block) pairs per position */

static bool circ_fits(const bl_conv_geom *g, uint16_t k, uint16_t oy0, uint16_t oy1) {
  const uint32_t taps = (uint32_t)g->kh * g->kw, q = ((uint32_t)g->in_ch + k - 1u) / k;
  const uint32_t rows = (uint32_t)(oy1 - oy0 - 1u) * g->sh + g->kh;
  return k >= 4u && k * q * taps <= BL_CMSIS_WIDE_MAX && q * taps <= BL_CMSIS_LIST_MAX &&
         q * rows * g->in_w * 2u * k <= BL_CMSIS_XR_MAX;
}

static void conv_circ(const int16_t *x, const bl_conv_geom *g, const int16_t *w16, const int8_t *w8, uint16_t k,
                      const int32_t *bias, int16_t shift, int16_t *y, uint16_t o0, uint16_t o1, uint16_t oy0,
                      uint16_t oy1, bool relu) {
  int16_t X[BL_CMSIS_XR_MAX];
  int16_t wt[BL_CMSIS_WIDE_MAX];
  const int16_t *wp[BL_CMSIS_LIST_MAX], *rp[BL_CMSIS_LIST_MAX];
  const uint32_t taps = (uint32_t)g->kh * g->kw;
  const uint32_t q = ((uint32_t)g->in_ch + k - 1u) / k;
  const uint32_t out_hw = (uint32_t)g->out_h * g->out_w, in_hw = (uint32_t)g->in_h * g->in_w;
  /* input rows [ylo, yhi) that output rows [oy0, oy1) read, clipped to the input */
  const int32_t ylo_u = (int32_t)oy0 * g->sh - g->ph, yhi_u = (int32_t)(oy1 - 1u) * g->sh - g->ph + g->kh;
  const uint32_t ylo = ylo_u < 0 ? 0u : (uint32_t)ylo_u;
  const uint32_t yhi = yhi_u > (int32_t)g->in_h ? g->in_h : (uint32_t)yhi_u;
  const uint32_t rows = yhi > ylo ? yhi - ylo : 0u;
  for (uint32_t j = 0; j < q; j++) {
    const bool full = (j + 1u) * k <= g->in_ch; /* every channel of the block exists */
    for (uint32_t yy = 0; yy < rows; yy++) {
      for (uint32_t xx = 0; xx < g->in_w; xx++) {
        int16_t *dst = X + ((j * rows + yy) * g->in_w + xx) * 2u * k;
        const int16_t *src = x + (j * k * g->in_h + ylo + yy) * g->in_w + xx; /* channel j*k */
        if (full) {
          /* u = 0: channel j*k; u = 1 .. k-1: channels j*k + k-1 down to j*k + 1 (one pointer walk) */
          dst[0] = dst[k] = src[0];
          const int16_t *c = src + (k - 1u) * in_hw;
          for (uint32_t u = 1; u < k; u++, c -= in_hw) dst[u] = dst[u + k] = *c;
        } else {
          for (uint32_t u = 0; u < k; u++) {
            const uint32_t c = j * k + (k - u) % k;
            dst[u] = dst[u + k] = c < g->in_ch ? x[(c * g->in_h + ylo + yy) * g->in_w + xx] : 0;
          }
        }
      }
    }
  }
  for (uint32_t i = o0 / k; i <= (uint32_t)(o1 - 1u) / k; i++) {
    const uint32_t c0 = i * k > o0 ? i * k : o0, c1 = (i + 1u) * k < o1 ? (i + 1u) * k : o1;
    /* wt[j*taps + t][d] = w[i][j][d][t]: walk the source in order, the destination with stride k */
    for (uint32_t j = 0; j < q; j++) {
      const uint32_t s0 = (i * q + j) * k * taps;
      int16_t *dj = wt + j * taps * k;
      for (uint32_t d = 0; d < k; d++) {
        int16_t *dst = dj + d;
        if (w16 != 0)
          for (uint32_t t = 0; t < taps; t++, dst += k) *dst = w16[s0 + d * taps + t];
        else
          for (uint32_t t = 0; t < taps; t++, dst += k) *dst = w8[s0 + d * taps + t];
      }
    }
    for (uint16_t oy = oy0; oy < oy1; oy++) {
      for (uint16_t ox = 0; ox < g->out_w; ox++) {
        uint32_t nb = 0;
        for (uint16_t dy = 0; dy < g->kh; dy++) {
          const int32_t iy = bl_ref_in_coord(oy, g->sh, dy, g->ph, g->in_h);
          if (iy < 0) continue;
          for (uint16_t dx = 0; dx < g->kw; dx++) {
            const int32_t ix = bl_ref_in_coord(ox, g->sw, dx, g->pw, g->in_w);
            if (ix < 0) continue;
            const uint32_t t = (uint32_t)dy * g->kw + dx;
            for (uint32_t j = 0; j < q; j++) {
              wp[nb] = wt + (j * taps + t) * k;
              rp[nb] = X + ((j * rows + (uint32_t)iy - ylo) * g->in_w + (uint32_t)ix) * 2u * k;
              nb++;
            }
          }
        }
        const uint32_t pos = (uint32_t)oy * g->out_w + ox;
        uint32_t acc[4];
        for (uint32_t o = c0; o < c1; o += 4u) {
          const uint32_t nv = c1 - o < 4u ? c1 - o : 4u;
          acc[0] = acc[1] = acc[2] = acc[3] = 0;
          const uint32_t rr = o - i * k;
          if (nv == 4u) {
            bl_circ_rows4_k(0, 0, wp, rp, k, nb, k - rr, acc);
          } else if (k >= 4u) {
            /* 1-3 channels left: four channels of the block that include them, the extra ones discarded */
            const uint32_t s0 = rr + 4u <= k ? rr : k - 4u;
            uint32_t t4[4] = {0, 0, 0, 0};
            bl_circ_rows4_k(0, 0, wp, rp, k, nb, k - s0, t4);
            for (uint32_t v = 0; v < nv; v++) acc[v] = t4[rr - s0 + v];
          } else {
            for (uint32_t v = 0; v < nv; v++)
              for (uint32_t b = 0; b < nb; b++) bl_dot_multi(wp[b], rp[b] + k - rr - v, 0, 1u, k, acc + v);
          }
          for (uint32_t v = 0; v < nv; v++) {
            uint32_t a = acc[v];
            if (bias != 0) a += (uint32_t)bias[o + v];
            y[(o + v) * out_hw + pos] = bl_dsp_requant_r(a, shift, relu);
          }
        }
      }
    }
  }
}

/* Block-circulant with the input rows rewritten padded: like conv_circ, but the rewritten rows include the
 * padding (zero pixels, zero rows) of the output rows [oy0, oy1), so every output position reads all
 * q * taps (block, tap) windows at the same offsets from its own base. The pointer list is then one add per
 * entry per position instead of a bounds walk per tap, and the weights are consecutive (wt[j*taps + t]).
 * The windows in the padding are zeros: their products add nothing (modulo 2^32 as everywhere), so the
 * result is the same; it pays where the walk cost more than those extra MACs (the digits CNN's 4x4 conv2:
 * measured in benchmarks/cortexm.py). */
#define BL_CMSIS_XP_MAX 1024u /* int16: padded rewritten input rows, 2 KB of stack */

static bool circ_padded_fits(const bl_conv_geom *g, uint16_t k, uint16_t oy0, uint16_t oy1) {
  const uint32_t taps = (uint32_t)g->kh * g->kw, q = ((uint32_t)g->in_ch + k - 1u) / k;
  const uint32_t rows = (uint32_t)(oy1 - oy0 - 1u) * g->sh + g->kh;
  const uint32_t wp = (uint32_t)(g->out_w - 1u) * g->sw + g->kw; /* padded columns the outputs read */
  return k >= 4u && (k & 3u) == 0 && k * q * taps <= BL_CMSIS_WIDE_MAX && q * taps <= BL_CMSIS_LIST_MAX &&
         q * rows * wp * 2u * k <= BL_CMSIS_XP_MAX;
}

#if BL_MVE
/* Helium inner part of conv_circ_padded for k = 8 / 16 (KK, a constant so the block loop's body is
 * straight-line) over output channels [c0, c1) (multiples of 4) of one block row: per output position and
 * four rows, the q x kh x kw (block, tap) windows of one (two) weight vector(s) each and four sliding
 * windows, VMLADAVA into four scalar accumulators (even registers: four is what fits beside the pointers).
 * The windows of one (block, kernel row) are KK2 = 2k apart, so with kw = 3 (KW, constant) the three taps
 * are immediate offsets from one pointer; roff[] holds each (block, kernel row)'s offset from the
 * position's base. The four sums are moved into one vector, the bias vector added (modulo 2^32) and
 * requantised there (VRSHL + VQMOVNB, see conv3x3_mve), and scattered to the four channels' planes
 * (VSTRH.32 with offsets 0, out_hw, 2 out_hw, 3 out_hw). */
static inline __attribute__((always_inline)) void circ_padded_rows_mve(
    const int16_t *X, const uint32_t *roff, uint32_t nrows, const int16_t *wt, const int32_t *bias, uint32_t KK,
    uint32_t KW, const bl_conv_geom *g, uint32_t W, int32_t shift, int16_t *y, uint32_t ib, uint32_t c0,
    uint32_t c1, uint32_t oy0, uint32_t oy1) {
  const uint32_t out_w = g->out_w, out_hw = (uint32_t)g->out_h * out_w, KK2 = 2u * KK;
  const uint32_t step_x = g->sw * KK2, step_y = g->sh * W * KK2;
  const int32x4_t nshift_v = vdupq_n_s32(-shift);
  const uint32x4_t offs = vmulq_n_u32(vidupq_n_u32(0, 1), out_hw);
  const int16x8_t zero = vdupq_n_s16(0);
  for (uint32_t o = c0; o < c1; o += 4u) {
    const int32x4_t bias_v = bias != 0 ? vldrwq_s32(bias + o) : vdupq_n_s32(0);
    const int16_t *row = X + KK - (o - ib);
    int16_t *out = y + o * out_hw + oy0 * out_w;
    for (uint32_t oy = oy0; oy < oy1; oy++, row += step_y, out += out_w) {
      const int16_t *base = row;
      for (uint32_t ox = 0; ox < out_w; ox++, base += step_x) {
        int32_t s0 = 0, s1 = 0, s2 = 0, s3 = 0;
        const int16_t *c = wt;
        for (uint32_t r = 0; r < nrows; r++) {
          const int16_t *p = base + roff[r];
#pragma GCC unroll 4
          for (uint32_t dx = 0; dx < KW; dx++, p += KK2, c += KK) {
            const int16x8_t w0 = vld1q_s16(c);
            s0 = vmladavaq_s16(s0, w0, vld1q_s16(p));
            s1 = vmladavaq_s16(s1, w0, vld1q_s16(p - 1));
            s2 = vmladavaq_s16(s2, w0, vld1q_s16(p - 2));
            s3 = vmladavaq_s16(s3, w0, vld1q_s16(p - 3));
            if (KK == 16u) {
              const int16x8_t w1 = vld1q_s16(c + 8);
              s0 = vmladavaq_s16(s0, w1, vld1q_s16(p + 8));
              s1 = vmladavaq_s16(s1, w1, vld1q_s16(p + 7));
              s2 = vmladavaq_s16(s2, w1, vld1q_s16(p + 6));
              s3 = vmladavaq_s16(s3, w1, vld1q_s16(p + 5));
            }
          }
        }
        int32x4_t a = vsetq_lane_s32(s0, vdupq_n_s32(s1), 0);
        a = vsetq_lane_s32(s2, a, 2);
        a = vsetq_lane_s32(s3, a, 3);
        a = vaddq_s32(a, bias_v);
        const int16x8_t n = vqmovnbq_s32(zero, vrshlq_s32(a, nshift_v));
        vstrhq_scatter_shifted_offset_s32(out + ox, offs, vreinterpretq_s32_s16(n));
      }
    }
  }
}
#endif

/* never inlined: copies specialised per sel inside its callers cost the Cortex-M4 conv2 of the digits CNN 21 %
 * more instructions (register pressure in the inner loops; benchmarks/cortexm.py); as one called function the
 * sel checks cost < 1 % */
static __attribute__((noinline)) void conv_circ_padded(
    const int16_t *x, const bl_conv_geom *g, const int16_t *w16, const int8_t *w8, uint16_t k, const int32_t *bias,
    int16_t shift, int16_t *y, uint16_t o0, uint16_t o1, uint16_t oy0, uint16_t oy1, bool relu,
    const bl_block_sel *sel) {
  int16_t X[BL_CMSIS_XP_MAX];
  int16_t wt[BL_CMSIS_WIDE_MAX];
  uint32_t off[BL_CMSIS_LIST_MAX];
  const int16_t *rp[BL_CMSIS_LIST_MAX];
  const uint32_t taps = (uint32_t)g->kh * g->kw, q = ((uint32_t)g->in_ch + k - 1u) / k, k2 = 2u * k;
  uint32_t nb = q * taps;
  /* EVE (sel != 0): per block row only the blocks with rank < sel->n (their weights and window offsets
   * compacted: the loops below run over fewer (block, tap) pairs, the skipped blocks add nothing in the
   * spec), only the input blocks some of them read rewritten, channels >= sel->out_rows 0 */
  uint32_t offs[BL_CMSIS_LIST_MAX];
  bool col[BL_CMSIS_LIST_MAX];
  const uint32_t out_hw0 = (uint32_t)g->out_h * g->out_w;
  if (sel != 0) {
    const uint16_t ok = sel->out_rows < o1 ? (sel->out_rows > o0 ? sel->out_rows : o0) : o1;
    for (uint32_t o = ok; o < o1; o++) {
      int16_t *r = y + o * out_hw0 + (uint32_t)oy0 * g->out_w;
      for (uint32_t e = 0; e < (uint32_t)(oy1 - oy0) * g->out_w; e++) r[e] = 0;
    }
    o1 = ok;
    if (o0 >= o1) return;
    for (uint32_t j = 0; j < q; j++) {
      col[j] = false;
      for (uint32_t i = o0 / k; !col[j] && i <= (uint32_t)(o1 - 1u) / k; i++) col[j] = sel->rank[i * q + j] < sel->n;
    }
  }
  const uint32_t out_hw = (uint32_t)g->out_h * g->out_w, in_hw = (uint32_t)g->in_h * g->in_w;
  const uint32_t rows = (uint32_t)(oy1 - oy0 - 1u) * g->sh + g->kh;
  const uint32_t W = (uint32_t)(g->out_w - 1u) * g->sw + g->kw;
  const int32_t ylo = (int32_t)oy0 * g->sh - g->ph, xlo = -(int32_t)g->pw; /* input coords of X's (0, 0) */
#if BL_MVE
  bool mve_rows = false; /* a block row went through circ_padded_rows_mve (its fused relu comes after) */
  /* zeros eight at a time (newlib's memset was 1.2k instructions of the digits CNN on the M55); a full
   * block of k = 8 / 16 channels is one (two) gather load(s) per pixel, VLDRH with the offsets of channels
   * 0, k-1, ..., 1 (in units of in_hw), stored twice (the doubled block) */
  const uint32_t xn = q * rows * W * k2;
  const int16x8_t z8 = vdupq_n_s16(0);
  for (uint32_t e = 0; e < xn; e += 8u) vst1q_s16(X + e, z8); /* xn: a multiple of 2k, k a multiple of 4 */
  static const uint16_t rev8[8] = {0, 7, 6, 5, 4, 3, 2, 1};
  static const uint16_t rev16[16] = {0, 15, 14, 13, 12, 11, 10, 9, 8, 7, 6, 5, 4, 3, 2, 1};
  const bool gather = (k == 8u || k == 16u) && (k - 1u) * in_hw <= 0xffffu;
  const uint16x8_t ga = vmulq_n_u16(vld1q_u16(k == 8u ? rev8 : rev16), (uint16_t)in_hw);
  const uint16x8_t gb = vmulq_n_u16(vld1q_u16(rev16 + 8), (uint16_t)in_hw);
#else
  memset(X, 0, q * rows * W * k2 * sizeof *X);
#endif
  for (uint32_t j = 0; j < q; j++) {
    const bool full = (j + 1u) * k <= g->in_ch;
    if (sel != 0 && !col[j]) continue; /* no used block reads it: its zeros are never read either */
    for (uint32_t yy = 0; yy < rows; yy++) {
      const int32_t iy = ylo + (int32_t)yy;
      if (iy < 0 || iy >= (int32_t)g->in_h) continue; /* a padding row: zeros */
      for (uint32_t xx = 0; xx < W; xx++) {
        const int32_t ix = xlo + (int32_t)xx;
        if (ix < 0 || ix >= (int32_t)g->in_w) continue;
        int16_t *dst = X + ((j * rows + yy) * W + xx) * k2;
        const int16_t *src = x + (j * k * g->in_h + (uint32_t)iy) * g->in_w + (uint32_t)ix; /* channel j*k */
#if BL_MVE
        if (full && gather) {
          const int16x8_t v = vldrhq_gather_shifted_offset_s16(src, ga);
          vst1q_s16(dst, v);
          vst1q_s16(dst + k, v);
          if (k == 16u) {
            const int16x8_t v2 = vldrhq_gather_shifted_offset_s16(src, gb);
            vst1q_s16(dst + 8, v2);
            vst1q_s16(dst + 24, v2);
          }
          continue;
        }
#endif
        if (full) {
          dst[0] = dst[k] = src[0];
          const int16_t *c = src + (k - 1u) * in_hw;
          for (uint32_t u = 1; u < k; u++, c -= in_hw) dst[u] = dst[u + k] = *c;
        } else {
          for (uint32_t u = 0; u < k; u++) {
            const uint32_t c = j * k + (k - u) % k;
            dst[u] = dst[u + k] = c < g->in_ch ? x[(c * g->in_h + (uint32_t)iy) * g->in_w + (uint32_t)ix] : 0;
          }
        }
      }
    }
  }
  for (uint32_t j = 0, b = 0; j < q; j++)
    for (uint32_t dy = 0; dy < g->kh; dy++)
      for (uint32_t dx = 0; dx < g->kw; dx++, b++) off[b] = ((j * rows + dy) * W + dx) * k2;
  const bool in_range = shift >= 1 && shift <= 31;
  for (uint32_t i = o0 / k; i <= (uint32_t)(o1 - 1u) / k; i++) {
    const uint32_t c0 = i * k > o0 ? i * k : o0, c1 = (i + 1u) * k < o1 ? (i + 1u) * k : o1;
    const uint32_t *off_i = off;
    uint32_t jb = 0; /* the blocks this row uses, compacted */
    for (uint32_t j = 0; j < q; j++) {
      if (sel != 0 && sel->rank[i * q + j] >= sel->n) continue;
      const uint32_t s0 = (i * q + j) * k * taps;
      int16_t *dj = wt + jb * taps * k;
      for (uint32_t d = 0; d < k; d++) {
        int16_t *dst = dj + d;
        if (w16 != 0)
          for (uint32_t t = 0; t < taps; t++, dst += k) *dst = w16[s0 + d * taps + t];
        else
          for (uint32_t t = 0; t < taps; t++, dst += k) *dst = w8[s0 + d * taps + t];
      }
      if (sel != 0)
        for (uint32_t t = 0; t < taps; t++) offs[jb * taps + t] = off[j * taps + t];
      jb++;
    }
    if (sel != 0) {
      off_i = offs;
      nb = jb * taps;
    }
#if BL_MVE
    if (in_range && (c0 & 3u) == 0 && (c1 & 3u) == 0 && (k == 8u || k == 16u)) {
      /* offsets of each (block, kernel row)'s first window from a position's base (off[] per row) */
      uint32_t roff[BL_CMSIS_LIST_MAX];
      const uint32_t nrows = jb * g->kh; /* = nb / kw: jb blocks of kh kernel rows */
      for (uint32_t r = 0; r < nrows; r++) roff[r] = off_i[r * g->kw];
      if (k == 8u && g->kw == 3u)
        circ_padded_rows_mve(X, roff, nrows, wt, bias, 8u, 3u, g, W, shift, y, i * k, c0, c1, oy0, oy1);
      else if (k == 8u)
        circ_padded_rows_mve(X, roff, nrows, wt, bias, 8u, g->kw, g, W, shift, y, i * k, c0, c1, oy0, oy1);
      else if (g->kw == 3u)
        circ_padded_rows_mve(X, roff, nrows, wt, bias, 16u, 3u, g, W, shift, y, i * k, c0, c1, oy0, oy1);
      else
        circ_padded_rows_mve(X, roff, nrows, wt, bias, 16u, g->kw, g, W, shift, y, i * k, c0, c1, oy0, oy1);
      mve_rows = true;
      continue;
    }
#endif
    for (uint32_t oy = oy0; oy < oy1; oy++) {
      for (uint32_t ox = 0; ox < g->out_w; ox++) {
        const int16_t *base = X + ((oy - oy0) * g->sh * W + ox * g->sw) * k2;
        for (uint32_t b = 0; b < nb; b++) rp[b] = base + off_i[b];
        const uint32_t pos = oy * g->out_w + ox;
        for (uint32_t o = c0; o < c1; o += 4u) {
          const uint32_t nv = c1 - o < 4u ? c1 - o : 4u, rr = o - i * k;
          const uint32_t s = nv == 4u ? rr : (rr + 4u <= k ? rr : k - 4u); /* first of the 4 rows run */
          uint32_t acc[4] = {0, 0, 0, 0};
          if (bias != 0 && nv == 4u) {
            acc[0] = (uint32_t)bias[o];
            acc[1] = (uint32_t)bias[o + 1u];
            acc[2] = (uint32_t)bias[o + 2u];
            acc[3] = (uint32_t)bias[o + 3u];
          }
          bl_circ_rows4_k(wt, 0, 0, rp, k, nb, k - s, acc);
          if (nv == 4u && in_range) {
            const int32_t sh1 = shift - 1;
            if (relu) { /* one test per four channels; USAT #15 = the fused relu */
              y[o * out_hw + pos] = bl_dsp_requant_in_r(acc[0], sh1, true);
              y[(o + 1u) * out_hw + pos] = bl_dsp_requant_in_r(acc[1], sh1, true);
              y[(o + 2u) * out_hw + pos] = bl_dsp_requant_in_r(acc[2], sh1, true);
              y[(o + 3u) * out_hw + pos] = bl_dsp_requant_in_r(acc[3], sh1, true);
              continue;
            }
            y[o * out_hw + pos] = bl_dsp_requant_in(acc[0], sh1);
            y[(o + 1u) * out_hw + pos] = bl_dsp_requant_in(acc[1], sh1);
            y[(o + 2u) * out_hw + pos] = bl_dsp_requant_in(acc[2], sh1);
            y[(o + 3u) * out_hw + pos] = bl_dsp_requant_in(acc[3], sh1);
            continue;
          }
          for (uint32_t v = 0; v < nv; v++) {
            uint32_t a = acc[rr - s + v];
            if (bias != 0 && nv != 4u) a += (uint32_t)bias[o + v];
            y[(o + v) * out_hw + pos] = bl_dsp_requant_r(a, shift, relu);
          }
        }
      }
    }
  }
#if BL_MVE
  /* The fused relu of the Helium rows is a VMAX pass over the unit's outputs, still in this task (one call
   * when the unit is whole planes, as codegen's are): in circ_padded_rows_mve's requantisation it measured
   * worse, GCC 12 having no vector register to spare there (a bound vector, a test per position or a copy
   * per relu value cost 400-2,800 instructions more on the digits CNN's conv2). Rows of the scalar loop
   * above are clamped already; a second max(0, .) changes nothing. */
  if (relu && mve_rows) {
    if (oy0 == 0 && oy1 == g->out_h) {
      (void)bl_relu_q15(y + (uint32_t)o0 * out_hw, y + (uint32_t)o0 * out_hw, (uint32_t)(o1 - o0) * out_hw);
    } else {
      for (uint32_t o = o0; o < o1; o++) {
        int16_t *r = y + o * out_hw + (uint32_t)oy0 * g->out_w;
        (void)bl_relu_q15(r, r, (uint32_t)(oy1 - oy0) * g->out_w);
      }
    }
  }
#endif
}

static bl_status conv_check(const int16_t *x, const bl_conv_geom *g, const int16_t *y, uint16_t o0, uint16_t o1,
                            uint16_t oy0, uint16_t oy1) {
  if (x == 0 || y == 0) return BL_ERR_ARG;
  bl_status st = bl_conv_geom_check(g);
  if (st != BL_OK) return st;
  if (o0 >= o1 || o1 > g->out_ch || oy0 >= oy1 || oy1 > g->out_h) return BL_ERR_ARG;
  return BL_OK;
}

/* The ref fallbacks (units too large for the stack buffers) with a fused relu: the relu over the unit's
 * outputs after the call (the same values). */
static bl_status relu_unit(bl_status st, const bl_conv_geom *g, int16_t *y, uint16_t o0, uint16_t o1, uint16_t oy0,
                           uint16_t oy1) {
  const uint32_t out_hw = (uint32_t)g->out_h * g->out_w;
  for (uint32_t o = o0; st == BL_OK && o < o1; o++) {
    int16_t *r = y + o * out_hw + (uint32_t)oy0 * g->out_w;
    st = bl_relu_q15(r, r, (uint32_t)(oy1 - oy0) * g->out_w);
  }
  return st;
}

static bl_status dense_entry(const int16_t *x, const bl_conv_geom *g, const int16_t *w16, const int8_t *w8,
                             const int32_t *bias, int16_t shift, int16_t *y, uint16_t o0, uint16_t o1, uint16_t oy0,
                             uint16_t oy1, bool relu) {
  if (w16 == 0 && w8 == 0) return BL_ERR_ARG;
  bl_status st = conv_check(x, g, y, o0, o1, oy0, oy1);
  if (st != BL_OK) return st;
  if (!fits(g, 1u)) {
    st = w16 != 0 ? bl_ref_conv_dense_w16(x, g, w16, bias, shift, y, o0, o1, oy0, oy1)
                  : bl_ref_conv_dense_w8(x, g, w8, bias, shift, y, o0, o1, oy0, oy1);
    return relu ? relu_unit(st, g, y, o0, o1, oy0, oy1) : st;
  }
#if BL_MVE
  const uint32_t rw3 = conv3x3_stride(g, shift, o0, o1, oy0, oy1);
  if (rw3 != 0) {
    conv3x3_mve(x, g, w16, w8, bias, shift, y, o0, o1, oy0, oy1, rw3, relu);
    return BL_OK;
  }
#endif
  if (rows_fit(g, o0, o1, oy0, oy1)) {
    conv_dense_rows(x, g, w16, w8, bias, shift, y, o0, o1, oy0, oy1, relu);
    return BL_OK;
  }
  conv_dense(x, g, w16, w8, bias, shift, y, o0, o1, oy0, oy1, relu);
  return BL_OK;
}

static bl_status circ_entry(const int16_t *x, const bl_conv_geom *g, const int16_t *w16, const int8_t *w8,
                            uint16_t k, const int32_t *bias, int16_t shift, int16_t *y, uint16_t o0, uint16_t o1,
                            uint16_t oy0, uint16_t oy1, bool relu) {
  if (w16 == 0 && w8 == 0) return BL_ERR_ARG;
  bl_status st = conv_check(x, g, y, o0, o1, oy0, oy1);
  if (st != BL_OK) return st;
  if (k == 0) return BL_ERR_SHAPE;
  if (circ_padded_fits(g, k, oy0, oy1)) {
    conv_circ_padded(x, g, w16, w8, k, bias, shift, y, o0, o1, oy0, oy1, relu, 0);
    return BL_OK;
  }
  if (!circ_fits(g, k, oy0, oy1)) {
    st = w16 != 0 ? bl_ref_conv_circ_w16(x, g, w16, k, bias, shift, y, o0, o1, oy0, oy1)
                  : bl_ref_conv_circ_w8(x, g, w8, k, bias, shift, y, o0, o1, oy0, oy1);
    return relu ? relu_unit(st, g, y, o0, o1, oy0, oy1) : st;
  }
  conv_circ(x, g, w16, w8, k, bias, shift, y, o0, o1, oy0, oy1, relu);
  return BL_OK;
}

bl_status bl_conv_dense_w16(const int16_t *x, const bl_conv_geom *g, const int16_t *w, const int32_t *bias,
                            int16_t shift, int16_t *y, uint16_t o0, uint16_t o1, uint16_t oy0, uint16_t oy1) {
  if (w == 0) return BL_ERR_ARG;
  return dense_entry(x, g, w, 0, bias, shift, y, o0, o1, oy0, oy1, false);
}

bl_status bl_conv_dense_w8(const int16_t *x, const bl_conv_geom *g, const int8_t *w, const int32_t *bias,
                           int16_t shift, int16_t *y, uint16_t o0, uint16_t o1, uint16_t oy0, uint16_t oy1) {
  if (w == 0) return BL_ERR_ARG;
  return dense_entry(x, g, 0, w, bias, shift, y, o0, o1, oy0, oy1, false);
}

bl_status bl_conv_circ_w16(const int16_t *x, const bl_conv_geom *g, const int16_t *w, uint16_t k,
                           const int32_t *bias, int16_t shift, int16_t *y, uint16_t o0, uint16_t o1, uint16_t oy0,
                           uint16_t oy1) {
  if (w == 0) return BL_ERR_ARG;
  return circ_entry(x, g, w, 0, k, bias, shift, y, o0, o1, oy0, oy1, false);
}

bl_status bl_conv_circ_w8(const int16_t *x, const bl_conv_geom *g, const int8_t *w, uint16_t k,
                          const int32_t *bias, int16_t shift, int16_t *y, uint16_t o0, uint16_t o1, uint16_t oy0,
                          uint16_t oy1) {
  if (w == 0) return BL_ERR_ARG;
  return circ_entry(x, g, 0, w, k, bias, shift, y, o0, o1, oy0, oy1, false);
}

bl_status bl_conv_dense_relu_w16(const int16_t *x, const bl_conv_geom *g, const int16_t *w, const int32_t *bias,
                                 int16_t shift, int16_t *y, uint16_t o0, uint16_t o1, uint16_t oy0, uint16_t oy1) {
  if (w == 0) return BL_ERR_ARG;
  return dense_entry(x, g, w, 0, bias, shift, y, o0, o1, oy0, oy1, true);
}

bl_status bl_conv_dense_relu_w8(const int16_t *x, const bl_conv_geom *g, const int8_t *w, const int32_t *bias,
                                int16_t shift, int16_t *y, uint16_t o0, uint16_t o1, uint16_t oy0, uint16_t oy1) {
  if (w == 0) return BL_ERR_ARG;
  return dense_entry(x, g, 0, w, bias, shift, y, o0, o1, oy0, oy1, true);
}

bl_status bl_conv_circ_relu_w16(const int16_t *x, const bl_conv_geom *g, const int16_t *w, uint16_t k,
                                const int32_t *bias, int16_t shift, int16_t *y, uint16_t o0, uint16_t o1,
                                uint16_t oy0, uint16_t oy1) {
  if (w == 0) return BL_ERR_ARG;
  return circ_entry(x, g, w, 0, k, bias, shift, y, o0, o1, oy0, oy1, true);
}

bl_status bl_conv_circ_relu_w8(const int16_t *x, const bl_conv_geom *g, const int8_t *w, uint16_t k,
                               const int32_t *bias, int16_t shift, int16_t *y, uint16_t o0, uint16_t o1,
                               uint16_t oy0, uint16_t oy1) {
  if (w == 0) return BL_ERR_ARG;
  return circ_entry(x, g, 0, w, k, bias, shift, y, o0, o1, oy0, oy1, true);
}

/* EVE: output channels [o0, o1), rows [oy0, oy1) of a block-circulant convolution in a mode that uses only
 * some of its blocks (bl_cmsis_eve.h; called by cmsis/eve_sel.c for a whole-unit task): the padded kernel
 * above over the blocks with rank < sel->n, channels >= sel->out_rows 0. BL_ERR_SHAPE when the unit does
 * not fit its buffers (the caller then runs the portable kernel). */
bl_status bl_cmsis_conv_circ_sel(const int16_t *x, const bl_conv_geom *g, const int16_t *w16, const int8_t *w8,
                                 uint16_t k, const int32_t *bias, int16_t shift, int16_t *y, uint16_t o0, uint16_t o1,
                                 uint16_t oy0, uint16_t oy1, const bl_block_sel *sel) {
  if ((w16 == 0 && w8 == 0) || sel == 0 || sel->rank == 0) return BL_ERR_ARG;
  bl_status st = conv_check(x, g, y, o0, o1, oy0, oy1);
  if (st != BL_OK) return st;
  if (k == 0 || !circ_padded_fits(g, k, oy0, oy1)) return BL_ERR_SHAPE;
  conv_circ_padded(x, g, w16, w8, k, bias, shift, y, o0, o1, oy0, oy1, false, sel);
  return BL_OK;
}
