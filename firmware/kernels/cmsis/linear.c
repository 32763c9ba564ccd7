/* cmsis backend: linear layers.
 *
 * Direct paths (dense and block-circulant, int16 and int8 weights): dual 16-bit MACs of the DSP extension
 * (SMLAD, bl_cmsis_dsp.h; MVE on the Cortex-M55), four output rows at a time sharing one operand's loads,
 * accumulated modulo 2^32 = the spec's wrap32, requantised in the same pass (bl_dsp_requant): bit-exact with
 * the spec. A block-circulant row is a dot product of the stored vector w[i][j][0..k) with the input block
 * read backwards circularly: sum_m w[m] x[j*k + (rr - m) mod k]; the input block, reversed and doubled
 * (R[t] = x[j*k + (-t mod k)], t < 2k), holds that sequence contiguously at R + k - rr, so consecutive rows
 * of a block are windows of R one element apart. int8 weights are widened to int16 once per block.
 * (CMSIS-DSP's arm_dot_prod_q15, used before, computes the same exact sums through a function call per row
 * and a 64-bit accumulator: measured 2.7x more instructions on the digits MLP, docs/kernels.md.)
 *
 * FFT path: the ref backend's code (compiled below with its direct-path entry points renamed to
 * bl_ref_*; they serve as the fallback for blocks too large for the stack buffers). It calls bl_fft_q15,
 * which in this backend is CMSIS-DSP's arm_cfft_q15 (fft_q15.c). The frequency-domain complex MAC is ours
 * (SMLSD / SMLADX, below), not CMSIS-DSP's: arm_cmplx_mult_cmplx_q15 shifts each product right by 17 with
 * saturation and arm_cmplx_dot_prod_q15 returns 8.24 (sum >> 6), neither of which is the spec's wrapping
 * 32-bit sum. */
#include "arm_math.h"
#include "bl_cmsis_dsp.h"
#include "bl_kernels.h"

/* The FFT path's frequency-domain complex MAC, finish and requantisation with the DSP extension: the ref
 * code below calls these through the macros (its helpers header is included first, so only the ref
 * kernels' calls are redirected). A linear layer's bins hold (re, im) next to each other (xi = si = 1):
 * one word each, SMLSD adds xr*sr - xv*sv and SMLADX xr*sv + xv*sr to the accumulators, modulo 2^32 like
 * the spec's wrapping sums (bit-exact with the ref MAC). */
#include "../ref/bl_ref_internal.h"

static inline void bl_dsp_cmac(uint32_t *acc_re, uint32_t *acc_im, const int16_t *x, uint32_t xi,
                               const int16_t *s, uint32_t si, bool im) {
#if BL_DSP
  if (im && xi == 1u && si == 1u) {
    const uint32_t xw = bl_ld2(x), sw = bl_ld2(s);
    *acc_re = (uint32_t)__smlsd((int16x2_t)xw, (int16x2_t)sw, (int32_t)*acc_re);
    *acc_im = (uint32_t)__smladx((int16x2_t)xw, (int16x2_t)sw, (int32_t)*acc_im);
    return;
  }
#endif
  bl_ref_cmac(acc_re, acc_im, x, xi, s, si, im);
}

#define bl_linear_dense_w16 bl_ref_linear_dense_w16
#define bl_linear_dense_w8 bl_ref_linear_dense_w8
#define bl_linear_circ_w16 bl_ref_linear_circ_w16
#define bl_linear_circ_w8 bl_ref_linear_circ_w8
#define bl_ref_cmac bl_dsp_cmac
#define bl_ref_finish bl_dsp_fft_finish
#define bl_requant_s32(acc, shift) bl_dsp_requant((uint32_t)(acc), (shift))
#define bl_wrap_s32(acc) ((int32_t)(uint32_t)(acc)) /* inline (GCC converts modulo 2^32), not a call */
#include "../ref/linear.c"
#undef bl_linear_dense_w16
#undef bl_linear_dense_w8
#undef bl_linear_circ_w16
#undef bl_linear_circ_w8
#undef bl_ref_cmac
#undef bl_ref_finish
#undef bl_requant_s32
#undef bl_wrap_s32

bl_status bl_ref_linear_dense_w16(const int16_t *x, uint16_t in_features, const int16_t *w, const int32_t *bias,
                                  int16_t shift, int16_t *y, uint16_t out_features, uint16_t r0, uint16_t r1);
bl_status bl_ref_linear_dense_w8(const int16_t *x, uint16_t in_features, const int8_t *w, const int32_t *bias,
                                 int16_t shift, int16_t *y, uint16_t out_features, uint16_t r0, uint16_t r1);
bl_status bl_ref_linear_circ_w16(const int16_t *x, uint16_t in_features, const int16_t *w, uint16_t k,
                                 const int32_t *bias, int16_t shift, int16_t *y, uint16_t out_features,
                                 uint16_t r0, uint16_t r1);
bl_status bl_ref_linear_circ_w8(const int16_t *x, uint16_t in_features, const int8_t *w, uint16_t k,
                                const int32_t *bias, int16_t shift, int16_t *y, uint16_t out_features, uint16_t r0,
                                uint16_t r1);

#define BL_CMSIS_CHUNK 64u        /* int8 weights widened per step (dense rows; stack) */
#define BL_CMSIS_CIRC_MAX_K 128u  /* larger circulant blocks use the ref code */
#define BL_CMSIS_R_MAX 512u       /* int16 of reversed, doubled input blocks per pass (1 KB of stack) */
#define BL_CMSIS_SEL_MAX_Q 32u    /* EVE: input blocks of a block-selecting one-pass call (pointer lists) */

/* Dense rows [r0, r1): four rows at a time share the loads of x (bl_dot_multi); int8 rows are widened in
 * chunks of BL_CMSIS_CHUNK columns for four rows at once. */
static bl_status dense(const int16_t *x, uint16_t in_features, const int16_t *w16, const int8_t *w8,
                       const int32_t *bias, int16_t shift, int16_t *y, uint16_t out_features, uint16_t r0,
                       uint16_t r1, bool relu) {
  if (x == 0 || y == 0 || (w16 == 0 && w8 == 0)) return BL_ERR_ARG;
  if (in_features == 0 || out_features == 0) return BL_ERR_SHAPE;
  if (r0 >= r1 || r1 > out_features) return BL_ERR_ARG;
  int16_t wide[4u * BL_CMSIS_CHUNK];
  for (uint32_t r = r0; r < r1; r += 4u) {
    const uint32_t nv = r1 - r < 4u ? r1 - r : 4u;
    uint32_t acc[4] = {0, 0, 0, 0};
    if (w16 != 0) {
      bl_dot_multi(x, w16 + r * in_features, in_features, nv, in_features, acc);
    } else {
      for (uint32_t c0 = 0; c0 < in_features; c0 += BL_CMSIS_CHUNK) {
        const uint32_t len = in_features - c0 < BL_CMSIS_CHUNK ? in_features - c0 : BL_CMSIS_CHUNK;
        for (uint32_t v = 0; v < nv; v++) bl_widen8(w8 + (r + v) * in_features + c0, wide + v * len, len);
        bl_dot_multi(x + c0, wide, (int32_t)len, nv, len, acc);
      }
    }
    for (uint32_t v = 0; v < nv; v++) {
      uint32_t a = acc[v];
      if (bias != 0) a += (uint32_t)bias[r + v];
      y[r + v] = bl_dsp_requant_r(a, shift, relu);
    }
  }
  return BL_OK;
}

/* R[t] = x[(-t) mod k] for t < 2k (the block reversed and doubled: R[0] = x[0], R[1] = x[k-1], ...),
 * zeros for columns at or beyond `valid` (the padded last block). Row rr of a circulant block then reads
 * the contiguous run R + k - rr (see the top of the file). */
static void reverse_doubled(const int16_t *x, uint32_t k, uint32_t valid, int16_t *R) {
#if BL_MVE
  if (valid >= k && (k & 7u) == 0) {
    /* Helium: eight lanes per gather load (VLDRH gather), offsets (k - t - lane) mod k */
    for (uint32_t t = 0; t < k; t += 8u) {
      uint16x8_t off = vsubq_u16(vdupq_n_u16((uint16_t)(k - t)), vidupq_n_u16(0, 1)); /* k - t - lane */
      off = vandq_u16(off, vdupq_n_u16((uint16_t)(k - 1u)));         /* mod k (k a power of two) */
      const int16x8_t v = vldrhq_gather_shifted_offset_s16(x, off);
      vst1q_s16(R + t, v);
      vst1q_s16(R + k + t, v);
    }
    return;
  }
#endif
  if (valid >= k && k >= 4u) {
    /* pairs (R[2s], R[2s+1]) = (x[k-2s], x[k-2s-1]): the word at x + k-2s-1 with its halves swapped */
    R[0] = x[0];
    R[1] = x[k - 1u];
    for (uint32_t t = 2; t < k; t += 2u) {
      const uint32_t v = bl_ld2(x + k - t - 1u);
      const uint32_t sw = (v >> 16) | (v << 16);
      bl_st2(R + t, sw);
      bl_st2(R + k + t, sw);
    }
    R[k] = R[0];
    R[k + 1u] = R[1];
    return;
  }
  for (uint32_t t = 0; t < k; t++) {
    const uint32_t c = (k - t) % k;
    R[t] = c < valid ? x[c] : 0;
    R[k + t] = R[t];
  }
}

/* Four requantised rows from accumulators that already hold the bias (bias added first: the sum is modulo
 * 2^32 either way, so the order does not change a bit). */
static inline __attribute__((always_inline)) void store4(int16_t *y, const uint32_t *acc, int16_t shift,
                                                         bool in_range, bool relu) {
#if BL_MVE
  if (in_range) {
    /* Helium: bias already in; the spec's rounding shift, saturation and narrowing store, one vector */
    const int32x4_t a = vshlq_s32(vld1q_s32((const int32_t *)acc), vdupq_n_s32(-(int32_t)(shift - 1)));
    const int32x4_t v = vaddq_s32(vshrq_n_s32(a, 1), vandq_s32(a, vdupq_n_s32(1)));
    vstrhq_s32(y, vminq_s32(vmaxq_s32(v, vdupq_n_s32(relu ? 0 : -32768)), vdupq_n_s32(32767)));
    return;
  }
#endif
  if (in_range) {
    const int32_t sh1 = shift - 1;
    if (relu) { /* one test per four rows; USAT #15 = the fused relu */
      y[0] = bl_dsp_requant_in_r(acc[0], sh1, true);
      y[1] = bl_dsp_requant_in_r(acc[1], sh1, true);
      y[2] = bl_dsp_requant_in_r(acc[2], sh1, true);
      y[3] = bl_dsp_requant_in_r(acc[3], sh1, true);
      return;
    }
    y[0] = bl_dsp_requant_in(acc[0], sh1);
    y[1] = bl_dsp_requant_in(acc[1], sh1);
    y[2] = bl_dsp_requant_in(acc[2], sh1);
    y[3] = bl_dsp_requant_in(acc[3], sh1);
    return;
  }
  for (uint32_t v = 0; v < 4u; v++) y[v] = bl_dsp_requant_r(acc[v], shift, relu);
}

/* Block-circulant rows [r0, r1) when every input block's reversed, doubled copy fits R at once (q * 2k <=
 * BL_CMSIS_R_MAX, k >= 4 a multiple of 4; the digits models: q * k <= 128): R is built once per call, not
 * once per block row, each group of four rows starts from its bias and is finished in one pass over the q
 * blocks (accumulators stay in registers, no partial-sum array) and requantised at once. */
/* Its two callers (sel = 0 and the EVE entry at the end) share one copy on the Cortex-M4 and get one each,
 * specialised for their sel, under Helium: measured on the digits EVE MLP's mode 0 (benchmarks/eve_device.py)
 * the shared copy is the cheaper one on the M4 (24,257 vs 24,921 instructions), the inlined ones on the M55
 * (11,371 vs 11,707). */
#if BL_MVE
#define BL_ONE_PASS_INLINE inline __attribute__((always_inline))
#else
#define BL_ONE_PASS_INLINE
#endif
static BL_ONE_PASS_INLINE void circ_one_pass(
    const int16_t *x, uint16_t in_features, const int16_t *w16, const int8_t *w8, uint32_t k, uint32_t q,
    const int32_t *bias, int16_t shift, int16_t *y, uint32_t r0, uint32_t r1, bool relu, const bl_block_sel *sel) {
  int16_t R[BL_CMSIS_R_MAX];
  int16_t wide[BL_CMSIS_R_MAX / 2u];
  /* EVE (sel != 0): the blocks of block row i the mode uses, as pointer lists (bl_circ_rows4 skips the
   * others: they add nothing in the spec); rows >= sel->out_rows are 0 */
  const int16_t *wp[BL_CMSIS_SEL_MAX_Q], *rp[BL_CMSIS_SEL_MAX_Q];
  const bool in_range = shift >= 1 && shift <= 31;
  const uint32_t rk = sel != 0 && sel->out_rows < r1 ? (sel->out_rows > r0 ? sel->out_rows : r0) : r1;
  for (uint32_t r = rk; r < r1; r++) y[r] = 0;
  r1 = rk;
  if (sel == 0) {
    for (uint32_t j = 0; j < q; j++) reverse_doubled(x + j * k, k, in_features - j * k, R + j * 2u * k);
  } else if (r0 < r1) {
    /* only the input blocks some used block of these rows reads */
    for (uint32_t j = 0; j < q; j++) {
      for (uint32_t i = r0 / k; i <= (r1 - 1u) / k; i++) {
        if (sel->rank[i * q + j] < sel->n) {
          reverse_doubled(x + j * k, k, in_features - j * k, R + j * 2u * k);
          break;
        }
      }
    }
  }
  uint32_t g0 = r0;
  while (g0 < r1) {
    const uint32_t i = g0 / k;
    const uint32_t g1 = (i + 1u) * k < r1 ? (i + 1u) * k : r1;
    const int16_t *wv = wide;
    uint32_t nb = q;
    if (sel != 0) {
      nb = 0;
      for (uint32_t j = 0; j < q; j++) {
        if (sel->rank[i * q + j] >= sel->n) continue;
        if (w16 != 0) {
          wp[nb] = w16 + (i * q + j) * k;
        } else {
          bl_widen8(w8 + (i * q + j) * k, wide + nb * k, k);
          wp[nb] = wide + nb * k;
        }
        rp[nb++] = R + j * 2u * k;
      }
    } else if (w16 != 0) {
      wv = w16 + i * q * k;
    } else {
      bl_widen8(w8 + i * q * k, wide, q * k);
    }
    uint32_t r = g0, rr = g0 - i * k; /* rr: row within the block */
    for (; r + 4u <= g1; r += 4u, rr += 4u) {
      uint32_t acc[4] = {0, 0, 0, 0};
      if (bias != 0) {
        acc[0] = (uint32_t)bias[r];
        acc[1] = (uint32_t)bias[r + 1u];
        acc[2] = (uint32_t)bias[r + 2u];
        acc[3] = (uint32_t)bias[r + 3u];
      }
      /* two expansions: mode 0's consecutive blocks keep their constant-folded addressing */
      if (sel != 0) bl_circ_rows4_k(0, 0, wp, rp, k, nb, k - rr, acc);
      else bl_circ_rows4_k(wv, R, 0, 0, k, nb, k - rr, acc);
      store4(y + r, acc, shift, in_range, relu);
    }
    if (r < g1) {
      /* 1-3 rows left: four rows of the block that include them (extra rows computed, not stored) */
      const uint32_t s0 = rr + 4u <= k ? rr : k - 4u;
      uint32_t t4[4] = {0, 0, 0, 0};
      if (sel != 0) bl_circ_rows4_k(0, 0, wp, rp, k, nb, k - s0, t4);
      else bl_circ_rows4_k(wv, R, 0, 0, k, nb, k - s0, t4);
      for (; r < g1; r++, rr++) {
        uint32_t a = t4[rr - s0];
        if (bias != 0) a += (uint32_t)bias[r];
        y[r] = bl_dsp_requant_r(a, shift, relu);
      }
    }
    g0 = g1;
  }
}

/* Block-circulant rows [r0, r1), grouped by block i. Per input block j the reversed, doubled input block R
 * is built once and shared by all rows of the group; four rows at a time share the loads of the weight
 * vector w[i][j] (k int16; int8 widened once per block). */
static bl_status circ(const int16_t *x, uint16_t in_features, const int16_t *w16, const int8_t *w8, uint16_t k,
                      const int32_t *bias, int16_t shift, int16_t *y, uint16_t out_features, uint16_t r0,
                      uint16_t r1, bool relu) {
  if (x == 0 || y == 0 || (w16 == 0 && w8 == 0)) return BL_ERR_ARG;
  if (in_features == 0 || out_features == 0 || k == 0) return BL_ERR_SHAPE;
  if (r0 >= r1 || r1 > out_features) return BL_ERR_ARG;
  const uint32_t q = ((uint32_t)in_features + k - 1u) / k;
  if (k >= 4u && (k & 3u) == 0 && q * 2u * k <= BL_CMSIS_R_MAX) {
    circ_one_pass(x, in_features, w16, w8, k, q, bias, shift, y, r0, r1, relu, 0);
    return BL_OK;
  }
  int16_t R[BL_CMSIS_R_MAX];
  int16_t wide[BL_CMSIS_R_MAX / 2u];
  uint32_t acc[BL_CMSIS_CIRC_MAX_K];
  /* input blocks per pass: as many reversed, doubled blocks as fit in R */
  const uint32_t jn = BL_CMSIS_R_MAX / (2u * k) < q ? BL_CMSIS_R_MAX / (2u * k) : q;
  uint32_t g0 = r0;
  while (g0 < r1) {
    /* a group: rows g0 .. g1-1 of block i */
    const uint32_t i = g0 / k;
    uint32_t g1 = (i + 1u) * k;
    if (g1 > r1) g1 = r1;
    memset(acc, 0, (g1 - g0) * sizeof *acc);
    for (uint32_t j0 = 0; j0 < q; j0 += jn) {
      const uint32_t nb = q - j0 < jn ? q - j0 : jn;
      for (uint32_t b = 0; b < nb; b++) {
        const uint32_t j = j0 + b;
        reverse_doubled(x + j * k, k, in_features - j * k, R + b * 2u * k);
      }
      const uint32_t base = (i * q + j0) * k;
      const int16_t *wv = wide;
      if (w16 != 0) wv = w16 + base;
      else bl_widen8(w8 + base, wide, nb * k);
      uint32_t r = g0;
      for (; k >= 4u && r + 4u <= g1; r += 4u) bl_circ_rows4(wv, R, 0, 0, k, nb, k - r % k, acc + (r - g0));
      if (r < g1 && k >= 4u) {
        /* 1-3 rows left: four rows of the block that include them (extra rows computed, not stored) */
        const uint32_t s0 = r % k + 4u <= k ? r % k : k - 4u;
        uint32_t t4[4] = {0, 0, 0, 0};
        bl_circ_rows4(wv, R, 0, 0, k, nb, k - s0, t4);
        for (; r < g1; r++) acc[r - g0] += t4[r % k - s0];
      }
      for (; r < g1; r++) {
        for (uint32_t b = 0; b < nb; b++) bl_dot_multi(wv + b * k, R + b * 2u * k + k - r % k, 0, 1u, k, acc + (r - g0));
      }
    }
    uint32_t r = g0;
#if BL_MVE
    if (shift >= 1 && shift <= 31) {
      /* Helium: four rows per vector: bias, the spec's rounding shift, saturation, narrowed store */
      const int32x4_t sh = vdupq_n_s32(-(int32_t)(shift - 1)), one = vdupq_n_s32(1);
      const int32x4_t lo = vdupq_n_s32(relu ? 0 : -32768), hi = vdupq_n_s32(32767);
      for (; r + 4u <= g1; r += 4u) {
        int32x4_t a = vld1q_s32((const int32_t *)acc + (r - g0));
        if (bias != 0) a = vaddq_s32(a, vld1q_s32(bias + r));
        a = vshlq_s32(a, sh);
        const int32x4_t v = vaddq_s32(vshrq_n_s32(a, 1), vandq_s32(a, one));
        vstrhq_s32(y + r, vminq_s32(vmaxq_s32(v, lo), hi));
      }
    }
#endif
    for (; r < g1; r++) {
      uint32_t a = acc[r - g0];
      if (bias != 0) a += (uint32_t)bias[r];
      y[r] = bl_dsp_requant_r(a, shift, relu);
    }
    g0 = g1;
  }
  return BL_OK;
}

/* The entry points: the plain ones (bl_kernels.h) and the fused requantise + ReLU variants (_relu_), the
 * same kernels with the clamp at 0 in their requantisation step. The ref fallbacks (blocks beyond
 * BL_CMSIS_CIRC_MAX_K) apply the relu to their rows after the call: the same values. */
static bl_status circ_entry(const int16_t *x, uint16_t in_features, const int16_t *w16, const int8_t *w8,
                            uint16_t k, const int32_t *bias, int16_t shift, int16_t *y, uint16_t out_features,
                            uint16_t r0, uint16_t r1, bool relu) {
  if (w16 == 0 && w8 == 0) return BL_ERR_ARG;
  if (k > BL_CMSIS_CIRC_MAX_K) {
    const bl_status st =
        w16 != 0 ? bl_ref_linear_circ_w16(x, in_features, w16, k, bias, shift, y, out_features, r0, r1)
                 : bl_ref_linear_circ_w8(x, in_features, w8, k, bias, shift, y, out_features, r0, r1);
    return st == BL_OK && relu ? bl_relu_q15(y + r0, y + r0, (uint32_t)(r1 - r0)) : st;
  }
  return circ(x, in_features, w16, w8, k, bias, shift, y, out_features, r0, r1, relu);
}

bl_status bl_linear_dense_w16(const int16_t *x, uint16_t in_features, const int16_t *w, const int32_t *bias,
                              int16_t shift, int16_t *y, uint16_t out_features, uint16_t r0, uint16_t r1) {
  if (w == 0) return BL_ERR_ARG;
  return dense(x, in_features, w, 0, bias, shift, y, out_features, r0, r1, false);
}

bl_status bl_linear_dense_w8(const int16_t *x, uint16_t in_features, const int8_t *w, const int32_t *bias,
                             int16_t shift, int16_t *y, uint16_t out_features, uint16_t r0, uint16_t r1) {
  if (w == 0) return BL_ERR_ARG;
  return dense(x, in_features, 0, w, bias, shift, y, out_features, r0, r1, false);
}

bl_status bl_linear_circ_w16(const int16_t *x, uint16_t in_features, const int16_t *w, uint16_t k,
                             const int32_t *bias, int16_t shift, int16_t *y, uint16_t out_features, uint16_t r0,
                             uint16_t r1) {
  if (w == 0) return BL_ERR_ARG;
  return circ_entry(x, in_features, w, 0, k, bias, shift, y, out_features, r0, r1, false);
}

bl_status bl_linear_circ_w8(const int16_t *x, uint16_t in_features, const int8_t *w, uint16_t k,
                            const int32_t *bias, int16_t shift, int16_t *y, uint16_t out_features, uint16_t r0,
                            uint16_t r1) {
  if (w == 0) return BL_ERR_ARG;
  return circ_entry(x, in_features, 0, w, k, bias, shift, y, out_features, r0, r1, false);
}

bl_status bl_linear_dense_relu_w16(const int16_t *x, uint16_t in_features, const int16_t *w, const int32_t *bias,
                                   int16_t shift, int16_t *y, uint16_t out_features, uint16_t r0, uint16_t r1) {
  if (w == 0) return BL_ERR_ARG;
  return dense(x, in_features, w, 0, bias, shift, y, out_features, r0, r1, true);
}

bl_status bl_linear_dense_relu_w8(const int16_t *x, uint16_t in_features, const int8_t *w, const int32_t *bias,
                                  int16_t shift, int16_t *y, uint16_t out_features, uint16_t r0, uint16_t r1) {
  if (w == 0) return BL_ERR_ARG;
  return dense(x, in_features, 0, w, bias, shift, y, out_features, r0, r1, true);
}

bl_status bl_linear_circ_relu_w16(const int16_t *x, uint16_t in_features, const int16_t *w, uint16_t k,
                                  const int32_t *bias, int16_t shift, int16_t *y, uint16_t out_features,
                                  uint16_t r0, uint16_t r1) {
  if (w == 0) return BL_ERR_ARG;
  return circ_entry(x, in_features, w, 0, k, bias, shift, y, out_features, r0, r1, true);
}

bl_status bl_linear_circ_relu_w8(const int16_t *x, uint16_t in_features, const int8_t *w, uint16_t k,
                                 const int32_t *bias, int16_t shift, int16_t *y, uint16_t out_features,
                                 uint16_t r0, uint16_t r1) {
  if (w == 0) return BL_ERR_ARG;
  return circ_entry(x, in_features, 0, w, k, bias, shift, y, out_features, r0, r1, true);
}

/* EVE: rows [r0, r1) of a block-circulant linear layer in a mode that uses only some of its blocks
 * (bl_cmsis_eve.h; called by cmsis/eve_sel.c for a whole-unit task): the one-pass kernel above over the
 * blocks with rank < sel->n, rows >= sel->out_rows 0. Returns BL_ERR_SHAPE when the layer does not fit the
 * one-pass buffers (the caller then runs the portable kernel). */
bl_status bl_cmsis_linear_circ_sel(const int16_t *x, uint16_t in_features, const int16_t *w16, const int8_t *w8,
                                   uint16_t k, const int32_t *bias, int16_t shift, int16_t *y, uint16_t out_features,
                                   uint16_t r0, uint16_t r1, const bl_block_sel *sel) {
  if (x == 0 || y == 0 || sel == 0 || sel->rank == 0 || (w16 == 0 && w8 == 0)) return BL_ERR_ARG;
  if (in_features == 0 || out_features == 0 || k == 0) return BL_ERR_SHAPE;
  if (r0 >= r1 || r1 > out_features) return BL_ERR_ARG;
  const uint32_t q = ((uint32_t)in_features + k - 1u) / k;
  if (k < 4u || (k & 3u) != 0 || k > BL_CMSIS_CIRC_MAX_K || q * 2u * k > BL_CMSIS_R_MAX || q > BL_CMSIS_SEL_MAX_Q)
    return BL_ERR_SHAPE;
  circ_one_pass(x, in_features, w16, w8, k, q, bias, shift, y, r0, r1, false, sel);
  return BL_OK;
}
