/* The portable EVE selecting step under the names a backend with its own fast route gives it: ref/mac_step.c's
 * bl_mac_step_sel_w16 / _w8, compiled by that backend's mac_step.c as *_portable, so its eve_sel.c owns the
 * bl_kernels.h entry points and hands every unit its fast route does not take to these (cmsis, lea). */
#ifndef BL_SEL_PORTABLE_H
#define BL_SEL_PORTABLE_H

#include "bl_kernels.h"

bl_status bl_mac_step_sel_w16_portable(const int16_t *x, const bl_conv_geom *g, const int16_t *w, uint16_t k,
                                       const int32_t *acc_in, int32_t *acc_out, const int32_t *bias, int16_t shift,
                                       int16_t *y, const bl_mac_unit *u, const bl_block_sel *sel);
bl_status bl_mac_step_sel_w8_portable(const int16_t *x, const bl_conv_geom *g, const int8_t *w, uint16_t k,
                                      const int32_t *acc_in, int32_t *acc_out, const int32_t *bias, int16_t shift,
                                      int16_t *y, const bl_mac_unit *u, const bl_block_sel *sel);

#endif /* BL_SEL_PORTABLE_H */
