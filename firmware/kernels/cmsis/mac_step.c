/* cmsis backend: the resumable direct-path step (bl_kernels.h, mac_step.c). For now the portable ref code;
 * the cmsis-specific inner loop (the channel loop of one output) goes here, keeping the unit, the partial
 * layout and the last-step rule of the API. The ref walk's block-selecting steps (EVE modes) are compiled
 * under the names of bl_cmsis_eve.h: cmsis/eve_sel.c owns bl_mac_step_sel_* and hands them every unit its
 * DSP loops do not take. */
#include "bl_cmsis_eve.h"
#define BL_REF_SEL(name) name##_portable
#include "../ref/mac_step.c"
