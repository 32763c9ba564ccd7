/* cmsis backend: the inner loops the backend owns, written with the Cortex-M DSP extension (Armv7E-M /
 * Armv8-M mainline with DSP: SMLAD dual 16-bit MACs, SSAT, USAT16, SSUB16 + SEL) through GCC's ACLE
 * intrinsics (<arm_acle.h>), and with Helium (MVE) where the core has it (Cortex-M55). Internal: included by
 * linear.c, conv.c, pool.c, relu.c of this backend only.
 *
 * Every MAC here is exact modulo 2^32, which is the spec's wrap32 accumulator: SMLAD adds both 16x16
 * products and the accumulator and keeps the low 32 bits (it only sets the sticky Q flag on signed overflow,
 * which nothing reads); MVE's VMLADAVA accumulates the same way. So the direct paths stay bit-exact.
 *
 * Loads of two int16 as one 32-bit word go through memcpy: the address may be odd in int16 units (sliding
 * windows of the circulant paths); Armv7-M / Armv8-M LDR accepts unaligned addresses on normal memory and
 * GCC turns the memcpy into one LDR (-mcpu=cortex-m4 / m55 allow unaligned access). Without the DSP
 * extension (any other compiler or core) the same functions are plain C with the same results. */
#ifndef BL_CMSIS_DSP_H
#define BL_CMSIS_DSP_H

#include <string.h>

#include "bl_kernels.h"

#if defined(__ARM_FEATURE_DSP) && __ARM_FEATURE_DSP
#include <arm_acle.h>
#define BL_DSP 1
#else
#define BL_DSP 0
#endif

#if defined(__ARM_FEATURE_MVE) && (__ARM_FEATURE_MVE & 1)
#include <arm_mve.h>
#define BL_MVE 1
#else
#define BL_MVE 0
#endif

/* two int16 from any 2-byte-aligned address, element 0 in the low half (little-endian) */
static inline uint32_t bl_ld2(const int16_t *p) {
  uint32_t v;
  memcpy(&v, p, sizeof v);
  return v;
}
static inline void bl_st2(int16_t *p, uint32_t v) { memcpy(p, &v, sizeof v); }

static inline uint32_t bl_mac2(uint32_t a, uint32_t b, uint32_t acc) {
#if BL_DSP
  return (uint32_t)__smlad((int16x2_t)a, (int16x2_t)b, (int32_t)acc);
#else
  return acc + (uint32_t)((int32_t)(int16_t)a * (int16_t)b) +
         (uint32_t)((int32_t)(int16_t)(a >> 16) * (int16_t)(b >> 16));
#endif
}

/* acc[r] += sum_{t < n} c[t] * v[r * stride + t] for r < nv (1 .. 4), modulo 2^32. One vector c shared by up
 * to four others: the shared operand is loaded once per pair of MACs (5 loads per 8 MACs with nv = 4).
 * stride is in int16 and may be negative (circulant rows slide backwards through a doubled block). */
static inline void bl_dot_multi(const int16_t *c, const int16_t *v, int32_t stride, uint32_t nv, uint32_t n,
                                uint32_t *acc) {
#if BL_MVE
  /* eight int16 lanes per vector; VMLADAVA accumulates the eight products into a 32-bit scalar (wrapping);
   * the shared vector is loaded once per chunk; the tail chunk is predicated (lanes beyond n add nothing) */
  int32_t s0 = (int32_t)acc[0], s1 = nv > 1 ? (int32_t)acc[1] : 0, s2 = nv > 2 ? (int32_t)acc[2] : 0;
  int32_t s3 = nv > 3 ? (int32_t)acc[3] : 0;
  for (uint32_t i = 0; i < n; i += 8u) {
    const mve_pred16_t pr = vctp16q(n - i);
    const int16x8_t cv = vld1q_z_s16(c + i, pr);
    s0 = vmladavaq_p_s16(s0, cv, vld1q_z_s16(v + i, pr), pr);
    if (nv > 1) s1 = vmladavaq_p_s16(s1, cv, vld1q_z_s16(v + stride + i, pr), pr);
    if (nv > 2) s2 = vmladavaq_p_s16(s2, cv, vld1q_z_s16(v + 2 * stride + i, pr), pr);
    if (nv > 3) s3 = vmladavaq_p_s16(s3, cv, vld1q_z_s16(v + 3 * stride + i, pr), pr);
  }
  acc[0] = (uint32_t)s0;
  if (nv > 1) acc[1] = (uint32_t)s1;
  if (nv > 2) acc[2] = (uint32_t)s2;
  if (nv > 3) acc[3] = (uint32_t)s3;
#else
  const int16_t *p0 = v, *p1 = v + stride, *p2 = v + 2 * stride, *p3 = v + 3 * stride;
  uint32_t a0 = acc[0], a1 = nv > 1 ? acc[1] : 0, a2 = nv > 2 ? acc[2] : 0, a3 = nv > 3 ? acc[3] : 0;
  const uint32_t pairs = n / 2u;
  if (nv == 4) {
    for (uint32_t i = 0; i < pairs; i++) {
      const uint32_t cw = bl_ld2(c + 2u * i);
      a0 = bl_mac2(cw, bl_ld2(p0 + 2u * i), a0);
      a1 = bl_mac2(cw, bl_ld2(p1 + 2u * i), a1);
      a2 = bl_mac2(cw, bl_ld2(p2 + 2u * i), a2);
      a3 = bl_mac2(cw, bl_ld2(p3 + 2u * i), a3);
    }
  } else if (nv == 2) {
    for (uint32_t i = 0; i < pairs; i++) {
      const uint32_t cw = bl_ld2(c + 2u * i);
      a0 = bl_mac2(cw, bl_ld2(p0 + 2u * i), a0);
      a1 = bl_mac2(cw, bl_ld2(p1 + 2u * i), a1);
    }
  } else {
    for (uint32_t r = 0; r < nv; r++) {
      const int16_t *pr = v + (int32_t)r * stride;
      uint32_t s = r == 0 ? a0 : (r == 1 ? a1 : a2);
      for (uint32_t i = 0; i < pairs; i++) s = bl_mac2(bl_ld2(c + 2u * i), bl_ld2(pr + 2u * i), s);
      if (r == 0) a0 = s;
      else if (r == 1) a1 = s;
      else a2 = s;
    }
  }
  if (n & 1u) {
    const uint32_t t = n - 1u;
    const int32_t ct = c[t];
    a0 += (uint32_t)(ct * p0[t]);
    if (nv > 1) a1 += (uint32_t)(ct * p1[t]);
    if (nv > 2) a2 += (uint32_t)(ct * p2[t]);
    if (nv > 3) a3 += (uint32_t)(ct * p3[t]);
  }
  acc[0] = a0;
  if (nv > 1) acc[1] = a1;
  if (nv > 2) acc[2] = a2;
  if (nv > 3) acc[3] = a3;
#endif
}

/* Four consecutive rows of block-circulant blocks, each block read as a window sliding backwards:
 *   acc[r] += sum_{b < nb} sum_{m < k} wp[b][m] * rp[b][o - r + m],  r = 0 .. 3,
 * where rp[b] points at a reversed, doubled input block of 2k int16 and 3 <= o <= k (o = k - first row).
 * Row r + 2 reads at pair i the word row r read at pair i - 1, so each pair of MACs of four rows costs three
 * loads (w, and the new words of rows 0 and 1) and four SMLADs. k a multiple of 4. The blocks are given as
 * pointer lists (a convolution skips the taps that fall into the padding) or, with wp == 0 / rp == 0, as
 * consecutive blocks from w (k apart) and R (2k apart). */
static inline __attribute__((always_inline)) void bl_circ_rows4(const int16_t *w, const int16_t *R, const int16_t *const *wp,
                                 const int16_t *const *rp, uint32_t k, uint32_t nb, uint32_t o, uint32_t *acc) {
#if BL_MVE
  /* per block: the weight vector(s) loaded once, each row one (k = 8) or two (k = 16) VMLADAVA on its
   * window; other k: chunks of eight, the last predicated */
  int32_t s0 = (int32_t)acc[0], s1 = (int32_t)acc[1], s2 = (int32_t)acc[2], s3 = (int32_t)acc[3];
  for (uint32_t b = 0; b < nb; b++) {
    const int16_t *c = wp != 0 ? wp[b] : w + b * k, *p = (rp != 0 ? rp[b] : R + b * 2u * k) + o;
    if (k == 8u) {
      const int16x8_t w0 = vld1q_s16(c);
      s0 = vmladavaq_s16(s0, w0, vld1q_s16(p));
      s1 = vmladavaq_s16(s1, w0, vld1q_s16(p - 1));
      s2 = vmladavaq_s16(s2, w0, vld1q_s16(p - 2));
      s3 = vmladavaq_s16(s3, w0, vld1q_s16(p - 3));
    } else if (k == 16u) {
      const int16x8_t w0 = vld1q_s16(c), w1 = vld1q_s16(c + 8);
      s0 = vmladavaq_s16(vmladavaq_s16(s0, w0, vld1q_s16(p)), w1, vld1q_s16(p + 8));
      s1 = vmladavaq_s16(vmladavaq_s16(s1, w0, vld1q_s16(p - 1)), w1, vld1q_s16(p + 7));
      s2 = vmladavaq_s16(vmladavaq_s16(s2, w0, vld1q_s16(p - 2)), w1, vld1q_s16(p + 6));
      s3 = vmladavaq_s16(vmladavaq_s16(s3, w0, vld1q_s16(p - 3)), w1, vld1q_s16(p + 5));
    } else {
      for (uint32_t i = 0; i < k; i += 8u) {
        const mve_pred16_t pr = vctp16q(k - i);
        const int16x8_t cv = vld1q_z_s16(c + i, pr);
        s0 = vmladavaq_p_s16(s0, cv, vld1q_z_s16(p + i, pr), pr);
        s1 = vmladavaq_p_s16(s1, cv, vld1q_z_s16(p - 1 + i, pr), pr);
        s2 = vmladavaq_p_s16(s2, cv, vld1q_z_s16(p - 2 + i, pr), pr);
        s3 = vmladavaq_p_s16(s3, cv, vld1q_z_s16(p - 3 + i, pr), pr);
      }
    }
  }
  acc[0] = (uint32_t)s0;
  acc[1] = (uint32_t)s1;
  acc[2] = (uint32_t)s2;
  acc[3] = (uint32_t)s3;
#else
  uint32_t a0 = acc[0], a1 = acc[1], a2 = acc[2], a3 = acc[3];
  for (uint32_t b = 0; b < nb; b++) {
    const int16_t *c = wp != 0 ? wp[b] : w + b * k, *p = (rp != 0 ? rp[b] : R + b * 2u * k) + o;
    uint32_t h0 = bl_ld2(p - 2), h1 = bl_ld2(p - 3);
    /* two pairs per iteration (k >= 4 is a multiple of 4); fully unrolled where k is a compile-time
     * constant (bl_circ_rows4_k): the loop's counter, compare and branch were 3 of its 17 instructions */
#pragma GCC unroll 8
    for (uint32_t i = 0; i < k; i += 4u) {
      const uint32_t c0 = bl_ld2(c + i), c1 = bl_ld2(c + i + 2);
      const uint32_t x0 = bl_ld2(p + i), x1 = bl_ld2(p + i - 1);
      const uint32_t y0 = bl_ld2(p + i + 2), y1 = bl_ld2(p + i + 1);
      a0 = bl_mac2(c0, x0, a0);
      a1 = bl_mac2(c0, x1, a1);
      a2 = bl_mac2(c0, h0, a2);
      a3 = bl_mac2(c0, h1, a3);
      a0 = bl_mac2(c1, y0, a0);
      a1 = bl_mac2(c1, y1, a1);
      a2 = bl_mac2(c1, x0, a2);
      a3 = bl_mac2(c1, x1, a3);
      h0 = y0;
      h1 = y1;
    }
  }
  acc[0] = a0;
  acc[1] = a1;
  acc[2] = a2;
  acc[3] = a3;
#endif
}

/* bl_circ_rows4 with k = 8 and 16 (the block sizes models use) compiled as
 * constants so the loops unroll; other k the generic loop. */
static inline __attribute__((always_inline)) void bl_circ_rows4_k(const int16_t *w, const int16_t *R,
                                                                  const int16_t *const *wp, const int16_t *const *rp,
                                                                  uint32_t k, uint32_t nb, uint32_t o, uint32_t *acc) {
  if (k == 16u) bl_circ_rows4(w, R, wp, rp, 16u, nb, o, acc);
  else if (k == 8u) bl_circ_rows4(w, R, wp, rp, 8u, nb, o, acc);
  else bl_circ_rows4(w, R, wp, rp, k, nb, o, acc);
}

/* sat16(rshift_round(wrap32(acc), shift)), the spec's requantisation: for 1 <= shift <= 31 in three
 * integer steps, floor((v + 2^(s-1)) / 2^s) = a/2 rounded up with a = floor(v / 2^(s-1)) (no overflow, no
 * 64-bit add), then SSAT #16. GCC's >> of a negative int is arithmetic (documented implementation-defined
 * behaviour; this backend is built with arm-none-eabi-gcc only). Other shifts: the ref primitive. */
static inline int16_t bl_dsp_requant(uint32_t acc, int16_t shift) {
  if (shift >= 1 && shift <= 31) {
    const int32_t a = (int32_t)acc >> (shift - 1);
    const int32_t v = (a >> 1) + (a & 1);
#if BL_DSP
    return (int16_t)__ssat(v, 16);
#else
    return (int16_t)(v > 32767 ? 32767 : (v < -32768 ? -32768 : v));
#endif
  }
  return bl_requant_s32(bl_wrap_s32(acc), shift);
}

/* bl_dsp_requant followed by the spec's relu when `relu` (a fused requantise + ReLU: the producing kernel
 * clamps at 0 instead of a separate ReLU task, docs/kernels.md). max(0, sat16(v)) = clamp(v, 0, 2^15 - 1),
 * which is USAT #15: the same instruction count as SSAT #16, so a fused layer's requantisation costs what
 * an unfused one's does and the ReLU pass over the output disappears. */
static inline int16_t bl_dsp_requant_r(uint32_t acc, int16_t shift, bool relu) {
  if (shift >= 1 && shift <= 31) {
    const int32_t a = (int32_t)acc >> (shift - 1);
    const int32_t v = (a >> 1) + (a & 1);
#if BL_DSP
    return relu ? (int16_t)__usat(v, 15) : (int16_t)__ssat(v, 16);
#else
    const int32_t lo = relu ? 0 : -32768;
    return (int16_t)(v > 32767 ? 32767 : (v < lo ? lo : v));
#endif
  }
  const int16_t r = bl_requant_s32(bl_wrap_s32(acc), shift);
  return relu && r < 0 ? 0 : r;
}

/* bl_dsp_requant_r for 1 <= shift <= 31 only (the caller checked once; sh1 = shift - 1) */
static inline int16_t bl_dsp_requant_in_r(uint32_t acc, int32_t sh1, bool relu) {
  const int32_t a = (int32_t)acc >> sh1;
  const int32_t v = (a >> 1) + (a & 1);
#if BL_DSP
  return relu ? (int16_t)__usat(v, 15) : (int16_t)__ssat(v, 16);
#else
  const int32_t lo = relu ? 0 : -32768;
  return (int16_t)(v > 32767 ? 32767 : (v < lo ? lo : v));
#endif
}

/* bl_dsp_requant for 1 <= shift <= 31 only (the caller checked once; sh1 = shift - 1) */
static inline int16_t bl_dsp_requant_in(uint32_t acc, int32_t sh1) {
  const int32_t a = (int32_t)acc >> sh1;
  const int32_t v = (a >> 1) + (a & 1);
#if BL_DSP
  return (int16_t)__ssat(v, 16);
#else
  return (int16_t)(v > 32767 ? 32767 : (v < -32768 ? -32768 : v));
#endif
}

/* The FFT path's final step, sat16(rshift_round(o, shift_out) + bias_out) (the ref code's bl_ref_finish,
 * exact in 64 bits there; its portable shift-in-steps rounding was ~20 % of the digits MLP's FFT path on the
 * M4): for 0 <= shift_out <= 31 the rounded value fits 16 bits, so the bias is added with QADD (saturating
 * at int32 gives the same int16 result as the exact sum: beyond int32 it saturates to int16 either way)
 * and SSAT #16 finishes; -16 <= shift_out < 0 scales up exactly within int32 (|o| 2^16 <= 2^31, the
 * digits models' case). Other shifts: the ref primitive. */
static inline int16_t bl_dsp_fft_finish(int16_t o, int16_t shift_out, int32_t bias_out) {
  if (shift_out >= -16 && shift_out <= 31) {
    int32_t r = o;
    if (shift_out > 0) {
      const int32_t a = r >> (shift_out - 1);
      r = (a >> 1) + (a & 1);
    } else if (shift_out < 0) {
      r = (int32_t)((uint32_t)r << (uint32_t)-shift_out); /* exact: fits int32 (GCC: modulo conversion) */
    }
#if BL_DSP
    return (int16_t)__ssat(__qadd(r, bias_out), 16);
#else
    const int64_t v = (int64_t)r + bias_out;
    return (int16_t)(v > 32767 ? 32767 : (v < -32768 ? -32768 : v));
#endif
  }
  return bl_sat16_s64(bl_rshift_round_s64(o, shift_out) + (int64_t)bias_out);
}

/* int8 -> int16, n values (widening of 8-bit weights; exact) */
static inline void bl_widen8(const int8_t *w, int16_t *out, uint32_t n) {
  uint32_t t = 0;
#if BL_MVE
  /* eight at a time: VLDRB.S16 sign-extends eight int8 into int16 lanes (the digits CNN's fc1 widened its
   * 512 weights in 1.5k instructions one by one) */
  for (; t + 8u <= n; t += 8u) vst1q_s16(out + t, vldrbq_s16(w + t));
#endif
  for (; t < n; t++) out[t] = w[t];
}

#endif /* BL_CMSIS_DSP_H */
