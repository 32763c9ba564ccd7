/* lea backend: the resumable direct-path step (bl_kernels.h, mac_step.c). For now the portable ref code;
 * the lea-specific inner loop (the channel loop of one output) goes here, keeping the unit, the partial
 * layout and the last-step rule of the API. */
/* EVE's block-selecting steps in their compact form (ref/mac_walk.inc): with the LEA driver and the FFT
 * kernels an image has ~1.3 KB less code space than the ref backend's, which the fast form would overflow */
#define BL_REF_SEL_COMPACT 1
#include "../ref/mac_step.c"
