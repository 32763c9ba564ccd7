/* lea backend: internal header shared by the kernel files (not part of the kernel API).
 *
 * LEA operands must sit in LEA RAM (DSPLIB_DATA). The kernel API passes ordinary buffers, so the lea
 * kernels stage their operands in a fixed LEA-RAM scratch area defined in fft_q15.c: one complex FFT buffer
 * (BL_LEA_FFT_MAX points, aligned as MSP_ALIGN_CMPLX_FFT_Q15 demands), two operand areas of
 * BL_LEA_AREA int16 (bl_lea_xt / bl_lea_st: the transposed spectra of the FFT path, or the input and weight
 * vectors of a direct-path dot product) and a 2 x int32 result. It is scratch only: every call fills it
 * before reading it and keeps nothing in it between calls, so each unit of work stays idempotent
 * (docs/kernels.md).
 *
 * Exact MACs without splitting the weights: DSPLib's msp_mac_q15 / msp_cmplx_mac_q15 return 2 * sum(a*b)
 * saturated to int32 (IQ31). A result that is neither INT32_MAX nor INT32_MIN is exactly twice the sum
 * (|sum| < 2^30), and the spec's wrapping 32-bit accumulator simply adds it. A result at either bound may
 * have saturated: that one MAC is recomputed on the CPU from the staged operands (wrapping, exact), so the
 * outcome is the spec's whatever the data. ASSUMPTION (docs/msp430sim.md, "LEA"): LEA forms the sum wider
 * than its 32-bit result and saturates once at the end, as DSPLib's C code and our emulator do; an LEA that
 * saturated running partial sums could return an in-range wrong value after a transient overflow. With
 * the formats the compressor chooses (accumulators below 2^30 on calibration data) no MAC saturates. */
#ifndef BL_LEA_INTERNAL_H
#define BL_LEA_INTERNAL_H

#include <stddef.h>

#include "../../dsplib/DSPLib.h"
#include "../ref/bl_ref_internal.h"
#include "bl_kernels.h"
#include "bl_ramfunc.h"

#ifndef BL_LEA_FFT_MAX
#define BL_LEA_FFT_MAX 64u /* largest block length transformed on LEA; 4 * 64 = 256 bytes of LEA RAM */
#endif
#define BL_LEA_FFT_MIN 16u /* smallest LEA FFT (TI's tables start at 16 points) */
#define BL_LEA_AREA 512u   /* int16 per operand area: 512 real or 256 complex values per MAC */
#define BL_LEA_BINS_MAX 33u /* bins accumulated at once by the FFT path (k/2 + 1 for k <= 64) */

extern int16_t bl_lea_fft_buf[2u * BL_LEA_FFT_MAX];
extern int16_t bl_lea_xt[BL_LEA_AREA];
extern int16_t bl_lea_st[BL_LEA_AREA];
extern int32_t bl_lea_result[2u * BL_LEA_BINS_MAX]; /* MAC results: one, or one complex per bin */

/* ceil(n / k) for block counts. A 32-bit division is a ~1,000-cycle helper call on the MSP430 (it was a
 * fifth of the MLP FFT path's cycles): powers of two shift, anything else divides in 16 bits when it fits. */
static inline uint32_t bl_lea_blocks(uint32_t n, uint16_t k) {
  uint32_t t = n + k - 1u;
  if ((k & (uint16_t)(k - 1u)) == 0u) {
    if (t <= 0xFFFFu) { /* 16-bit shifts */
      uint16_t u = (uint16_t)t;
      for (; k > 1u; k = (uint16_t)(k >> 1)) u = (uint16_t)(u >> 1);
      return u;
    }
    for (; k > 1u; k = (uint16_t)(k >> 1)) t >>= 1;
    return t;
  }
  return t <= 0xFFFFu ? (uint32_t)((uint16_t)t / k) : t / k;
}

/* The spec's final rescale + bias, sat16(rshift_round(o, shift_out) + bias_out) (bl_ref_finish), with the
 * common case -15 <= shift_out <= 0 done in 32 bits: o * 2^-shift_out is exact there (|o| <= 2^15, so at
 * most 2^30) and so is the sum with |bias_out| < 2^30, while the general routine takes a 64-bit shift and
 * multiply (helper calls costing thousands of cycles per output on the MSP430). */
/* u * 2^n mod 2^32 for 0 <= n <= 31. On the MSP430 one ADD/ADDC pair per bit: clang 14 rebuilds the carry
 * of a 32-bit doubling with a 15-bit shift sequence (~15 instructions per bit). */
static inline uint32_t bl_lea_shl32(uint32_t u, uint16_t n) {
#if defined(__MSP430__)
  uint16_t lo = (uint16_t)u, hi = (uint16_t)(u >> 16);
  if (n != 0u) __asm__("1:\n\tadd %0, %0\n\taddc %1, %1\n\tdec %2\n\tjnz 1b" : "+r"(lo), "+r"(hi), "+r"(n));
  return ((uint32_t)hi << 16) | lo;
#else
  return n < 32u ? u << n : 0u;
#endif
}

/* sat16(v) in word operations: v fits int16 when its high word is the sign extension of its low word. */
static inline int16_t bl_lea_sat16(int32_t v) {
  const uint16_t lo = (uint16_t)v, hi = (uint16_t)((uint32_t)v >> 16);
  if (hi == ((lo & 0x8000u) ? 0xFFFFu : 0u)) return (int16_t)lo;
  return (hi & 0x8000u) ? INT16_MIN : INT16_MAX;
}

static inline int16_t bl_lea_finish(int16_t o, int16_t shift_out, int32_t bias_out) {
  const uint16_t bias_hi = (uint16_t)((uint32_t)bias_out >> 16);
  /* -2^30 <= bias_out < 2^30 (high word outside 0x4000 .. 0xBFFF) and -15 <= shift_out <= 0 */
  if (shift_out <= 0 && shift_out >= -15 && (bias_hi < 0x4000u || bias_hi >= 0xC000u)) {
    const int32_t v = (int32_t)bl_lea_shl32((uint32_t)(int32_t)o, (uint16_t)-shift_out); /* exact: |o| 2^15 */
    return bl_lea_sat16(v + bias_out);
  }
  return bl_ref_finish(o, shift_out, bias_out);
}

/* The spec's wrap32 (bl_wrap_s32) inline: u - 2^32 when its top bit is set, spelled without a conversion
 * of an out-of-range value. */
static inline int32_t bl_lea_wrap(uint32_t u) {
  if (!((uint16_t)(u >> 16) & 0x8000u)) return (int32_t)u;
  return -(int32_t)(~u) - 1;
}


/* 2^n for n = 0 .. 31: a variable 32-bit shift is a helper looping per bit on the MSP430 (fft_q15.c). */
extern const uint32_t bl_lea_pow2[32];

/* floor(h / 2^n) for int16 h, 0 <= n <= 15, without a right shift of a negative value. */
static inline int16_t bl_lea_asr16(int16_t h, uint16_t n) {
  uint16_t u = (uint16_t)((uint16_t)h ^ 0x8000u); /* h + 32768: floor commutes with the bias */
  for (; n != 0u; n--) u = (uint16_t)((u >> 1) + 0x4000u);
  return (int16_t)(u ^ 0x8000u);
}

/* The spec's requantisation sat16(rshift_round(acc, s)) = sat16(floor((acc + 2^(s-1)) / 2^s)) for
 * 1 <= s <= 31 (bl_requant_s32) in word operations: t = acc + 2^(s-1) (an acc that could overflow
 * takes the general routine). s >= 16: floor(t / 2^16) is t's high word, then an arithmetic shift by s - 16
 * (the result fits int16). s < 16: saturate when |t| reaches 2^(15+s); else t * 2^(16-s) fits int32 and
 * its high word is floor(t / 2^s). Replaces a 32-bit shift loop of ~s steps per value. */
static inline int16_t bl_lea_requant(int32_t acc, int16_t s) {
  const uint16_t acc_hi = (uint16_t)((uint32_t)acc >> 16);
  /* acc >= 2^30 could overflow when the rounding half (<= 2^30) is added: the general routine */
  if (s < 1 || s > 31 || (acc_hi >= 0x4000u && acc_hi < 0x8000u)) return bl_requant_s32(acc, s);
  const uint32_t t = (uint32_t)acc + bl_lea_pow2[s - 1];
  const uint16_t hi = (uint16_t)(t >> 16);
  if (s >= 16) return bl_lea_asr16((int16_t)hi, (uint16_t)(s - 16));
  /* |t| < 2^(15+s) <=> -2^(s-1) <= high word < 2^(s-1) (2^(15+s) has a zero low word) */
  const int16_t p = (int16_t)(uint16_t)bl_lea_pow2[s - 1];
  if ((int16_t)hi >= p) return INT16_MAX;
  if ((int16_t)hi < -p) return INT16_MIN;
  return (int16_t)(uint16_t)(bl_lea_shl32(t, (uint16_t)(16 - s)) >> 16);
}

/* The spec's requantisation of a bin, sat16(rshift_round(acc, s)), taken straight from the LEA's even MAC
 * result r = 2 * acc (no halving): floor((acc + 2^(s-1)) / 2^s) = floor((r + 2^s) / 2^(s+1)). Per call the
 * constants: u = r + 2^s; with S = s + 1 < 16 the result saturates when u's high word leaves
 * [-2^(S-1), 2^(S-1)) (2^(15+S) has a zero low word), else it is the high word of u * 2^(16-S); S = 16: the
 * high word itself. For 1 <= s <= 15 and |r| < 0x7FFF0000 (a MAC result not at a bound: no overflow;
 * linear.c and conv.c). */
typedef struct {
  uint16_t half; /* 2^s */
  uint16_t n;    /* 16 - S = 15 - s: left shifts */
  int16_t p;     /* 2^(S-1) = 2^s (s <= 14) */
} rq_t;

static inline int rq_init(rq_t *q, int16_t s) {
  if (s < 1 || s > 15) return 0;
  q->half = (uint16_t)(1u << s);
  q->n = (uint16_t)(15 - s);
  q->p = (int16_t)(s <= 14 ? (int16_t)(1 << s) : 0);
  return 1;
}

static inline int16_t rq_iq31(int32_t r, const rq_t *q) {
  const uint32_t u = (uint32_t)r + q->half;
  const int16_t hi = (int16_t)(uint16_t)(u >> 16);
  if (q->n == 0u) return hi;
  if (hi >= q->p) return INT16_MAX;
  if (hi < (int16_t)-q->p) return INT16_MIN;
  return (int16_t)(uint16_t)(bl_lea_shl32(u, q->n) >> 16);
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

/* Layer residency (MSP430 LEA driver only): the FFT path's block rows read a layer's input spectra from
 * bl_lea_xt and its whole weight spectra from bl_lea_st, copied there by DMA once per layer instead of once
 * per block row. bl_lea_res_x / bl_lea_res_w name what the areas hold (the xs buffer / the spectra array,
 * with their lengths in int16; 0: nothing). They live in SRAM (.bss) as LEA RAM does, so a reset or power
 * cut forgets both together and the next block row stages again (FLEX resumes re-stage). Every other user
 * of bl_lea_xt / bl_lea_st, and every writer of an xs buffer, drops them first (bl_lea_res_drop). */
#if MSP_HAVE_CMAC_MANY
extern const int16_t *bl_lea_res_x, *bl_lea_res_w;
extern uint16_t bl_lea_res_x_n, bl_lea_res_w_n;
static inline void bl_lea_res_drop(void) {
  bl_lea_res_x = 0;
  bl_lea_res_w = 0;
}
#else
static inline void bl_lea_res_drop(void) {}
#endif

/* Real dot product accumulator: push (x, w) pairs into bl_lea_xt / bl_lea_st; each full area is flushed
 * through one msp_mac_q15 (exact: see the top of this file). */
typedef struct {
  uint32_t acc; /* wrapping sum so far */
  uint16_t n;   /* pairs staged */
} bl_lea_dot;

bl_status bl_lea_dot_flush(bl_lea_dot *d);
/* MSP430: around a direct kernel's rows, the flushes' MAC prepared once (bl_lea_mac_begin): begin before the
 * first flush, end on every way out (the parameter block is on the LEA stack). Elsewhere no-ops. */
#if MSP_HAVE_CMAC_MANY
extern int bl_lea_dot_ready;
void bl_lea_dot_begin(void);
void bl_lea_dot_end(void);
#else
static inline void bl_lea_dot_begin(void) {}
static inline void bl_lea_dot_end(void) {}
#endif
static inline bl_status bl_lea_dot_push(bl_lea_dot *d, int16_t x, int16_t w) {
  bl_lea_xt[d->n] = x;
  bl_lea_st[d->n] = w;
  d->n++;
  return d->n == BL_LEA_AREA ? bl_lea_dot_flush(d) : BL_OK;
}

/* FFT path, frequency-domain MAC: P[f] = wrap32(sum_e X_e[f] * S_e[f]) for the bins f0 .. f0 + bins - 1,
 * over elements e (input blocks, and taps for convolutions). Element e's bins are staged transposed, bin
 * f0 + b of element e at complex index b * cap + e of bl_lea_xt (spectra) and bl_lea_st (weights), so that
 * each bin is one contiguous vector and one msp_cmplx_mac_q15 per bin sums every staged element. Bins 0 and
 * k/2 are real; they are staged with a zero imaginary part (their products' imaginary sum is then 0, as in
 * the spec). cap = elements per flush, even, (BL_LEA_AREA / 2) / bins. */
typedef struct {
  uint16_t k, f0, bins, cap, n;
} bl_lea_bins;
/* The bins' wrapping sums, re / im of bin f0 + b at [2b] / [2b + 1]: in the LEA-RAM scratch (fft_q15.c), not
 * on the stack, which is ~300 bytes in the larger models' images. */
extern uint32_t bl_lea_acc[2u * BL_LEA_BINS_MAX];

void bl_lea_bins_init(bl_lea_bins *a, uint16_t k, uint16_t f0);
bl_status bl_lea_bins_flush(bl_lea_bins *a);
/* Stage one element: x / s point at packed spectra (docs/numeric-spec.md) whose slots are xs / ss int16
 * apart (1 for a linear layer's blocks, the feature-map size for a convolution's). */
bl_status bl_lea_bins_push(bl_lea_bins *a, const int16_t *x, size_t xs, const int16_t *s, size_t ss);

#endif /* BL_LEA_INTERNAL_H */
