/* lea backend: the resumable direct-path step (bl_kernels.h, mac_step.c). For now the portable ref code;
 * the lea-specific inner loop (the channel loop of one output) goes here, keeping the unit, the partial
 * layout and the last-step rule of the API. The ref walk's block-selecting steps (EVE modes) are compiled
 * under the names of bl_lea_eve.h: lea/eve_sel.c owns bl_mac_step_sel_* and hands them every unit the LEA
 * route does not take. */
/* EVE's block-selecting steps in their compact form (ref/mac_walk.inc): with the LEA driver and the FFT
 * kernels an image has ~1.3 KB less code space than the ref backend's, which the fast form would overflow */
#define BL_REF_SEL_COMPACT 1
#include "bl_lea_eve.h"
#define BL_REF_SEL(name) name##_portable
#include "../ref/mac_step.c"
