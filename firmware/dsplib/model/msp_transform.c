/* DSPLib software model: msp_cmplx_fft_fixed_q15 and msp_cmplx_ifft_fixed_q15 (DSPLib.h states the
 * semantics assumed). Radix-2 decimation in time, in place on N interleaved complex Q15 values:
 *   bit-reversal reorder (when params->bitReverse), then log2(N) stages; butterfly on (a, b) with twiddle W:
 *     T = b                                       when W is the index-0 twiddle (Q15 cannot hold +1.0)
 *     T = ((Wr br - Wi bi + 2^14) >> 15, (Wr bi + Wi br + 2^14) >> 15)   otherwise
 *     a' = fft_sat16((a + T) >> 1),  b' = fft_sat16((a - T) >> 1)                 (floor shifts, per component)
 * Forward twiddles come from the ROM stand-in (msp_model_rom.c); the inverse uses (Wr, sat16(-Wi)).
 * TI documents the 1/2 scaling per stage and the argument rules; the rounding above is our numeric spec's. */
#include "msp_model.h"

static int16_t fft_sat16(int32_t v) { return v > INT16_MAX ? INT16_MAX : (v < INT16_MIN ? INT16_MIN : (int16_t)v); }

/* floor(v / 2^s) without relying on >> of negative values */
static int32_t fft_asr(int32_t v, unsigned s) { return v >= 0 ? (v >> s) : ~((~v) >> s); }

static msp_status fft_check(const msp_cmplx_fft_q15_params *params, const int16_t *src) {
  if (params == NULL || src == NULL) return MSP_LEA_INVALID_ADDRESS;
  const uint16_t n = params->length;
  if (n < MSP_MODEL_FFT_MIN || n > MSP_MODEL_FFT_MAX || (n & (uint16_t)(n - 1u)) != 0u) return MSP_SIZE_ERROR;
  if (!msp_model_lea_valid(src, 4ul * n, (uint32_t)MSP_ALIGN_CMPLX_FFT_Q15((uint32_t)n))) {
    return MSP_LEA_INVALID_ADDRESS;
  }
  return MSP_SUCCESS;
}

static void bit_reverse(int16_t *z, uint16_t n) {
  uint16_t bits = 0;
  while ((uint16_t)(1u << bits) < n) bits++;
  for (uint16_t i = 0; i < n; i++) {
    uint16_t r = 0;
    for (uint16_t b = 0; b < bits; b++) r = (uint16_t)(r | (((i >> b) & 1u) << (bits - 1u - b)));
    if (r > i) {
      const int16_t t0 = z[2u * i], t1 = z[2u * i + 1u];
      z[2u * i] = z[2u * r];
      z[2u * i + 1u] = z[2u * r + 1u];
      z[2u * r] = t0;
      z[2u * r + 1u] = t1;
    }
  }
}

static void stages(int16_t *z, uint16_t n, int inverse) {
  const uint16_t rom_step = (uint16_t)(MSP_MODEL_FFT_MAX / n);
  for (uint32_t m = 2; m <= n; m *= 2u) {
    const uint16_t half = (uint16_t)(m / 2u), t_step = (uint16_t)(n / m);
    for (uint32_t g = 0; g < n; g += m) {
      for (uint16_t j = 0; j < half; j++) {
        const uint32_t ia = 2u * (g + j), ib = 2u * (g + j + half);
        const int32_t br = z[ib], bi = z[ib + 1u];
        const uint32_t t = (uint32_t)j * t_step;
        int32_t tr = br, ti = bi;
        if (t != 0u) {
          const uint32_t idx = 2u * t * rom_step;
          const int32_t wr = msp_model_twiddle_rom[idx];
          const int32_t wf = msp_model_twiddle_rom[idx + 1u];
          const int32_t wi = inverse ? (wf == INT16_MIN ? INT16_MAX : -wf) : wf;
          tr = fft_asr(wr * br - wi * bi + 16384, 15);
          ti = fft_asr(wr * bi + wi * br + 16384, 15);
        }
        const int32_t ar = z[ia], ai = z[ia + 1u];
        z[ia] = fft_sat16(fft_asr(ar + tr, 1));
        z[ia + 1u] = fft_sat16(fft_asr(ai + ti, 1));
        z[ib] = fft_sat16(fft_asr(ar - tr, 1));
        z[ib + 1u] = fft_sat16(fft_asr(ai - ti, 1));
      }
    }
  }
}

static msp_status fft(const msp_cmplx_fft_q15_params *params, int16_t *src, int inverse) {
  MSP_MODEL_GUARD();
  const msp_status st = fft_check(params, src);
  if (st != MSP_SUCCESS) return st;
  if (params->bitReverse) bit_reverse(src, params->length);
  stages(src, params->length, inverse);
  return MSP_SUCCESS;
}

msp_status msp_cmplx_fft_fixed_q15(const msp_cmplx_fft_q15_params *params, int16_t *src) {
  return fft(params, src, 0);
}

msp_status msp_cmplx_ifft_fixed_q15(const msp_cmplx_fft_q15_params *params, int16_t *src) {
  return fft(params, src, 1);
}
