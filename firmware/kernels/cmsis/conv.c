/* cmsis backend: conv1d / conv2d are the ref backend's code compiled here. The FFT path's transforms call
 * bl_fft_q15, which in this backend is CMSIS-DSP's arm_cfft_q15 (fft_q15.c), so the FFT path differs from
 * the spec in the last bits exactly as that transform does. The direct paths (bit-exact) and the
 * frequency-domain complex MAC stay plain C: a conv dot product is KH*KW long per channel (9 for 3x3), too
 * short for arm_dot_prod_q15 to gain over an inline loop, and CMSIS-DSP's complex products shift and
 * saturate where the spec wraps (see linear.c). */
#include "../ref/conv.c"
