/* STAND-IN, NOT TI's DSPLib: MSP430 images of the lea backend link against the project's software model of
 * the DSPLib calls (firmware/dsplib/model/), compiled for MSP430, only so that the image links and its size
 * can be measured. It does not drive LEA. A real build links TI's DSPLib (MSP_USE_LEA) instead of this file.
 * Such images are not run: nothing here emulates LEA, and mspdebug's simulator has no LEA. Every call of the
 * stand-in returns MSP_LEA_INCORRECT_REVISION (msp_model.h, MSP_MODEL_GUARD), so a run ends in an error
 * status rather than in numbers LEA never produced. */
#define MSP_MODEL_STANDIN 1
#include <stdint.h>
#include "bl_stand_in.h"
/* The image says so itself (bl_stand_in.h): build warns, flash refuses. Goes with this file. */
BL_STAND_IN(lea_dsplib, "backend lea: a software stand-in for TI's DSPLib that refuses every call (no LEA "
                        "driver yet); build with --backend ref");
volatile uint8_t msp_model_standin_refuse = 1u;
#include "../../../dsplib/model/msp_model_lea.c"
#include "../../../dsplib/model/msp_model_rom.c"
#include "../../../dsplib/model/msp_transform.c"
#include "../../../dsplib/model/msp_vector.c"
