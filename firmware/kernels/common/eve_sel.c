/* EVE modes over one weight store: the FFT path's frequency MAC with a block selection (bl_kernels.h,
 * "kernels/common/eve_sel.c"; docs/eve.md). Portable C11, linked into every backend's image: a backend runs
 * its own FFT kernels for a mode that uses every block, this for a smaller one. The terms are those of the ref
 * backend (ref/conv.c, ref/linear.c, spec.py mode_layer_view): a block the mode does not use adds nothing, so
 * skipping it gives the spec's bits. The direct path's selecting steps (bl_mac_step_sel_*) are the ref walk
 * itself with a selection (ref/mac_step.c), which every backend compiles. */
#include "bl_kernels.h"
#include "ref/bl_ref_internal.h"

static bool geom_ok(const bl_conv_geom *g)
{
  /* the 1x1 geometry of a linear layer is checked without the general check's 32-bit divisions */
  if (g->kh == 1u && g->kw == 1u && g->sh == 1u && g->sw == 1u && g->ph == 0u && g->pw == 0u)
    return g->in_ch != 0 && g->out_ch != 0 && g->in_h != 0 && g->in_w != 0 && g->out_h == g->in_h &&
           g->out_w == g->in_w;
  return bl_ref_conv_geom_check(g) == BL_OK;
}

bl_status bl_conv_fft_block_sel_q15(const int16_t *xs, const bl_conv_geom *g, const int16_t *spectra,
                                    const bl_fft_cfg *cfg, int16_t shift_z, int16_t shift_out,
                                    const int32_t *bias_out, int16_t *y, uint16_t i, uint16_t oy0, uint16_t oy1,
                                    int16_t *work, const bl_block_sel *sel)
{
  if (xs == 0 || spectra == 0 || cfg == 0 || y == 0 || work == 0 || g == 0 || sel == 0 || sel->rank == 0)
    return BL_ERR_ARG;
  if (!geom_ok(g)) return BL_ERR_SHAPE;
  const uint16_t k = cfg->k;
  if (k < 2u) return BL_ERR_SHAPE;
  const uint16_t q = (uint16_t)(g->in_ch / k + (g->in_ch % k != 0u));
  const uint16_t p = (uint16_t)(g->out_ch / k + (g->out_ch % k != 0u));
  if (i >= p || oy0 >= oy1 || oy1 > g->out_h) return BL_ERR_ARG;
  const uint32_t taps = (uint32_t)g->kh * g->kw;
  const uint32_t in_hw = (uint32_t)g->in_h * g->in_w, out_hw = (uint32_t)g->out_h * g->out_w;
  const uint32_t x_step = (uint32_t)k * in_hw, s_step = (uint32_t)k * taps;
  const int16_t *s_i = spectra + (uint32_t)i * q * s_step;
  const uint16_t *rank = sel->rank + (uint32_t)i * q;
  const bool any_row = (uint32_t)i * k < sel->out_rows; /* a block row the mode drops is all zeros */
  bool any_block = false; /* a kept row whose blocks the mode all skips: its spectrum is 0, so is the IFFT */
  for (uint16_t j = 0; any_row && !any_block && j < q; j++) any_block = rank[j] < sel->n;
  const uint16_t r_end = (uint16_t)(g->out_ch - i * k < k ? g->out_ch - i * k : k); /* rows of block i */
  const uint16_t left = any_row ? (uint16_t)(sel->out_rows - i * k) : 0u; /* rows kept from row i*k on */
  const uint16_t r_kept = left < r_end ? left : r_end;
  if (taps == 1u && in_hw == 1u && out_hw == 1u) {
    /* linear: xs[q][k], spectra[p][q][k], one output block of rows (as ref/linear.c) */
    int16_t *yi = y + (uint32_t)i * k;
    if (r_kept > 0u && !any_block) {
      for (uint16_t b = 0; b < 2u * k; b++) work[b] = 0;
    } else if (r_kept > 0u) {
      for (uint16_t f = 0; f <= k / 2u; f++) {
        uint32_t acc_re = 0, acc_im = 0;
        const uint16_t ir = (uint16_t)bl_ref_slot_re(f, k);
        const bool im = bl_ref_slot_im(f, k) >= 0;
        const int16_t *xo = xs + ir, *so = s_i + ir;
        for (uint16_t j = 0; j < q; j++, xo += k, so += k) {
          if (rank[j] < sel->n) bl_ref_cmac(&acc_re, &acc_im, xo, 1u, so, 1u, im);
        }
        bl_ref_store_bin(work, k, f, bl_requant_s32(bl_wrap_s32(acc_re), shift_z),
                         bl_requant_s32(bl_wrap_s32(acc_im), shift_z));
      }
      bl_ref_hermitian_complete(work, k);
      bl_status st = bl_fft_q15(work, cfg, true);
      if (st != BL_OK) return st;
    }
    const int32_t *bo = bias_out != 0 ? bias_out + (uint32_t)i * k : 0;
    for (uint16_t r = 0; r < r_end; r++) {
      yi[r] = r < r_kept ? bl_ref_finish(work[2u * r], shift_out, bo != 0 ? bo[r] : 0) : 0;
    }
    return BL_OK;
  }
  for (uint16_t oy = oy0; oy < oy1; oy++) {
    const int32_t iy0 = (int32_t)oy * g->sh - (int32_t)g->ph;
    const uint16_t dy0 = bl_ref_live_first(iy0, g->kh), dy1 = bl_ref_live_end(iy0, g->kh, g->in_h);
    for (uint16_t ox = 0; ox < g->out_w; ox++) {
      const int32_t ix0 = (int32_t)ox * g->sw - (int32_t)g->pw;
      const uint16_t dx0 = bl_ref_live_first(ix0, g->kw), dx1 = bl_ref_live_end(ix0, g->kw, g->in_w);
      const uint16_t nx = dx1 > dx0 ? (uint16_t)(dx1 - dx0) : 0u;
      const bool live = dy1 > dy0 && nx > 0;
      const uint32_t x0 = live ? (uint32_t)(iy0 + dy0) * g->in_w + (uint32_t)(ix0 + dx0) : 0u;
      const uint32_t s0 = live ? (uint32_t)dy0 * g->kw + dx0 : 0u;
      if (any_row && !any_block) {
        for (uint16_t b = 0; b < 2u * k; b++) work[b] = 0;
      } else if (any_row) {
        for (uint16_t f = 0; f <= k / 2u; f++) {
          uint32_t acc_re = 0, acc_im = 0;
          const uint32_t ir = (uint32_t)bl_ref_slot_re(f, k);
          const bool im = bl_ref_slot_im(f, k) >= 0;
          uint32_t xo = ir * in_hw + x0, so = ir * taps + s0;
          for (uint32_t j = 0; live && j < q; j++, xo += x_step, so += s_step) {
            if (rank[j] >= sel->n) continue; /* a block this mode does not use */
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
        bl_status st = bl_fft_q15(work, cfg, true);
        if (st != BL_OK) return st;
      }
      for (uint16_t r = 0; r < k; r++) {
        const uint32_t o = (uint32_t)i * k + r;
        if (o >= g->out_ch) break;
        y[o * out_hw + (uint32_t)oy * g->out_w + ox] =
            o < sel->out_rows ? bl_ref_finish(work[2u * r], shift_out, bias_out != 0 ? bias_out[o] : 0) : 0;
      }
    }
  }
  return BL_OK;
}
