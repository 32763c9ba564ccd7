/* cmsis backend: relu is the ref backend's loop, compiled here (bit-exact). CMSIS-DSP's arm_clip_q15(x, y, 0,
 * 32767, n) computes the same values but took about twice the instructions on the Cortex-M4 (measured with
 * benchmarks/kernels_cmsis.py: 5,167 vs 2,597 for 512 elements), so it is not used. */
#include "../ref/relu.c"
