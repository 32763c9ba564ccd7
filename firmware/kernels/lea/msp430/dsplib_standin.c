/* STAND-IN, NOT TI's DSPLib: MSP430 images of the lea backend link against the project's software model of
 * the DSPLib calls (firmware/dsplib/model/), compiled for MSP430, only so that the image links and its size
 * can be measured. It does not drive LEA. A real build links TI's DSPLib (MSP_USE_LEA) instead of this file.
 * Such images are not run: nothing here emulates LEA, and mspdebug's simulator has no LEA. */
#include "../../../dsplib/model/msp_model_lea.c"
#include "../../../dsplib/model/msp_model_rom.c"
#include "../../../dsplib/model/msp_transform.c"
#include "../../../dsplib/model/msp_vector.c"
