/* cmsis backend: the resumable direct-path step (bl_kernels.h, mac_step.c). For now the portable ref code;
 * the cmsis-specific inner loop (the channel loop of one output) goes here, keeping the unit, the partial
 * layout and the last-step rule of the API. */
#include "../ref/mac_step.c"
