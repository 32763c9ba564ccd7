/* lea backend: internal header shared by the kernel files (not part of the kernel API).
 *
 * LEA operands must sit in LEA RAM (DSPLIB_DATA). The kernel API passes ordinary buffers, so the lea
 * kernels stage their operands in a fixed LEA-RAM scratch area defined in fft_q15.c: one complex FFT buffer
 * (BL_LEA_FFT_MAX points, aligned as MSP_ALIGN_CMPLX_FFT_Q15 demands) and three vectors of BL_LEA_VEC_LEN
 * int16 plus a 2 x int32 result for the MACs. It is scratch only: every call fills it before reading it and
 * keeps nothing in it between calls, so each unit of work stays idempotent (docs/kernels.md).
 *
 * Exact MACs: DSPLib's msp_mac_q15 / msp_cmplx_mac_q15 return 2 * sum(a*b) in an int32 (IQ31), which
 * would lose the top bit of the spec's wrapping 32-bit accumulator. The kernels therefore split every
 * int16 weight w = 256 * hi + lo (hi = floor(w / 256) in [-128, 127], lo in [0, 255]) and feed at most
 * BL_LEA_VEC_LEN (real) or BL_LEA_VEC_LEN / 2 (complex) products per call, so that each call's doubled sum
 * stays below 2^30 in magnitude (|x| <= 2^15): exact, never saturated. The partial sums are combined as
 * sum = 256 * (R_hi / 2) + R_lo / 2 in a wrapping uint32 — the spec's wrap32. int8 weights need no split. */
#ifndef BL_LEA_INTERNAL_H
#define BL_LEA_INTERNAL_H

#include "../../dsplib/DSPLib.h"
#include "../ref/bl_ref_internal.h"
#include "bl_kernels.h"

#ifndef BL_LEA_FFT_MAX
#define BL_LEA_FFT_MAX 64u /* largest block length transformed on LEA; 4 * 64 = 256 bytes of LEA RAM */
#endif
#define BL_LEA_FFT_MIN 16u /* smallest LEA FFT (TI's tables start at 16 points) */
#define BL_LEA_VEC_LEN 64u /* int16 per MAC operand vector: 64 real or 32 complex products per call */

extern int16_t bl_lea_fft_buf[2u * BL_LEA_FFT_MAX];
extern int16_t bl_lea_vec_x[BL_LEA_VEC_LEN];
extern int16_t bl_lea_vec_hi[BL_LEA_VEC_LEN];
extern int16_t bl_lea_vec_lo[BL_LEA_VEC_LEN];
extern int32_t bl_lea_result[2];

/* ceil(n / k) for block counts. A 32-bit division is a ~1,000-cycle helper call on the MSP430 (it was a
 * fifth of the MLP FFT path's cycles): powers of two shift, anything else divides in 16 bits when it fits. */
static inline uint32_t bl_lea_blocks(uint32_t n, uint16_t k) {
  uint32_t t = n + k - 1u;
  if ((k & (uint16_t)(k - 1u)) == 0u) {
    for (; k > 1u; k = (uint16_t)(k >> 1)) t >>= 1;
    return t;
  }
  return t <= 0xFFFFu ? (uint32_t)((uint16_t)t / k) : t / k;
}

/* floor(w / 256) for w in the int16 range, without a variable shift or a signed right shift:
 * the biased value w + 32768 is in 0 .. 65535, so its high byte minus 128 is floor(w / 256). */
static inline int16_t bl_lea_hi8(int32_t w) {
  const uint16_t biased = (uint16_t)((uint16_t)w + 0x8000u); /* mod 2^16 whatever the width of int */
  return (int16_t)((int16_t)(biased >> 8) - 128);
}

/* The spec's final rescale + bias, sat16(rshift_round(o, shift_out) + bias_out) (bl_ref_finish), with the
 * common case -15 <= shift_out <= 0 done in 32 bits: o * 2^-shift_out is exact there (|o| <= 2^15, so at
 * most 2^30) and so is the sum with |bias_out| < 2^30, while the general routine takes a 64-bit shift and
 * multiply (helper calls costing thousands of cycles per output on the MSP430). */
static inline int16_t bl_lea_finish(int16_t o, int16_t shift_out, int32_t bias_out) {
  const int32_t lim = (int32_t)1 << 30;
  if (shift_out <= 0 && shift_out >= -15 && bias_out > -lim && bias_out < lim) {
    int32_t v = o;
    for (int16_t s = shift_out; s < 0; s++) v += v;
    return bl_sat16_s32(v + bias_out);
  }
  return bl_ref_finish(o, shift_out, bias_out);
}

/* u >> n (0 <= n <= 31) with constant shifts only: a variable 32-bit shift is a helper looping per bit. */
static inline uint32_t bl_lea_lsr32(uint32_t u, uint16_t n) {
  if (n & 16u) u >>= 16;
  if (n & 8u) u >>= 8;
  if (n & 4u) u >>= 4;
  if (n & 2u) u >>= 2;
  if (n & 1u) u >>= 1;
  return u;
}

/* The spec's requantisation sat16(rshift_round(acc, s)) (bl_requant_s32) for 1 <= s <= 31 in 32-bit
 * unsigned arithmetic: with u = acc + 2^31 in [0, 2^32) and a = floor(u / 2^(s-1)),
 * floor((acc + 2^(s-1)) / 2^s) = floor((a + 1) / 2) - 2^(31-s), and floor((a + 1) / 2) = (a >> 1) + (a & 1)
 * cannot overflow. Other shifts take the general routine. */
static inline int16_t bl_lea_requant(int32_t acc, int16_t s) {
  if (s < 1 || s > 31) return bl_requant_s32(acc, s);
  const uint32_t a = bl_lea_lsr32((uint32_t)acc ^ 0x80000000u, (uint16_t)(s - 1));
  const uint32_t r = (a >> 1) + (a & 1u) - bl_lea_lsr32(0x80000000u, (uint16_t)s); /* mod 2^32 */
  if (r & 0x80000000u) { /* negative: r = 2^32 - m with m = ~r + 1 */
    return r >= 0xFFFF8000u ? (int16_t)(-(int32_t)(~r) - 1) : INT16_MIN;
  }
  return r <= 0x7FFFu ? (int16_t)r : INT16_MAX;
}

/* 1 when a k-point transform runs on LEA (else the portable ref FFT runs on the CPU). */
static inline int bl_lea_fft_on_lea(uint16_t k) { return k >= BL_LEA_FFT_MIN && k <= BL_LEA_FFT_MAX; }

/* In-place transform of buf (k complex values): through msp_cmplx_(i)fft_fixed_q15 when buf is
 * bl_lea_fft_buf and k runs on LEA, else the portable ref FFT. */
bl_status bl_lea_fft_run(int16_t *buf, const bl_fft_cfg *cfg, bool inverse);
/* The buffer an FFT-path kernel fills for a k-point transform: LEA RAM when k runs on LEA, else `work`. */
static inline int16_t *bl_lea_fft_target(uint16_t k, int16_t *work) {
  return bl_lea_fft_on_lea(k) ? bl_lea_fft_buf : work;
}

/* Real dot product accumulator: push (x, w) pairs; each full vector is flushed through msp_mac_q15. */
typedef struct {
  uint32_t acc; /* wrapping sum so far */
  uint16_t n;   /* pairs staged in the LEA vectors */
  bool split;   /* int16 weights: hi/lo split (two MACs per flush); int8: one MAC */
} bl_lea_dot;

bl_status bl_lea_dot_flush(bl_lea_dot *d);
static inline bl_status bl_lea_dot_push(bl_lea_dot *d, int16_t x, int32_t w) {
  bl_lea_vec_x[d->n] = x;
  if (d->split) {
    const int32_t hi = bl_lea_hi8(w);
    bl_lea_vec_hi[d->n] = (int16_t)hi;
    bl_lea_vec_lo[d->n] = (int16_t)(w - hi * 256);
  } else {
    bl_lea_vec_lo[d->n] = (int16_t)w;
  }
  d->n++;
  return d->n == BL_LEA_VEC_LEN ? bl_lea_dot_flush(d) : BL_OK;
}

/* Complex accumulator for the FFT path: push (X, S) bins; flushed through msp_cmplx_mac_q15 (S split). */
typedef struct {
  uint32_t re, im;
  uint16_t n; /* complex pairs staged */
} bl_lea_cdot;

bl_status bl_lea_cdot_flush(bl_lea_cdot *d);
static inline bl_status bl_lea_cdot_push(bl_lea_cdot *d, int16_t xr, int16_t xi, int16_t sr, int16_t si) {
  const uint16_t e = (uint16_t)(2u * d->n);
  const int32_t hr = bl_lea_hi8(sr), hi = bl_lea_hi8(si);
  bl_lea_vec_x[e] = xr;
  bl_lea_vec_x[e + 1u] = xi;
  bl_lea_vec_hi[e] = (int16_t)hr;
  bl_lea_vec_hi[e + 1u] = (int16_t)hi;
  bl_lea_vec_lo[e] = (int16_t)(sr - hr * 256);
  bl_lea_vec_lo[e + 1u] = (int16_t)(si - hi * 256);
  d->n++;
  return 2u * d->n == BL_LEA_VEC_LEN ? bl_lea_cdot_flush(d) : BL_OK;
}

/* Packed bin f of a spectrum stored with element stride `s` (imaginary parts of bins 0 and k/2 are 0). */
static inline void bl_lea_bin(const int16_t *v, uint32_t s, uint16_t f, uint16_t k, int16_t *re, int16_t *im) {
  const int32_t ir = bl_ref_slot_re(f, k), ii = bl_ref_slot_im(f, k);
  *re = v[(uint32_t)ir * s];
  *im = ii >= 0 ? v[(uint32_t)ii * s] : 0;
}

#endif /* BL_LEA_INTERNAL_H */
