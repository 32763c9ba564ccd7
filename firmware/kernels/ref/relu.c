/* ref backend: relu (docs/numeric-spec.md, "relu"). y may alias x. */
#include "bl_kernels.h"

bl_status bl_relu_q15(const int16_t *x, int16_t *y, uint32_t n) {
  if (x == 0 || y == 0) return BL_ERR_ARG;
  for (uint32_t e = 0; e < n; e++) y[e] = x[e] > 0 ? x[e] : 0;
  return BL_OK;
}
