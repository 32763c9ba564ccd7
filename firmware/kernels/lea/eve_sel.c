/* lea backend: the EVE block-selecting direct-path step (bl_kernels.h, bl_mac_step_sel_*; docs/eve.md).
 * A task that is one whole unit (every input channel, every output position: how codegen emits a mode's
 * direct-path task) runs, per block row of its channels the mode keeps, the backend's resident LEA route
 * (conv.c conv_resident, the plain kernels' route: one LEA MAC per (position, channel)) over the input
 * channels of the blocks that row uses — shorter MACs than mode 0's, the unused blocks' terms left out as
 * the spec counts them (zero) — when those blocks are one run of block columns; the channels the mode drops
 * are zero-filled. A block row whose used blocks have a gap or that uses none (its outputs are the bias
 * alone), and any other unit (a fine-grained step over part of the input channels, vectors beyond one LEA
 * operand area) run the ref walk with the selection (ref/mac_step.c). Both are exact (modulo 2^32, the
 * spec's wrap32): the same bits whichever runs. Nothing stays in LEA RAM between calls (FLEX). */
#include "bl_lea_eve.h"

static bl_status portable(const int16_t *x, const bl_conv_geom *g, const int16_t *w16, const int8_t *w8, uint16_t k,
                          const int32_t *acc_in, int32_t *acc_out, const int32_t *bias, int16_t shift, int16_t *y,
                          const bl_mac_unit *u, const bl_block_sel *sel) {
  if (w16 != 0) return bl_mac_step_sel_w16_portable(x, g, w16, k, acc_in, acc_out, bias, shift, y, u, sel);
  return bl_mac_step_sel_w8_portable(x, g, w8, k, acc_in, acc_out, bias, shift, y, u, sel);
}

/* (for size: it runs once per task, its calls' argument lists are most of it) */
#if defined(__clang__)
__attribute__((minsize))
#endif
static bl_status step(const int16_t *x, const bl_conv_geom *g, const int16_t *w16, const int8_t *w8, uint16_t k,
                      const int32_t *acc_in, int32_t *acc_out, const int32_t *bias, int16_t shift, int16_t *y,
                      const bl_mac_unit *u, const bl_block_sel *sel) {
  const bool whole = x != 0 && y != 0 && g != 0 && u != 0 && sel != 0 && sel->rank != 0 && k >= 2u &&
                     acc_in == 0 && u->c0 == 0u && u->c1 == g->in_ch && u->oy0 == 0u && u->oy1 == g->out_h &&
                     u->ox0 == 0u && u->ox1 == g->out_w && u->o0 < u->o1 && u->o1 <= g->out_ch;
  bl_mac_unit r = *u; /* whole: one block row's kept channels at a time; else the unit, portable */
  uint16_t oe = r.o1;
  if (whole && sel->out_rows < oe) oe = sel->out_rows > r.o0 ? sel->out_rows : r.o0;
  const uint16_t q = whole ? (uint16_t)((g->in_ch + k - 1u) / k) : 0u;
  for (uint16_t a = r.o0;; a = r.o1) {
    bl_status st = BL_ERR_SHAPE;
    if (whole) {
      if (a >= oe) break;
      const uint16_t end = (uint16_t)(a - a % k + k);
      const uint16_t *rk = sel->rank + (uint16_t)(a / k * q);
      r.o0 = a;
      r.o1 = end < oe ? end : oe;
      /* the row's used blocks [j0, j1): one run of block columns unless gap */
      uint16_t j0 = q, j1 = 0u, gap = 0u;
      for (uint16_t j = 0; j < q; j++) {
        if (rk[j] >= sel->n) continue;
        if (j1 != 0u && j != j1) gap = 1u;
        if (j0 == q) j0 = j;
        j1 = (uint16_t)(j + 1u);
      }
      const uint16_t c1 = (uint16_t)(j1 * k) < g->in_ch ? (uint16_t)(j1 * k) : g->in_ch;
      if (j0 < j1 && !gap)
        st = bl_lea_conv_circ_win(x, g, w16, w8, k, bias, shift, y, r.o0, r.o1, g->out_h, (uint16_t)(j0 * k), c1);
    }
    if (st == BL_ERR_SHAPE) st = portable(x, g, w16, w8, k, acc_in, acc_out, bias, shift, y, &r, sel);
    if (st != BL_OK || !whole) return st;
  }
  const uint16_t plane = (uint16_t)(g->out_h * g->out_w);
  int16_t *yz = y + (uint32_t)oe * plane; /* the channels the mode drops */
  for (uint32_t n = (uint32_t)(u->o1 - oe) * plane; n != 0u; n--) *yz++ = 0;
  return BL_OK;
}

bl_status bl_mac_step_sel_w16(const int16_t *x, const bl_conv_geom *g, const int16_t *w, uint16_t k,
                              const int32_t *acc_in, int32_t *acc_out, const int32_t *bias, int16_t shift,
                              int16_t *y, const bl_mac_unit *u, const bl_block_sel *sel) {
  if (w == 0) return BL_ERR_ARG;
  return step(x, g, w, 0, k, acc_in, acc_out, bias, shift, y, u, sel);
}

bl_status bl_mac_step_sel_w8(const int16_t *x, const bl_conv_geom *g, const int8_t *w, uint16_t k,
                             const int32_t *acc_in, int32_t *acc_out, const int32_t *bias, int16_t shift,
                             int16_t *y, const bl_mac_unit *u, const bl_block_sel *sel) {
  if (w == 0) return BL_ERR_ARG;
  return step(x, g, 0, w, k, acc_in, acc_out, bias, shift, y, u, sel);
}
