/* lea backend: bl_fft_q15 through DSPLib's msp_cmplx_fft_fixed_q15 / msp_cmplx_ifft_fixed_q15 (1/2 scaling
 * per stage: forward DFT/k, inverse IDFT — the spec's transform), plus the LEA-RAM scratch area and the
 * MAC flush helpers the other lea files share. Block lengths LEA does not take (k < 16, or above
 * BL_LEA_FFT_MAX) run the portable ref FFT on the CPU: ../ref/fft_q15.c is compiled here under another name,
 * not copied. */
#include "bl_kernels.h"
#include "bl_lea_internal.h"

/* The ref transform, renamed (its file is included, not copied). */
#define bl_fft_q15 bl_lea_ref_fft_q15
bl_status bl_lea_ref_fft_q15(int16_t *z, const bl_fft_cfg *cfg, bool inverse);
#include "../ref/fft_q15.c"
#undef bl_fft_q15

/* ---- LEA RAM scratch (DSPLIB_DATA: section .lea on MSP430, the board's lea_ram region) ---------------- */
DSPLIB_DATA(bl_lea_fft_buf, MSP_ALIGN_CMPLX_FFT_Q15(BL_LEA_FFT_MAX))
int16_t bl_lea_fft_buf[2u * BL_LEA_FFT_MAX];
DSPLIB_DATA(bl_lea_vec_x, 4)
int16_t bl_lea_vec_x[BL_LEA_VEC_LEN];
DSPLIB_DATA(bl_lea_vec_hi, 4)
int16_t bl_lea_vec_hi[BL_LEA_VEC_LEN];
DSPLIB_DATA(bl_lea_vec_lo, 4)
int16_t bl_lea_vec_lo[BL_LEA_VEC_LEN];
DSPLIB_DATA(bl_lea_result, 4)
int32_t bl_lea_result[2];

static bl_status from_msp(msp_status st) { return st == MSP_SUCCESS ? BL_OK : BL_ERR_ARG; }

/* 1 when the platform's inverse FFT equals the spec's on these k inputs (DSPLib.h, MSP_IFFT_IS_SPEC). */
static int ifft_safe(const int16_t *z, uint16_t k) {
  for (uint16_t i = 0; i < 2u * k; i += 2u) {
    const int32_t re = z[i], im = z[i + 1u];
    if ((re < 0 ? -re : re) + (im < 0 ? -im : im) > MSP_IFFT_SAFE_L1) return 0;
  }
  return 1;
}

bl_status bl_lea_fft_run(int16_t *buf, const bl_fft_cfg *cfg, bool inverse) {
  if (buf != bl_lea_fft_buf || !bl_lea_fft_on_lea(cfg->k)) return bl_lea_ref_fft_q15(buf, cfg, inverse);
  if (inverse && !MSP_IFFT_IS_SPEC && !ifft_safe(buf, cfg->k)) return bl_lea_ref_fft_q15(buf, cfg, true);
  const msp_cmplx_fft_q15_params p = {cfg->k, true, 0};
  return from_msp(inverse ? msp_cmplx_ifft_fixed_q15(&p, buf) : msp_cmplx_fft_fixed_q15(&p, buf));
}

bl_status bl_fft_q15(int16_t *z, const bl_fft_cfg *cfg, bool inverse) {
  if (z == 0 || cfg == 0 || cfg->tw == 0) return BL_ERR_ARG;
  const uint16_t k = cfg->k;
  if (!is_pow2(k) || !is_pow2(cfg->tw_k) || cfg->tw_k < k) return BL_ERR_FFT_SIZE;
  if (!bl_lea_fft_on_lea(k)) return bl_lea_ref_fft_q15(z, cfg, inverse);
  for (uint16_t i = 0; i < 2u * k; i++) bl_lea_fft_buf[i] = z[i];
  const bl_status st = bl_lea_fft_run(bl_lea_fft_buf, cfg, inverse);
  if (st != BL_OK) return st;
  for (uint16_t i = 0; i < 2u * k; i++) z[i] = bl_lea_fft_buf[i];
  return BL_OK;
}

/* ---- MAC flushes: even lengths (a zero pair pads an odd count), sums exact by construction ------------- */
bl_status bl_lea_dot_flush(bl_lea_dot *d) {
  if (d->n == 0u) return BL_OK;
  if (d->n & 1u) {
    bl_lea_vec_x[d->n] = 0;
    bl_lea_vec_hi[d->n] = 0;
    bl_lea_vec_lo[d->n] = 0;
    d->n++;
  }
  const msp_mac_q15_params p = {d->n};
  msp_status st = msp_mac_q15(&p, bl_lea_vec_x, bl_lea_vec_lo, &bl_lea_result[0]);
  if (st != MSP_SUCCESS) return from_msp(st);
  d->acc += (uint32_t)(bl_lea_result[0] / 2);
  if (d->split) {
    st = msp_mac_q15(&p, bl_lea_vec_x, bl_lea_vec_hi, &bl_lea_result[0]);
    if (st != MSP_SUCCESS) return from_msp(st);
    d->acc += (uint32_t)(bl_lea_result[0] / 2) << 8;
  }
  d->n = 0;
  return BL_OK;
}

bl_status bl_lea_cdot_flush(bl_lea_cdot *d) {
  if (d->n == 0u) return BL_OK;
  if (d->n & 1u) {
    const uint16_t e = (uint16_t)(2u * d->n);
    bl_lea_vec_x[e] = bl_lea_vec_x[e + 1u] = 0;
    bl_lea_vec_hi[e] = bl_lea_vec_hi[e + 1u] = 0;
    bl_lea_vec_lo[e] = bl_lea_vec_lo[e + 1u] = 0;
    d->n++;
  }
  const msp_cmplx_mac_q15_params p = {d->n};
  msp_status st = msp_cmplx_mac_q15(&p, bl_lea_vec_x, bl_lea_vec_lo, bl_lea_result);
  if (st != MSP_SUCCESS) return from_msp(st);
  d->re += (uint32_t)(bl_lea_result[0] / 2);
  d->im += (uint32_t)(bl_lea_result[1] / 2);
  st = msp_cmplx_mac_q15(&p, bl_lea_vec_x, bl_lea_vec_hi, bl_lea_result);
  if (st != MSP_SUCCESS) return from_msp(st);
  d->re += (uint32_t)(bl_lea_result[0] / 2) << 8;
  d->im += (uint32_t)(bl_lea_result[1] / 2) << 8;
  d->n = 0;
  return BL_OK;
}
