/* lea backend, EVE modes (docs/eve.md): the block-selecting direct-path step over this backend's LEA route.
 * Internal: lea/eve_sel.c (the bl_mac_step_sel_* entry points of bl_kernels.h) calls the resident route of
 * conv.c over the input channels a block row uses for a whole-unit task and the ref walk with the selection
 * (ref/mac_step.c, compiled in this backend by lea/mac_step.c under the names below) for everything else. */
#ifndef BL_LEA_EVE_H
#define BL_LEA_EVE_H

#include "bl_kernels.h"
#include "../common/bl_sel_portable.h" /* the ref walk with the selection, as *_portable */

/* conv.c: the resident route (conv_resident, the plain kernels' route) of a circulant convolution over
 * output channels [o0, o1), rows [0, oy1), reading input channels [c0, ce) only (c0 a multiple of k; the
 * other channels' terms left out: blocks the caller knows the mode does not use); a linear layer is the 1x1
 * geometry. BL_ERR_SHAPE, nothing written, when the route does not take the call (vectors beyond one LEA
 * operand area). */
bl_status bl_lea_conv_circ_win(const int16_t *x, const bl_conv_geom *g, const int16_t *w16, const int8_t *w8,
                               uint16_t k, const int32_t *bias, int16_t shift, int16_t *y, uint16_t o0, uint16_t o1,
                               uint16_t oy1, uint16_t c0, uint16_t ce);


#endif /* BL_LEA_EVE_H */
