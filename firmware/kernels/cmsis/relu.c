/* cmsis backend: relu with CMSIS-DSP's arm_clip_q15 (clamp to [0, 32767]; element-wise, so y may alias x).
 * Bit-exact with the spec. */
#include "arm_math.h"
#include "bl_kernels.h"

bl_status bl_relu_q15(const int16_t *x, int16_t *y, uint32_t n) {
  if (x == 0 || y == 0) return BL_ERR_ARG;
  if (n > 0u) arm_clip_q15(x, y, 0, INT16_MAX, n);
  return BL_OK;
}
