/* DSPLib software model — internal header (not part of TI's API).
 *
 * The model stands in for TI's DSPLib + the LEA hardware: it implements exactly the DSPLib calls the `lea`
 * kernels use (../DSPLib.h), with TI's documented argument checks (lengths, alignment, operands in LEA RAM)
 * and, where TI documents no rounding, the numeric spec's arithmetic. It runs on the host (board `host`,
 * backend `lea`), and its transform code is the arithmetic of the LEA emulated by tools/msp430sim (which
 * compiles these files). MSP430 images do not link it: they drive the LEA through
 * firmware/kernels/lea/msp430/bl_lea_driver.c. */
#ifndef MSP_MODEL_H
#define MSP_MODEL_H

#include <stddef.h>
#include <stdint.h>

#include "../DSPLib.h"

/* Largest complex Q15 FFT the model accepts (the FR5994's LEA RAM cannot hold a 1024-point one next to
 * LEA's stack) and the smallest (TI's twiddle tables start at 16 points). */
#define MSP_MODEL_FFT_MIN 16u
#define MSP_MODEL_FFT_MAX 512u

/* Forward twiddles of a MSP_MODEL_FFT_MAX-point FFT, interleaved (Wr, Wi): the stand-in for LEA's ROM. */
extern const int16_t msp_model_twiddle_rom[MSP_MODEL_FFT_MAX];

/* MSP430 stand-in (firmware/kernels/lea/msp430/dsplib_standin.c defines MSP_MODEL_STANDIN): the code is
 * linked so that the image's size is real, but every call returns MSP_LEA_INCORRECT_REVISION while the
 * volatile flag is set (it always is), so such an image cannot be mistaken for one that ran on LEA (a run in
 * mspdebug ends with the kernels' error status instead of numbers that LEA never computed). */
#if defined(MSP_MODEL_STANDIN)
extern volatile uint8_t msp_model_standin_refuse;
#define MSP_MODEL_GUARD()                                            \
  do {                                                               \
    if (msp_model_standin_refuse != 0u) return MSP_LEA_INCORRECT_REVISION; \
  } while (0)
#else
#define MSP_MODEL_GUARD() \
  do {                    \
  } while (0)
#endif

/* 1 when [p, p + bytes) lies inside LEA RAM and p is a multiple of `align` bytes (TI: MSP_LEA_VALID_ADDRESS). */
int msp_model_lea_valid(const void *p, uint32_t bytes, uint32_t align);

#endif /* MSP_MODEL_H */
