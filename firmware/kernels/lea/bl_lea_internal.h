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
