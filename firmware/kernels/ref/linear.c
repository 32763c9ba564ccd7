/* ref backend: linear layers (docs/numeric-spec.md, "linear / conv1d / conv2d — direct path" and
 * "linear / conv — FFT path"; spec.py linear_or_conv, _fft_path, _inverse_and_finish, _finish_bias). */
#include "bl_kernels.h"
#include "bl_ref_internal.h"

/* Weight element reader: exactly one of w16 / w8 is non-NULL (int8 weights are used as int16). */
static bl_status linear_direct(const int16_t *x, uint16_t in_features, const int16_t *w16, const int8_t *w8,
                               uint16_t k, const int32_t *bias, int16_t shift, int16_t *y,
                               uint16_t out_features, uint16_t r0, uint16_t r1) {
  if (x == 0 || y == 0 || (w16 == 0 && w8 == 0)) return BL_ERR_ARG;
  if (in_features == 0 || out_features == 0 || k == 0) return BL_ERR_SHAPE;
  if (r0 >= r1 || r1 > out_features) return BL_ERR_ARG;
  const uint32_t q = ((uint32_t)in_features + k - 1u) / k;
  for (uint16_t r = r0; r < r1; r++) {
    uint32_t acc = 0; /* wrap32 accumulation */
    if (k == 1) {
      const uint32_t row = (uint32_t)r * in_features;
      for (uint16_t c = 0; c < in_features; c++)
        acc += (uint32_t)bl_ref_mul16(bl_ref_weight_at(w16, w8, row + c), x[c]);
    } else {
      /* W[i*k + rr][j*k + cc] = w[i][j][(rr - cc) mod k]: d steps down from rr, wrapping, with cc */
      const uint16_t i = (uint16_t)(r / k), rr = (uint16_t)(r % k);
      for (uint32_t j = 0; j < q; j++) {
        const uint32_t base = ((uint32_t)i * q + j) * k;
        uint16_t d = rr;
        for (uint16_t cc = 0; cc < k; cc++) {
          const uint32_t c = j * k + cc;
          if (c >= in_features) break;
          acc += (uint32_t)bl_ref_mul16(bl_ref_weight_at(w16, w8, base + d), x[c]);
          d = d == 0 ? (uint16_t)(k - 1u) : (uint16_t)(d - 1u);
        }
      }
    }
    if (bias != 0) acc += (uint32_t)bias[r];
    y[r] = bl_requant_s32(bl_wrap_s32(acc), shift);
  }
  return BL_OK;
}

bl_status bl_linear_dense_w16(const int16_t *x, uint16_t in_features, const int16_t *w, const int32_t *bias,
                              int16_t shift, int16_t *y, uint16_t out_features, uint16_t r0, uint16_t r1) {
  if (w == 0) return BL_ERR_ARG;
  return linear_direct(x, in_features, w, 0, 1, bias, shift, y, out_features, r0, r1);
}

bl_status bl_linear_dense_w8(const int16_t *x, uint16_t in_features, const int8_t *w, const int32_t *bias,
                             int16_t shift, int16_t *y, uint16_t out_features, uint16_t r0, uint16_t r1) {
  if (w == 0) return BL_ERR_ARG;
  return linear_direct(x, in_features, 0, w, 1, bias, shift, y, out_features, r0, r1);
}

bl_status bl_linear_circ_w16(const int16_t *x, uint16_t in_features, const int16_t *w, uint16_t k,
                             const int32_t *bias, int16_t shift, int16_t *y, uint16_t out_features, uint16_t r0,
                             uint16_t r1) {
  if (w == 0) return BL_ERR_ARG;
  return linear_direct(x, in_features, w, 0, k, bias, shift, y, out_features, r0, r1);
}

bl_status bl_linear_circ_w8(const int16_t *x, uint16_t in_features, const int8_t *w, uint16_t k,
                            const int32_t *bias, int16_t shift, int16_t *y, uint16_t out_features, uint16_t r0,
                            uint16_t r1) {
  if (w == 0) return BL_ERR_ARG;
  return linear_direct(x, in_features, 0, w, k, bias, shift, y, out_features, r0, r1);
}

bl_status bl_linear_fft_input_q15(const int16_t *x, uint16_t in_features, const bl_fft_cfg *cfg, int16_t *xs,
                                  uint16_t j0, uint16_t j1, int16_t *work) {
  if (x == 0 || cfg == 0 || xs == 0 || work == 0) return BL_ERR_ARG;
  const uint16_t k = cfg->k;
  if (k < 2u || in_features == 0) return BL_ERR_SHAPE;
  const uint32_t q = ((uint32_t)in_features + k - 1u) / k;
  if (j0 >= j1 || j1 > q) return BL_ERR_ARG;
  for (uint16_t j = j0; j < j1; j++) {
    for (uint16_t b = 0; b < k; b++) {
      const uint32_t c = (uint32_t)j * k + b;
      work[2u * b] = c < in_features ? x[c] : 0;
      work[2u * b + 1u] = 0;
    }
    bl_status st = bl_fft_q15(work, cfg, false);
    if (st != BL_OK) return st;
    bl_ref_pack_spectrum(work, k, xs + (uint32_t)j * k, 1u);
  }
  return BL_OK;
}

/* Block row i of bl_linear_fft_block_q15 (q input blocks; i < p checked by the caller). */
static bl_status fft_block_row(const int16_t *xs, uint32_t q, const int16_t *spectra, const bl_fft_cfg *cfg,
                               int16_t shift_z, int16_t shift_out, const int32_t *bias_out, int16_t *y,
                               uint16_t out_features, uint16_t i, int16_t *work) {
  const uint16_t k = cfg->k;
  /* P_i[f] = sum_j X_j[f] S_ij[f] for each packed slot, requantised into the packed spectrum in work */
  const int16_t *s_i = spectra + (uint32_t)i * q * k;
  for (uint16_t f = 0; f <= k / 2u; f++) {
    uint32_t acc_re = 0, acc_im = 0;
    const uint16_t ir = (uint16_t)bl_ref_slot_re(f, k);
    const bool im = bl_ref_slot_im(f, k) >= 0; /* the imaginary part follows the real one */
    uint32_t o = ir; /* element offset of the bin in block j (an offset: no pointer past the arrays) */
    for (uint32_t j = 0; j < q; j++, o += k) bl_ref_cmac(&acc_re, &acc_im, xs + o, 1u, s_i + o, 1u, im);
    bl_ref_store_bin(work, k, f, bl_requant_s32(bl_wrap_s32(acc_re), shift_z),
                     bl_requant_s32(bl_wrap_s32(acc_im), shift_z));
  }
  bl_ref_hermitian_complete(work, k);
  bl_status st = bl_fft_q15(work, cfg, true);
  if (st != BL_OK) return st;
  for (uint16_t r = 0; r < k; r++) {
    const uint32_t row = (uint32_t)i * k + r;
    if (row >= out_features) break;
    y[row] = bl_ref_finish(work[2u * r], shift_out, bias_out != 0 ? bias_out[row] : 0);
  }
  return BL_OK;
}

bl_status bl_linear_fft_block_q15(const int16_t *xs, uint16_t in_features, const int16_t *spectra,
                                  const bl_fft_cfg *cfg, int16_t shift_z, int16_t shift_out,
                                  const int32_t *bias_out, int16_t *y, uint16_t out_features, uint16_t i0,
                                  uint16_t i1, int16_t *work) {
  if (xs == 0 || spectra == 0 || cfg == 0 || y == 0 || work == 0) return BL_ERR_ARG;
  const uint16_t k = cfg->k;
  if (k < 2u || in_features == 0 || out_features == 0) return BL_ERR_SHAPE;
  const uint32_t q = ((uint32_t)in_features + k - 1u) / k;
  const uint32_t p = ((uint32_t)out_features + k - 1u) / k;
  if (i0 >= i1 || i1 > p) return BL_ERR_ARG;
  for (uint16_t i = i0; i < i1; i++) {
    const bl_status st = fft_block_row(xs, q, spectra, cfg, shift_z, shift_out, bias_out, y, out_features, i, work);
    if (st != BL_OK) return st;
  }
  return BL_OK;
}
