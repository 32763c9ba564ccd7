/* cmsis backend: linear layers.
 *
 * Direct paths (dense and block-circulant, int16 and int8 weights) use CMSIS-DSP's arm_dot_prod_q15: it
 * accumulates the exact int16 x int16 products in 64 bits (SMLALD on the M4) and returns the exact sum,
 * whose low 32 bits are the spec's wrap32 accumulator, so these paths are bit-exact with the spec. int8
 * weights are widened with arm_q7_to_q15 (value * 256), which makes the exact sum 256 times larger; it is
 * divided back exactly. A block-circulant row is a dot product of the stored vector w[i][j][0..k) with the
 * input block read backwards circularly: sum_m w[m] x[j*k + (rr - m) mod k]; the input block, reversed and
 * doubled (R[t] = x[j*k + (-t mod k)], t < 2k), holds that sequence contiguously at R + k - rr.
 *
 * FFT path: the ref backend's code (compiled below with its direct-path entry points renamed to
 * bl_ref_*; they serve as the fallback for blocks too large for the stack buffers). It calls bl_fft_q15,
 * which in this backend is CMSIS-DSP's arm_cfft_q15 (fft_q15.c). The frequency-domain complex MAC stays
 * plain C: arm_cmplx_mult_cmplx_q15 shifts each product right by 17 with saturation and
 * arm_cmplx_dot_prod_q15 returns 8.24 (sum >> 6), neither of which is the spec's wrapping 32-bit sum. */
#include "arm_math.h"
#include "bl_kernels.h"

#define bl_linear_dense_w16 bl_ref_linear_dense_w16
#define bl_linear_dense_w8 bl_ref_linear_dense_w8
#define bl_linear_circ_w16 bl_ref_linear_circ_w16
#define bl_linear_circ_w8 bl_ref_linear_circ_w8
#include "../ref/linear.c"
#undef bl_linear_dense_w16
#undef bl_linear_dense_w8
#undef bl_linear_circ_w16
#undef bl_linear_circ_w8

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

#define BL_CMSIS_CHUNK 64u        /* int8 weights widened per call to arm_dot_prod_q15 (stack) */
#define BL_CMSIS_CIRC_MAX_K 128u  /* larger circulant blocks use the ref code */
#define BL_CMSIS_ROW_GROUP 16u    /* circulant rows accumulated together per input block */

/* low 32 bits of an exact 64-bit sum: the spec's wrap32 */
static uint32_t low32(q63_t s) { return (uint32_t)(uint64_t)s; }

/* sum_c w8[c] x[c] exactly (mod 2^32), w8 widened in chunks; arm_q7_to_q15 gives w * 256 */
static uint32_t dot_w8(const int8_t *w, const int16_t *x, uint32_t n) {
  q15_t wide[BL_CMSIS_CHUNK];
  uint32_t acc = 0;
  for (uint32_t c0 = 0; c0 < n; c0 += BL_CMSIS_CHUNK) {
    const uint32_t len = n - c0 < BL_CMSIS_CHUNK ? n - c0 : BL_CMSIS_CHUNK;
    q63_t s;
    arm_q7_to_q15(w + c0, wide, len);
    arm_dot_prod_q15(wide, x + c0, len, &s);
    acc += low32(s / 256); /* exact: s is a multiple of 256 */
  }
  return acc;
}

static bl_status dense(const int16_t *x, uint16_t in_features, const int16_t *w16, const int8_t *w8,
                       const int32_t *bias, int16_t shift, int16_t *y, uint16_t out_features, uint16_t r0,
                       uint16_t r1) {
  if (x == 0 || y == 0 || (w16 == 0 && w8 == 0)) return BL_ERR_ARG;
  if (in_features == 0 || out_features == 0) return BL_ERR_SHAPE;
  if (r0 >= r1 || r1 > out_features) return BL_ERR_ARG;
  for (uint16_t r = r0; r < r1; r++) {
    const uint32_t row = (uint32_t)r * in_features;
    uint32_t acc;
    if (w16 != 0) {
      q63_t s;
      arm_dot_prod_q15(w16 + row, x, in_features, &s);
      acc = low32(s);
    } else {
      acc = dot_w8(w8 + row, x, in_features);
    }
    if (bias != 0) acc += (uint32_t)bias[r];
    y[r] = bl_requant_s32(bl_wrap_s32(acc), shift);
  }
  return BL_OK;
}

static bl_status circ(const int16_t *x, uint16_t in_features, const int16_t *w16, const int8_t *w8, uint16_t k,
                      const int32_t *bias, int16_t shift, int16_t *y, uint16_t out_features, uint16_t r0,
                      uint16_t r1) {
  if (x == 0 || y == 0 || (w16 == 0 && w8 == 0)) return BL_ERR_ARG;
  if (in_features == 0 || out_features == 0 || k == 0) return BL_ERR_SHAPE;
  if (r0 >= r1 || r1 > out_features) return BL_ERR_ARG;
  const uint32_t q = ((uint32_t)in_features + k - 1u) / k;
  q15_t rev[2u * BL_CMSIS_CIRC_MAX_K];
  q15_t wide[BL_CMSIS_CIRC_MAX_K];
  uint32_t acc[BL_CMSIS_ROW_GROUP];
  uint16_t g0 = r0;
  while (g0 < r1) {
    /* a group: rows of one block i, at most BL_CMSIS_ROW_GROUP of them */
    const uint16_t i = (uint16_t)(g0 / k);
    uint32_t g1 = (uint32_t)(i + 1u) * k;
    if (g1 > r1) g1 = r1;
    if (g1 - g0 > BL_CMSIS_ROW_GROUP) g1 = (uint32_t)g0 + BL_CMSIS_ROW_GROUP;
    for (uint32_t r = g0; r < g1; r++) acc[r - g0] = 0;
    for (uint32_t j = 0; j < q; j++) {
      /* R[t] = x[j*k + (-t mod k)] for t < 2k, zero beyond in_features (padded columns) */
      for (uint32_t t = 0; t < 2u * k; t++) {
        const uint32_t c = j * k + (k - t % k) % k;
        rev[t] = c < in_features ? x[c] : 0;
      }
      const uint32_t base = ((uint32_t)i * q + j) * k;
      const q15_t *wv = w16 != 0 ? w16 + base : wide;
      if (w16 == 0) arm_q7_to_q15(w8 + base, wide, k);
      for (uint32_t r = g0; r < g1; r++) {
        const uint32_t rr = r % k;
        q63_t s;
        arm_dot_prod_q15(wv, rev + k - rr, k, &s);
        acc[r - g0] += low32(w16 != 0 ? s : s / 256);
      }
    }
    for (uint32_t r = g0; r < g1; r++) {
      uint32_t a = acc[r - g0];
      if (bias != 0) a += (uint32_t)bias[r];
      y[r] = bl_requant_s32(bl_wrap_s32(a), shift);
    }
    g0 = (uint16_t)g1;
  }
  return BL_OK;
}

bl_status bl_linear_dense_w16(const int16_t *x, uint16_t in_features, const int16_t *w, const int32_t *bias,
                              int16_t shift, int16_t *y, uint16_t out_features, uint16_t r0, uint16_t r1) {
  if (w == 0) return BL_ERR_ARG;
  return dense(x, in_features, w, 0, bias, shift, y, out_features, r0, r1);
}

bl_status bl_linear_dense_w8(const int16_t *x, uint16_t in_features, const int8_t *w, const int32_t *bias,
                             int16_t shift, int16_t *y, uint16_t out_features, uint16_t r0, uint16_t r1) {
  if (w == 0) return BL_ERR_ARG;
  return dense(x, in_features, 0, w, bias, shift, y, out_features, r0, r1);
}

bl_status bl_linear_circ_w16(const int16_t *x, uint16_t in_features, const int16_t *w, uint16_t k,
                             const int32_t *bias, int16_t shift, int16_t *y, uint16_t out_features, uint16_t r0,
                             uint16_t r1) {
  if (w == 0) return BL_ERR_ARG;
  if (k > BL_CMSIS_CIRC_MAX_K)
    return bl_ref_linear_circ_w16(x, in_features, w, k, bias, shift, y, out_features, r0, r1);
  return circ(x, in_features, w, 0, k, bias, shift, y, out_features, r0, r1);
}

bl_status bl_linear_circ_w8(const int16_t *x, uint16_t in_features, const int8_t *w, uint16_t k,
                            const int32_t *bias, int16_t shift, int16_t *y, uint16_t out_features, uint16_t r0,
                            uint16_t r1) {
  if (w == 0) return BL_ERR_ARG;
  if (k > BL_CMSIS_CIRC_MAX_K)
    return bl_ref_linear_circ_w8(x, in_features, w, k, bias, shift, y, out_features, r0, r1);
  return circ(x, in_features, 0, w, k, bias, shift, y, out_features, r0, r1);
}
