/* cmsis backend: the EVE block-selecting direct-path step (bl_kernels.h, bl_mac_step_sel_*; docs/eve.md).
 * A task that is one whole unit (every input channel, every output position: how codegen emits a mode's
 * direct-path task) of a block-circulant linear layer or convolution runs the backend's own one-pass
 * kernels (linear.c / conv.c: SMLAD on the Cortex-M4, VMLADAVA on the M55) over the blocks the mode uses,
 * so a smaller mode costs less than mode 0 here as it does in the portable code; the outputs it drops are
 * zero-filled, not looped over. Any other unit (a fine-grained step over part of the input channels, a
 * geometry beyond the stack buffers) runs the ref walk with the selection (ref/mac_step.c). Both are exact
 * (modulo 2^32, the spec's wrap32): the same bits whichever runs. */
#include "bl_cmsis_eve.h"

static bool whole_unit(const bl_conv_geom *g, const int32_t *acc_in, const bl_mac_unit *u) {
  return g != 0 && u != 0 && acc_in == 0 && u->c0 == 0 && u->c1 == g->in_ch && u->oy0 == 0 &&
         u->oy1 == g->out_h && u->ox0 == 0 && u->ox1 == g->out_w && u->o0 < u->o1 && u->o1 <= g->out_ch;
}

static bool linear_geom(const bl_conv_geom *g) {
  return g->kh == 1u && g->kw == 1u && g->sh == 1u && g->sw == 1u && g->ph == 0u && g->pw == 0u &&
         g->in_h == 1u && g->in_w == 1u && g->out_h == 1u && g->out_w == 1u;
}

static bl_status fast(const int16_t *x, const bl_conv_geom *g, const int16_t *w16, const int8_t *w8, uint16_t k,
                      const int32_t *acc_in, const int32_t *bias, int16_t shift, int16_t *y, const bl_mac_unit *u,
                      const bl_block_sel *sel) {
  if (x == 0 || y == 0 || sel == 0 || sel->rank == 0 || k < 2u || !whole_unit(g, acc_in, u)) return BL_ERR_SHAPE;
  if (linear_geom(g))
    return bl_cmsis_linear_circ_sel(x, g->in_ch, w16, w8, k, bias, shift, y, g->out_ch, u->o0, u->o1, sel);
  return bl_cmsis_conv_circ_sel(x, g, w16, w8, k, bias, shift, y, u->o0, u->o1, 0u, g->out_h, sel);
}

bl_status bl_mac_step_sel_w16(const int16_t *x, const bl_conv_geom *g, const int16_t *w, uint16_t k,
                              const int32_t *acc_in, int32_t *acc_out, const int32_t *bias, int16_t shift,
                              int16_t *y, const bl_mac_unit *u, const bl_block_sel *sel) {
  if (w == 0) return BL_ERR_ARG;
  if (fast(x, g, w, 0, k, acc_in, bias, shift, y, u, sel) == BL_OK) return BL_OK;
  return bl_mac_step_sel_w16_portable(x, g, w, k, acc_in, acc_out, bias, shift, y, u, sel);
}

bl_status bl_mac_step_sel_w8(const int16_t *x, const bl_conv_geom *g, const int8_t *w, uint16_t k,
                             const int32_t *acc_in, int32_t *acc_out, const int32_t *bias, int16_t shift,
                             int16_t *y, const bl_mac_unit *u, const bl_block_sel *sel) {
  if (w == 0) return BL_ERR_ARG;
  if (fast(x, g, 0, w, k, acc_in, bias, shift, y, u, sel) == BL_OK) return BL_OK;
  return bl_mac_step_sel_w8_portable(x, g, w, k, acc_in, acc_out, bias, shift, y, u, sel);
}
