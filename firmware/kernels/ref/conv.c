/* ref backend: conv1d / conv2d (docs/numeric-spec.md, "linear / conv1d / conv2d — direct path" and
 * "Convolution, FFT path"; spec.py linear_or_conv, _fft_path). conv1d is conv2d with H = KH = 1. */
#include "bl_kernels.h"
#include "bl_ref_internal.h"

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
  const uint32_t q = ((uint32_t)g->in_ch + k - 1u) / k;
  for (uint16_t o = o0; o < o1; o++) {
    for (uint16_t oy = oy0; oy < oy1; oy++) {
      /* taps dy0 .. dy1-1 fall inside the input (the rest is zero padding) */
      const int32_t iy0 = (int32_t)oy * g->sh - (int32_t)g->ph;
      const uint16_t dy0 = bl_ref_live_first(iy0, g->kh), dy1 = bl_ref_live_end(iy0, g->kh, g->in_h);
      for (uint16_t ox = 0; ox < g->out_w; ox++) {
        const int32_t ix0 = (int32_t)ox * g->sw - (int32_t)g->pw;
        const uint16_t dx0 = bl_ref_live_first(ix0, g->kw), dx1 = bl_ref_live_end(ix0, g->kw, g->in_w);
        const uint16_t nx = dx1 > dx0 ? (uint16_t)(dx1 - dx0) : 0u;
        const bool live = dy1 > dy0 && nx > 0;
        /* offsets of the first live tap in channel 0's input and in W[o][c] */
        const uint32_t x0 = live ? (uint32_t)(iy0 + dy0) * g->in_w + (uint32_t)(ix0 + dx0) : 0u;
        const uint32_t t0 = live ? (uint32_t)dy0 * g->kw + dx0 : 0u;
        uint32_t acc = 0; /* wrap32 accumulation */
        uint32_t xc = x0;
        for (uint16_t c = 0; live && c < g->in_ch; c++, xc += in_hw) {
          uint32_t wbase; /* index of W[o][c][0][0] */
          if (k == 1) {
            wbase = ((uint32_t)o * g->in_ch + c) * taps;
          } else {
            const uint16_t d = (uint16_t)((o % k + k - c % k) % k);
            wbase = (((uint32_t)(o / k) * q + c / k) * k + d) * taps;
          }
          uint32_t xo = xc, wo = wbase + t0;
          for (uint16_t dy = dy0;;) {
            for (uint16_t dx = 0; dx < nx; dx++)
              acc += (uint32_t)bl_ref_mul16(bl_ref_weight_at(w16, w8, wo + dx), x[xo + dx]);
            if (++dy >= dy1) break;
            xo += g->in_w;
            wo += g->kw;
          }
        }
        if (bias != 0) acc += (uint32_t)bias[o];
        y[(uint32_t)o * out_hw + (uint32_t)oy * g->out_w + ox] = bl_requant_s32(bl_wrap_s32(acc), shift);
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

bl_status bl_conv_fft_input_q15(const int16_t *x, const bl_conv_geom *g, const bl_fft_cfg *cfg, int16_t *xs,
                                uint16_t y0, uint16_t y1, int16_t *work) {
  if (x == 0 || cfg == 0 || xs == 0 || work == 0) return BL_ERR_ARG;
  bl_status st = bl_conv_geom_check(g);
  if (st != BL_OK) return st;
  const uint16_t k = cfg->k;
  if (k < 2u) return BL_ERR_SHAPE;
  if (y0 >= y1 || y1 > g->in_h) return BL_ERR_ARG;
  const uint32_t hw = (uint32_t)g->in_h * g->in_w;
  const uint32_t q = ((uint32_t)g->in_ch + k - 1u) / k;
  for (uint16_t yy = y0; yy < y1; yy++) {
    for (uint16_t xx = 0; xx < g->in_w; xx++) {
      const uint32_t pos = (uint32_t)yy * g->in_w + xx;
      for (uint32_t j = 0; j < q; j++) {
        for (uint16_t b = 0; b < k; b++) {
          const uint32_t c = j * k + b;
          work[2u * b] = c < g->in_ch ? x[c * hw + pos] : 0;
          work[2u * b + 1u] = 0;
        }
        st = bl_fft_q15(work, cfg, false);
        if (st != BL_OK) return st;
        bl_ref_pack_spectrum(work, k, xs + j * k * hw + pos, hw);
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
  const uint32_t q = ((uint32_t)g->in_ch + k - 1u) / k;
  const uint32_t p = ((uint32_t)g->out_ch + k - 1u) / k;
  if (i >= p || oy0 >= oy1 || oy1 > g->out_h) return BL_ERR_ARG;
  const uint32_t taps = (uint32_t)g->kh * g->kw;
  const uint32_t in_hw = (uint32_t)g->in_h * g->in_w, out_hw = (uint32_t)g->out_h * g->out_w;
  const uint32_t x_step = (uint32_t)k * in_hw, s_step = (uint32_t)k * taps; /* from block j to j + 1 */
  const int16_t *s_i = spectra + (uint32_t)i * q * s_step;
  for (uint16_t oy = oy0; oy < oy1; oy++) {
    /* taps dy0 .. dy1-1 fall inside the input (the rest is zero padding: the spectrum of zeros is zero) */
    const int32_t iy0 = (int32_t)oy * g->sh - (int32_t)g->ph;
    const uint16_t dy0 = bl_ref_live_first(iy0, g->kh), dy1 = bl_ref_live_end(iy0, g->kh, g->in_h);
    for (uint16_t ox = 0; ox < g->out_w; ox++) {
      const int32_t ix0 = (int32_t)ox * g->sw - (int32_t)g->pw;
      const uint16_t dx0 = bl_ref_live_first(ix0, g->kw), dx1 = bl_ref_live_end(ix0, g->kw, g->in_w);
      const uint16_t nx = dx1 > dx0 ? (uint16_t)(dx1 - dx0) : 0u;
      const bool live = dy1 > dy0 && nx > 0;
      /* element offsets of the first live tap in a block's input spectra and weight spectra (integer
       * offsets, not pointers stepped past the arrays) */
      const uint32_t x0 = live ? (uint32_t)(iy0 + dy0) * g->in_w + (uint32_t)(ix0 + dx0) : 0u;
      const uint32_t s0 = live ? (uint32_t)dy0 * g->kw + dx0 : 0u;
      for (uint16_t f = 0; f <= k / 2u; f++) {
        uint32_t acc_re = 0, acc_im = 0;
        const uint32_t ir = (uint32_t)bl_ref_slot_re(f, k);
        const bool im = bl_ref_slot_im(f, k) >= 0; /* the imaginary part is the next packed slot */
        uint32_t xo = ir * in_hw + x0, so = ir * taps + s0;
        for (uint32_t j = 0; live && j < q; j++, xo += x_step, so += s_step) {
          const int16_t *xrow = xs + xo, *srow = s_i + so;
          for (uint16_t dy = dy0;;) {
            for (uint16_t dx = 0; dx < nx; dx++)
              bl_ref_cmac(&acc_re, &acc_im, xrow + dx, in_hw, srow + dx, taps, im);
            if (++dy >= dy1) break;
            xrow += g->in_w;
            srow += g->kw;
          }
        }
        bl_ref_store_bin(work, k, f, bl_requant_s32(bl_wrap_s32(acc_re), shift_z),
                         bl_requant_s32(bl_wrap_s32(acc_im), shift_z));
      }
      bl_ref_hermitian_complete(work, k);
      st = bl_fft_q15(work, cfg, true);
      if (st != BL_OK) return st;
      for (uint16_t r = 0; r < k; r++) {
        const uint32_t o = (uint32_t)i * k + r;
        if (o >= g->out_ch) break;
        y[o * out_hw + (uint32_t)oy * g->out_w + ox] =
            bl_ref_finish(work[2u * r], shift_out, bias_out != 0 ? bias_out[o] : 0);
      }
    }
  }
  return BL_OK;
}
