/* cmsis backend: the spec's integer primitives are the ref backend's (compiled here; bit-exact). CMSIS-DSP's
 * __SSAT / arm_shift_q15 round differently (truncate) and are not used for requantisation. */
#include "../ref/requant.c"
