/* lea backend: conv1d / conv2d (docs/numeric-spec.md, "direct path (convolutions)" and "Convolution, FFT
 * path"). Direct paths: one msp_mac_q15 dot product (staged in LEA RAM, bl_lea_internal.h) per
 * output element over the taps that fall inside the input (zero padding contributes nothing). FFT path: the
 * channel-block spectra with msp_cmplx_fft_fixed_q15, the frequency MAC over blocks and taps as one
 * msp_cmplx_mac_q15 per bin (bl_lea_bins), the inverse with msp_cmplx_ifft_fixed_q15; bookkeeping on the
 * CPU (ref helpers). */
#include "bl_kernels.h"
#include "bl_lea_internal.h"

bl_status bl_conv_geom_check(const bl_conv_geom *g) { return bl_ref_conv_geom_check(g); }

static bl_status conv_direct(const int16_t *x, const bl_conv_geom *g, const int16_t *w16, const int8_t *w8,
                             uint16_t k, const int32_t *bias, int16_t shift, int16_t *y, uint16_t o0,
                             uint16_t o1, uint16_t oy0, uint16_t oy1) {
  if (x == 0 || y == 0 || (w16 == 0 && w8 == 0)) return BL_ERR_ARG;
  bl_status st = bl_conv_geom_check(g);
  if (st != BL_OK) return st;
  if (k == 0) return BL_ERR_SHAPE;
  if (o0 >= o1 || o1 > g->out_ch || oy0 >= oy1 || oy1 > g->out_h) return BL_ERR_ARG;
  const uint32_t taps = (uint32_t)g->kh * g->kw;
  const uint32_t in_hw = (uint32_t)g->in_h * g->in_w, out_hw = (uint32_t)g->out_h * g->out_w;
  const uint32_t q = bl_lea_blocks(g->in_ch, k);
  for (uint16_t o = o0; o < o1; o++) {
    for (uint16_t oy = oy0; oy < oy1; oy++) {
      for (uint16_t ox = 0; ox < g->out_w; ox++) {
        bl_lea_dot d = {0u, 0u};
        for (uint16_t c = 0; c < g->in_ch && st == BL_OK; c++) {
          uint32_t wbase; /* index of W[o][c][0][0] */
          if (k == 1) {
            wbase = ((uint32_t)o * g->in_ch + c) * taps;
          } else {
            const uint16_t dd = (uint16_t)((o % k + k - c % k) % k);
            wbase = (((uint32_t)(o / k) * q + c / k) * k + dd) * taps;
          }
          for (uint16_t dy = 0; dy < g->kh && st == BL_OK; dy++) {
            const int32_t iy = bl_ref_in_coord(oy, g->sh, dy, g->ph, g->in_h);
            if (iy < 0) continue;
            for (uint16_t dx = 0; dx < g->kw && st == BL_OK; dx++) {
              const int32_t ix = bl_ref_in_coord(ox, g->sw, dx, g->pw, g->in_w);
              if (ix < 0) continue;
              st = bl_lea_dot_push(&d, x[(uint32_t)c * in_hw + (uint32_t)iy * g->in_w + (uint32_t)ix],
                                   bl_ref_weight_at(w16, w8, wbase + (uint32_t)dy * g->kw + dx));
            }
          }
        }
        if (st == BL_OK) st = bl_lea_dot_flush(&d);
        if (st != BL_OK) return st;
        if (bias != 0) d.acc += (uint32_t)bias[o];
        y[(uint32_t)o * out_hw + (uint32_t)oy * g->out_w + ox] = bl_lea_requant(bl_lea_wrap(d.acc), shift);
      }
    }
  }
  return BL_OK;
}

bl_status bl_conv_dense_w16(const int16_t *x, const bl_conv_geom *g, const int16_t *w, const int32_t *bias,
                            int16_t shift, int16_t *y, uint16_t o0, uint16_t o1, uint16_t oy0, uint16_t oy1) {
  if (w == 0) return BL_ERR_ARG;
  return conv_direct(x, g, w, 0, 1, bias, shift, y, o0, o1, oy0, oy1);
}

bl_status bl_conv_dense_w8(const int16_t *x, const bl_conv_geom *g, const int8_t *w, const int32_t *bias,
                           int16_t shift, int16_t *y, uint16_t o0, uint16_t o1, uint16_t oy0, uint16_t oy1) {
  if (w == 0) return BL_ERR_ARG;
  return conv_direct(x, g, 0, w, 1, bias, shift, y, o0, o1, oy0, oy1);
}

bl_status bl_conv_circ_w16(const int16_t *x, const bl_conv_geom *g, const int16_t *w, uint16_t k,
                           const int32_t *bias, int16_t shift, int16_t *y, uint16_t o0, uint16_t o1, uint16_t oy0,
                           uint16_t oy1) {
  if (w == 0) return BL_ERR_ARG;
  return conv_direct(x, g, w, 0, k, bias, shift, y, o0, o1, oy0, oy1);
}

bl_status bl_conv_circ_w8(const int16_t *x, const bl_conv_geom *g, const int8_t *w, uint16_t k,
                          const int32_t *bias, int16_t shift, int16_t *y, uint16_t o0, uint16_t o1, uint16_t oy0,
                          uint16_t oy1) {
  if (w == 0) return BL_ERR_ARG;
  return conv_direct(x, g, 0, w, k, bias, shift, y, o0, o1, oy0, oy1);
}

static bl_status check_cfg(const bl_fft_cfg *cfg) {
  const uint16_t k = cfg->k, t = cfg->tw_k;
  if (cfg->tw == 0) return BL_ERR_ARG;
  if (k < 2u || (k & (uint16_t)(k - 1u)) != 0u || t < k || (t & (uint16_t)(t - 1u)) != 0u) return BL_ERR_FFT_SIZE;
  return BL_OK;
}

bl_status bl_conv_fft_input_q15(const int16_t *x, const bl_conv_geom *g, const bl_fft_cfg *cfg, int16_t *xs,
                                uint16_t y0, uint16_t y1, int16_t *work) {
  if (x == 0 || cfg == 0 || xs == 0 || work == 0) return BL_ERR_ARG;
  bl_status st = bl_conv_geom_check(g);
  if (st != BL_OK) return st;
  const uint16_t k = cfg->k;
  if (k < 2u) return BL_ERR_SHAPE;
  if (y0 >= y1 || y1 > g->in_h) return BL_ERR_ARG;
  st = check_cfg(cfg);
  if (st != BL_OK) return st;
  int16_t *buf = bl_lea_fft_target(k, work);
  const uint32_t hw = (uint32_t)g->in_h * g->in_w;
  const uint32_t q = bl_lea_blocks(g->in_ch, k);
  for (uint16_t yy = y0; yy < y1; yy++) {
    for (uint16_t xx = 0; xx < g->in_w; xx++) {
      const uint32_t pos = (uint32_t)yy * g->in_w + xx;
      for (uint32_t j = 0; j < q; j++) {
        for (uint16_t b = 0; b < k; b++) {
          const uint32_t c = j * k + b;
          buf[2u * b] = c < g->in_ch ? x[c * hw + pos] : 0;
          buf[2u * b + 1u] = 0;
        }
        st = bl_lea_fft_run(buf, cfg, false);
        if (st != BL_OK) return st;
        bl_ref_pack_spectrum(buf, k, xs + j * k * hw + pos, hw);
      }
    }
  }
  return BL_OK;
}

bl_status bl_conv_fft_block_q15(const int16_t *xs, const bl_conv_geom *g, const int16_t *spectra,
                                const bl_fft_cfg *cfg, int16_t shift_z, int16_t shift_out, const int32_t *bias_out,
                                int16_t *y, uint16_t i, uint16_t oy0, uint16_t oy1, int16_t *work) {
  if (xs == 0 || spectra == 0 || cfg == 0 || y == 0 || work == 0) return BL_ERR_ARG;
  bl_status st = bl_conv_geom_check(g);
  if (st != BL_OK) return st;
  const uint16_t k = cfg->k;
  if (k < 2u) return BL_ERR_SHAPE;
  const uint32_t q = bl_lea_blocks(g->in_ch, k);
  const uint32_t p = bl_lea_blocks(g->out_ch, k);
  if (i >= p || oy0 >= oy1 || oy1 > g->out_h) return BL_ERR_ARG;
  st = check_cfg(cfg);
  if (st != BL_OK) return st;
  int16_t *buf = bl_lea_fft_target(k, work);
  const uint32_t taps = (uint32_t)g->kh * g->kw;
  const uint32_t in_hw = (uint32_t)g->in_h * g->in_w, out_hw = (uint32_t)g->out_h * g->out_w;
  for (uint16_t oy = oy0; oy < oy1; oy++) {
    for (uint16_t ox = 0; ox < g->out_w; ox++) {
      for (uint16_t f0 = 0; f0 <= k / 2u; f0 = (uint16_t)(f0 + BL_LEA_BINS_MAX)) {
        bl_lea_bins acc;
        bl_lea_bins_init(&acc, k, f0);
        for (uint32_t j = 0; j < q && st == BL_OK; j++) {
          const int16_t *xj = xs + j * k * in_hw;
          const int16_t *sij = spectra + ((uint32_t)i * q + j) * k * taps;
          for (uint16_t dy = 0; dy < g->kh && st == BL_OK; dy++) {
            const int32_t iy = bl_ref_in_coord(oy, g->sh, dy, g->ph, g->in_h);
            if (iy < 0) continue; /* zero padding: the spectrum of zeros is zero */
            for (uint16_t dx = 0; dx < g->kw && st == BL_OK; dx++) {
              const int32_t ix = bl_ref_in_coord(ox, g->sw, dx, g->pw, g->in_w);
              if (ix < 0) continue;
              st = bl_lea_bins_push(&acc, xj + (uint32_t)iy * g->in_w + (uint32_t)ix, (size_t)in_hw,
                                    sij + (uint32_t)dy * g->kw + dx, (size_t)taps);
            }
          }
        }
        if (st == BL_OK) st = bl_lea_bins_flush(&acc);
        if (st != BL_OK) return st;
        for (uint16_t b = 0; b < acc.bins; b++) {
          bl_ref_store_bin(buf, k, (uint16_t)(f0 + b), bl_lea_requant(bl_lea_wrap(bl_lea_acc[2u * b]), shift_z),
                           bl_lea_requant(bl_lea_wrap(bl_lea_acc[2u * b + 1u]), shift_z));
        }
      }
      bl_ref_hermitian_complete(buf, k);
      st = bl_lea_fft_run(buf, cfg, true);
      if (st != BL_OK) return st;
      for (uint16_t r = 0; r < k; r++) {
        const uint32_t o = (uint32_t)i * k + r;
        if (o >= g->out_ch) break;
        y[o * out_hw + (uint32_t)oy * g->out_w + ox] =
            bl_lea_finish(buf[2u * r], shift_out, bias_out != 0 ? bias_out[o] : 0);
      }
    }
  }
  return BL_OK;
}
