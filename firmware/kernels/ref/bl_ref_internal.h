/* ref backend: helpers shared by linear.c and conv.c for the FFT path (packed spectra, the frequency-domain
 * complex MAC, Hermitian completion, the final rescale + bias). Internal: not part of the kernel API. */
#ifndef BL_REF_INTERNAL_H
#define BL_REF_INTERNAL_H

#include "bl_kernels.h"

/* int16 x int16 -> int32, exact. On the MSP430 clang 14 lowers every 32-bit product, even of two
 * sign-extended int16 values, to the 32x32 helper __mspabi_mpyl (three hardware 16x16 multiplies plus the
 * sign extension, ~10x the cost) and never to the 16x16 one, so there the ref kernels call the EABI 16x16
 * -> 32 helper of the project's run time (firmware/platform/msp430/mspabi.c) directly. This is the only
 * target #if of the ref backend: C offers no portable way to make clang 14 emit that multiply. */
/* BL_REF_SOFT_DIVIDE: 1 where integer division is a software routine (the MSP430: ~100+ cycles for 16 bits,
 * more for 32), so the resumable kernels compute quotients by shifts, masks and multiplications instead;
 * where division is an instruction (Cortex-M3 and up) they divide, which takes fewer instructions. */
#if defined(__MSP430__)
#define BL_REF_SOFT_DIVIDE 1
int32_t __mspabi_mpysl_f5hw(int16_t a, int16_t b);
uint32_t __mspabi_mpyul_f5hw(uint16_t a, uint16_t b);
static inline int32_t bl_ref_mul16(int16_t a, int16_t b) { return __mspabi_mpysl_f5hw(a, b); }
static inline uint32_t bl_ref_umul16(uint16_t a, uint16_t b) { return __mspabi_mpyul_f5hw(a, b); }
#else
#define BL_REF_SOFT_DIVIDE 0
static inline int32_t bl_ref_mul16(int16_t a, int16_t b) { return (int32_t)a * (int32_t)b; }
/* uint16 x uint16 -> uint32 (index arithmetic: the 16x16 multiply, not the 32x32 one, on the MSP430) */
static inline uint32_t bl_ref_umul16(uint16_t a, uint16_t b) { return (uint32_t)a * (uint32_t)b; }
#endif

/* Packed slot of bin f's real / imaginary part (f = 0 .. k/2); -1: the part is zero (DC / Nyquist imag). */
static inline int32_t bl_ref_slot_re(uint16_t f, uint16_t k) {
  return f == 0 ? 0 : (f == k / 2u ? 1 : 2 * (int32_t)f);
}
static inline int32_t bl_ref_slot_im(uint16_t f, uint16_t k) {
  return (f == 0 || f == k / 2u) ? -1 : 2 * (int32_t)f + 1;
}

/* Bins 0 .. k/2 of the complex FFT result z (interleaved) -> packed [Re0, Re k/2, Re1, Im1, ...], element b
 * stored at out[b * stride]. The imaginary parts of bins 0 and k/2 are zero for real input (spec). */
static inline void bl_ref_pack_spectrum(const int16_t *z, uint16_t k, int16_t *out, uint32_t stride) {
  out[0] = z[0];
  out[stride] = z[k];
  uint32_t o = 2u * stride; /* an offset, not a pointer stepped past out */
  for (uint16_t f = 1; f < k / 2u; f++, o += 2u * stride) {
    out[o] = z[2u * f];
    out[o + stride] = z[2u * f + 1u];
  }
}

/* acc += X[f] * S[f] (complex), 32-bit wrapping, for one packed bin: x / s point at the bin's real part,
 * its imaginary part is xi / si elements further; im == false for bins 0 and k/2 (imaginary part zero). */
static inline void bl_ref_cmac(uint32_t *acc_re, uint32_t *acc_im, const int16_t *x, uint32_t xi,
                               const int16_t *s, uint32_t si, bool im) {
  const int16_t xr = x[0], sr = s[0];
  if (!im) {
    *acc_re += (uint32_t)bl_ref_mul16(xr, sr);
    return;
  }
  const int16_t xv = x[xi], sv = s[si];
  *acc_re += (uint32_t)bl_ref_mul16(xr, sr) - (uint32_t)bl_ref_mul16(xv, sv);
  *acc_im += (uint32_t)bl_ref_mul16(xr, sv) + (uint32_t)bl_ref_mul16(xv, sr);
}

static inline void bl_ref_store_bin(int16_t *z, uint16_t k, uint16_t f, int16_t re, int16_t im) {
  (void)k;
  z[2u * f] = re;
  z[2u * f + 1u] = im;
}

/* Z[k - f] = conj(Z[f]) for f = 1 .. k/2 - 1; the negation saturates (-(-32768) -> 32767). */
static inline void bl_ref_hermitian_complete(int16_t *z, uint16_t k) {
  for (uint16_t f = 1; f < k / 2u; f++) {
    const uint32_t d = 2u * (uint32_t)(k - f);
    z[d] = z[2u * f];
    z[d + 1u] = bl_sat16_s32(-(int32_t)z[2u * f + 1u]);
  }
}

/* y = sat16(rshift_round(o, shift_out) + bias_out), exact in 64 bits. */
static inline int16_t bl_ref_finish(int16_t o, int16_t shift_out, int32_t bias_out) {
  return bl_sat16_s64(bl_rshift_round_s64(o, shift_out) + (int64_t)bias_out);
}

/* Shared by every backend's conv.c / linear.c (lea and cmsis include this header or the ref file). */
/* Not inline: inlined into every caller it added ~300 bytes to conv.c on the Cortex-M4 for no speed. */
__attribute__((unused)) static bl_status bl_ref_conv_geom_check(const bl_conv_geom *g) {
  if (g == 0) return BL_ERR_ARG;
  if (g->in_ch == 0 || g->out_ch == 0 || g->kh == 0 || g->kw == 0 || g->sh == 0 || g->sw == 0)
    return BL_ERR_SHAPE;
  const uint32_t hp = (uint32_t)g->in_h + 2u * g->ph, wp = (uint32_t)g->in_w + 2u * g->pw;
  if (g->in_h == 0 || g->in_w == 0 || hp < g->kh || wp < g->kw) return BL_ERR_SHAPE;
  if (g->out_h != (hp - g->kh) / g->sh + 1u || g->out_w != (wp - g->kw) / g->sw + 1u) return BL_ERR_SHAPE;
  return BL_OK;
}

/* Weight idx of an int16 (w16 != NULL) or int8 weight array. */
static inline int16_t bl_ref_weight_at(const int16_t *w16, const int8_t *w8, uint32_t idx) {
  return w16 != 0 ? w16[idx] : (int16_t)w8[idx];
}

/* Input coordinate of output coordinate o and tap d, or -1 when it falls in the zero padding. */
static inline int32_t bl_ref_in_coord(uint16_t o, uint16_t stride, uint16_t d, uint16_t pad, uint16_t size) {
  const int32_t v = (int32_t)o * stride + d - (int32_t)pad;
  return (v < 0 || v >= (int32_t)size) ? -1 : v;
}

/* Taps d of a window starting at input coordinate c0 (may be negative: padding) that fall inside [0, size):
 * d in [bl_ref_live_first, bl_ref_live_end); an empty range when end <= first. conv.c and mac_step.c. */
static inline uint16_t bl_ref_live_first(int32_t c0, uint16_t taps) {
  return c0 >= 0 ? 0u : (-c0 < (int32_t)taps ? (uint16_t)-c0 : taps);
}
static inline uint16_t bl_ref_live_end(int32_t c0, uint16_t taps, uint16_t size) {
  const int32_t lim = (int32_t)size - c0;
  return lim <= 0 ? 0u : (lim < (int32_t)taps ? (uint16_t)lim : taps);
}

#endif /* BL_REF_INTERNAL_H */
