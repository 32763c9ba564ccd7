/* batteryless fft app: runs the backend's bl_fft_q15 on vectors from the input buffer, for measuring a
 * backend's FFT against the numeric spec (tests/test_kernels_cmsis.py, benchmarks/kernels_cmsis.py).
 * Input, int16 little-endian: k, inverse (0/1), count, tw_k, then tw_k int16 (the tw_k/2 forward twiddle
 * pairs of bl_fft_cfg), then count vectors of k interleaved complex values. Output: one line per vector,
 * "z<i> re0 im0 re1 im1 ..."; bl_mark(1) / bl_mark(2) around each call (instruction counts). Build it with
 * a model folder (any, even empty) so the kernels are compiled. */
#include <stdint.h>

#include "bl_kernels.h"
#include "bl_platform.h"

#define FFT_APP_MAX 2048u /* int16: twiddles + one vector */

static int16_t tw[FFT_APP_MAX];
static int16_t z[FFT_APP_MAX];

int bl_app_main(void)
{
  int16_t hdr[4];
  uint32_t off = sizeof hdr;
  uint16_t i;
  if (bl_input_length() < sizeof hdr) return 3;
  (void)bl_input_read(hdr, 0u, sizeof hdr);
  const uint16_t k = (uint16_t)hdr[0], count = (uint16_t)hdr[2], tw_k = (uint16_t)hdr[3];
  const bool inverse = hdr[1] != 0;
  if (tw_k > FFT_APP_MAX || 2u * (uint32_t)k > FFT_APP_MAX ||
      bl_input_length() != sizeof hdr + 2u * (uint32_t)tw_k + 4u * (uint32_t)k * count) {
    bl_puts("error input layout\n");
    return 3;
  }
  (void)bl_input_read(tw, off, 2u * (uint32_t)tw_k);
  off += 2u * (uint32_t)tw_k;
  const bl_fft_cfg cfg = {k, tw_k, tw};
  for (i = 0; i < count; i++) {
    (void)bl_input_read(z, off, 4u * (uint32_t)k);
    off += 4u * (uint32_t)k;
    bl_mark(1u);
    bl_status st = bl_fft_q15(z, &cfg, inverse);
    bl_mark(2u);
    if (st != BL_OK) {
      bl_puts("error status ");
      bl_put_i32((int32_t)st);
      bl_putc('\n');
      return 4;
    }
    bl_putc('z');
    bl_put_u32(i);
    bl_put_line_i16("", z, 2u * (uint32_t)k);
  }
  return 0;
}
