/* lea backend: linear layers (docs/numeric-spec.md, "linear — direct path" and "linear — FFT path").
 * Direct paths: one msp_mac_q15 dot product per output row (chunks of BL_LEA_VEC_LEN, int16 weights split
 * hi/lo, see bl_lea_internal.h). FFT path: input blocks transformed with msp_cmplx_fft_fixed_q15, the
 * frequency-domain MAC with msp_cmplx_mac_q15, the output block with msp_cmplx_ifft_fixed_q15; packing,
 * requantisation, Hermitian completion and the final rescale + bias run on the CPU (ref helpers). */
#include "bl_kernels.h"
#include "bl_lea_internal.h"

static bl_status linear_direct(const int16_t *x, uint16_t in_features, const int16_t *w16, const int8_t *w8,
                               uint16_t k, const int32_t *bias, int16_t shift, int16_t *y,
                               uint16_t out_features, uint16_t r0, uint16_t r1) {
  if (x == 0 || y == 0 || (w16 == 0 && w8 == 0)) return BL_ERR_ARG;
  if (in_features == 0 || out_features == 0 || k == 0) return BL_ERR_SHAPE;
  if (r0 >= r1 || r1 > out_features) return BL_ERR_ARG;
  const uint32_t q = bl_lea_blocks(in_features, k);
  for (uint16_t r = r0; r < r1; r++) {
    bl_lea_dot d = {0u, 0u, w16 != 0};
    bl_status st = BL_OK;
    if (k == 1) {
      const uint32_t row = (uint32_t)r * in_features;
      for (uint16_t c = 0; c < in_features && st == BL_OK; c++)
        st = bl_lea_dot_push(&d, x[c], bl_ref_weight_at(w16, w8, row + c));
    } else {
      /* W[i*k + rr][j*k + cc] = w[i][j][(rr - cc) mod k] */
      const uint16_t i = (uint16_t)(r / k), rr = (uint16_t)(r % k);
      for (uint32_t j = 0; j < q && st == BL_OK; j++) {
        const uint32_t base = ((uint32_t)i * q + j) * k;
        uint16_t dd = rr;
        for (uint16_t cc = 0; cc < k && st == BL_OK; cc++) {
          const uint32_t c = j * k + cc;
          if (c >= in_features) break;
          st = bl_lea_dot_push(&d, x[c], bl_ref_weight_at(w16, w8, base + dd));
          dd = dd == 0 ? (uint16_t)(k - 1u) : (uint16_t)(dd - 1u);
        }
      }
    }
    if (st == BL_OK) st = bl_lea_dot_flush(&d);
    if (st != BL_OK) return st;
    if (bias != 0) d.acc += (uint32_t)bias[r];
    y[r] = bl_lea_requant(bl_wrap_s32(d.acc), shift);
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

/* Same argument checks as bl_fft_q15 (the block kernels never call it with the caller's buffer). */
static bl_status check_cfg(const bl_fft_cfg *cfg) {
  const uint16_t k = cfg->k, t = cfg->tw_k;
  if (cfg->tw == 0) return BL_ERR_ARG;
  if (k < 2u || (k & (uint16_t)(k - 1u)) != 0u || t < k || (t & (uint16_t)(t - 1u)) != 0u) return BL_ERR_FFT_SIZE;
  return BL_OK;
}

bl_status bl_linear_fft_input_q15(const int16_t *x, uint16_t in_features, const bl_fft_cfg *cfg, int16_t *xs,
                                  uint16_t j0, uint16_t j1, int16_t *work) {
  if (x == 0 || cfg == 0 || xs == 0 || work == 0) return BL_ERR_ARG;
  const uint16_t k = cfg->k;
  if (k < 2u || in_features == 0) return BL_ERR_SHAPE;
  const uint32_t q = bl_lea_blocks(in_features, k);
  if (j0 >= j1 || j1 > q) return BL_ERR_ARG;
  bl_status st = check_cfg(cfg);
  if (st != BL_OK) return st;
  int16_t *buf = bl_lea_fft_target(k, work);
  for (uint16_t j = j0; j < j1; j++) {
    for (uint16_t b = 0; b < k; b++) {
      const uint32_t c = (uint32_t)j * k + b;
      buf[2u * b] = c < in_features ? x[c] : 0;
      buf[2u * b + 1u] = 0;
    }
    st = bl_lea_fft_run(buf, cfg, false);
    if (st != BL_OK) return st;
    bl_ref_pack_spectrum(buf, k, xs + (uint32_t)j * k, 1u);
  }
  return BL_OK;
}

bl_status bl_linear_fft_block_q15(const int16_t *xs, uint16_t in_features, const int16_t *spectra,
                                  const bl_fft_cfg *cfg, int16_t shift_z, int16_t shift_out,
                                  const int32_t *bias_out, int16_t *y, uint16_t out_features, uint16_t i,
                                  int16_t *work) {
  if (xs == 0 || spectra == 0 || cfg == 0 || y == 0 || work == 0) return BL_ERR_ARG;
  const uint16_t k = cfg->k;
  if (k < 2u || in_features == 0 || out_features == 0) return BL_ERR_SHAPE;
  const uint32_t q = bl_lea_blocks(in_features, k);
  const uint32_t p = bl_lea_blocks(out_features, k);
  if (i >= p) return BL_ERR_ARG;
  bl_status st = check_cfg(cfg);
  if (st != BL_OK) return st;
  int16_t *buf = bl_lea_fft_target(k, work);
  for (uint16_t f = 0; f <= k / 2u; f++) {
    bl_lea_cdot d = {0u, 0u, 0u};
    for (uint32_t j = 0; j < q && st == BL_OK; j++) {
      int16_t xr, xi, sr, si;
      bl_lea_bin(xs + j * k, 1u, f, k, &xr, &xi);
      bl_lea_bin(spectra + ((uint32_t)i * q + j) * k, 1u, f, k, &sr, &si);
      st = bl_lea_cdot_push(&d, xr, xi, sr, si);
    }
    if (st == BL_OK) st = bl_lea_cdot_flush(&d);
    if (st != BL_OK) return st;
    bl_ref_store_bin(buf, k, f, bl_lea_requant(bl_wrap_s32(d.re), shift_z), bl_lea_requant(bl_wrap_s32(d.im), shift_z));
  }
  bl_ref_hermitian_complete(buf, k);
  st = bl_lea_fft_run(buf, cfg, true);
  if (st != BL_OK) return st;
  for (uint16_t r = 0; r < k; r++) {
    const uint32_t row = (uint32_t)i * k + r;
    if (row >= out_features) break;
    y[row] = bl_lea_finish(buf[2u * r], shift_out, bias_out != 0 ? bias_out[row] : 0);
  }
  return BL_OK;
}
