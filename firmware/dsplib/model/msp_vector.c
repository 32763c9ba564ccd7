/* DSPLib software model: msp_mac_q15 and msp_cmplx_mac_q15 (DSPLib.h states the semantics assumed).
 * The sum of products is formed exactly (64 bits), doubled (Q15 x Q15 = Q30 -> IQ31) and saturated to
 * int32. Lengths must be even; operands and result 4-byte aligned in LEA RAM. */
#include "msp_model.h"

static int32_t sat32_twice(int64_t s) {
  const int64_t v = 2 * s; /* |s| <= 2 * 65535 * 2^30 < 2^47: no overflow */
  if (v > INT32_MAX) return INT32_MAX;
  if (v < INT32_MIN) return INT32_MIN;
  return (int32_t)v;
}

static msp_status mac_check(uint16_t length, uint32_t elem_bytes, const _q15 *a, const _q15 *b, const _iq31 *r,
                        uint32_t result_bytes) {
  if ((length & 1u) != 0u) return MSP_SIZE_ERROR;
  const uint32_t bytes = (uint32_t)length * elem_bytes;
  if (!msp_model_lea_valid(a, bytes, 4u) || !msp_model_lea_valid(b, bytes, 4u) ||
      !msp_model_lea_valid(r, result_bytes, 4u)) {
    return MSP_LEA_INVALID_ADDRESS;
  }
  return MSP_SUCCESS;
}

msp_status msp_mac_q15(const msp_mac_q15_params *params, const _q15 *srcA, const _q15 *srcB, _iq31 *result) {
  MSP_MODEL_GUARD();
  if (params == NULL) return MSP_SIZE_ERROR;
  const msp_status st = mac_check(params->length, 2u, srcA, srcB, result, 4u);
  if (st != MSP_SUCCESS) return st;
  int64_t s = 0;
  for (uint16_t i = 0; i < params->length; i++) s += (int32_t)srcA[i] * (int32_t)srcB[i];
  *result = sat32_twice(s);
  return MSP_SUCCESS;
}

msp_status msp_cmplx_mac_q15(const msp_cmplx_mac_q15_params *params, const _q15 *srcA, const _q15 *srcB,
                             _iq31 *result) {
  MSP_MODEL_GUARD();
  if (params == NULL) return MSP_SIZE_ERROR;
  const msp_status st = mac_check(params->length, 4u, srcA, srcB, result, 8u);
  if (st != MSP_SUCCESS) return st;
  int64_t re = 0, im = 0;
  for (uint16_t i = 0; i < params->length; i++) {
    const int32_t ar = CMPLX_REAL(srcA + 2u * i), ai = CMPLX_IMAG(srcA + 2u * i);
    const int32_t br = CMPLX_REAL(srcB + 2u * i), bi = CMPLX_IMAG(srcB + 2u * i);
    re += (int64_t)(ar * br) - (int64_t)(ai * bi);
    im += (int64_t)(ar * bi) + (int64_t)(ai * br);
  }
  CMPLX_REAL(result) = sat32_twice(re);
  CMPLX_IMAG(result) = sat32_twice(im);
  return MSP_SUCCESS;
}
