/* cmsis backend, EVE modes (docs/eve.md): the block-selecting kernels over this backend's DSP / MVE loops.
 * Internal: cmsis/eve_sel.c (the bl_mac_step_sel_* entry points of bl_kernels.h) calls the two below for a
 * whole-unit task and the ref walk with the selection (ref/mac_step.c, compiled in this backend by
 * cmsis/mac_step.c under the names below) for everything else: a step over part of the input channels, a
 * geometry the stack buffers do not hold. */
#ifndef BL_CMSIS_EVE_H
#define BL_CMSIS_EVE_H

#include "bl_kernels.h"
#include "../common/bl_sel_portable.h" /* the ref walk with the selection, as *_portable */

/* linear.c / conv.c: the backend's one-pass circulant kernels over the blocks with rank < sel->n, outputs
 * >= sel->out_rows 0; BL_ERR_SHAPE when the unit does not fit their buffers (nothing written then) */
bl_status bl_cmsis_linear_circ_sel(const int16_t *x, uint16_t in_features, const int16_t *w16, const int8_t *w8,
                                   uint16_t k, const int32_t *bias, int16_t shift, int16_t *y, uint16_t out_features,
                                   uint16_t r0, uint16_t r1, const bl_block_sel *sel);
bl_status bl_cmsis_conv_circ_sel(const int16_t *x, const bl_conv_geom *g, const int16_t *w16, const int8_t *w8,
                                 uint16_t k, const int32_t *bias, int16_t shift, int16_t *y, uint16_t o0, uint16_t o1,
                                 uint16_t oy0, uint16_t oy1, const bl_block_sel *sel);


#endif /* BL_CMSIS_EVE_H */
