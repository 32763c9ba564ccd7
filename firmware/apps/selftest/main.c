/* batteryless selftest: integer work that exercises each toolchain's arithmetic (16/32/64-bit multiply,
 * divide, remainder, variable shifts, saturation) on the int16 input vector the runner patches into the
 * image, and, on CMSIS-DSP builds, one real arm_rfft_q15 (128 points). Results are printed as
 * "key v0 v1 ..." lines; tests recompute every line with numpy. */
#include "bl_board.h"
#include "bl_platform.h"

#if defined(BL_BACKEND_CMSIS)
#include "arm_math.h"
#endif

#ifndef BL_SELFTEST_MAXN
#define BL_SELFTEST_MAXN 128
#endif

static int16_t x[BL_SELFTEST_MAXN];
static int32_t r32[BL_SELFTEST_MAXN];
static int16_t r16[BL_SELFTEST_MAXN];

static int16_t sat16(int32_t v)
{
  if (v > 32767) {
    return 32767;
  }
  if (v < -32768) {
    return -32768;
  }
  return (int16_t)v;
}

static void put_i64_line(const char *key, const int64_t *v, unsigned n)
{
  unsigned i;
  bl_puts(key);
  for (i = 0; i < n; i++) {
    bl_putc(' ');
    bl_put_i64(v[i]);
  }
  bl_putc('\n');
}

int bl_app_main(void)
{
  unsigned n = (unsigned)(bl_input_length() / 2u);
  unsigned i;
  int32_t sum = 0;
  int64_t dot = 0;
  int64_t r64[4];

  if (n > BL_SELFTEST_MAXN) {
    n = BL_SELFTEST_MAXN;
  }
  if (n == 0u) {
    bl_puts("error no input\n");
    return 3;
  }
  (void)bl_input_read(x, 0u, n * 2u);
  bl_puts("board " BL_BOARD_NAME "\n");
  bl_puts("n ");
  bl_put_u32(n);
  bl_putc('\n');

  bl_mark(1u);
  for (i = 0; i < n; i++) {
    sum += x[i];
    dot += (int32_t)x[i] * (int32_t)x[n - 1u - i];
  }
  bl_puts("sum ");
  bl_put_i32(sum);
  bl_puts("\ndot ");
  bl_put_i64(dot);
  bl_putc('\n');

  /* Q15 multiply with rounding and saturation. */
  for (i = 0; i < n; i++) {
    unsigned j = (i + 1u) % n;
    r16[i] = sat16(((int32_t)x[i] * (int32_t)x[j] + 0x4000) >> 15);
  }
  bl_put_line_i16("q15mul", r16, n);

  /* 16-bit division and remainder (divisor magnitude >= 2, sign from the input). */
  for (i = 0; i < n; i++) {
    int16_t m = (int16_t)((x[(i + 3u) % n] & 0x7FF) + 2);
    int16_t d = x[(i + 3u) % n] < 0 ? (int16_t)-m : m;
    r16[i] = (int16_t)(x[i] / d);
    r32[i] = x[i] % d;
  }
  bl_put_line_i16("div16", r16, n);
  bl_put_line_i32("rem16", r32, n);

  /* 32-bit division and remainder. */
  for (i = 0; i < n; i++) {
    int32_t num = (int32_t)x[i] * (int32_t)x[(i + 1u) % n];
    int32_t xk = x[(i + 3u) % n];
    int32_t d = xk * 3 + (xk >= 0 ? 7 : -7);
    r32[i] = num / d;
    r16[i] = (int16_t)(num % d);
  }
  bl_put_line_i32("div32", r32, n);
  bl_put_line_i16("rem32", r16, n);

  /* Variable shifts: 16-bit arithmetic right, 32-bit left and arithmetic right. */
  for (i = 0; i < n; i++) {
    unsigned s = i % 16u;
    r16[i] = (int16_t)(x[i] >> s);
    r32[i] = (int32_t)((uint32_t)(int32_t)x[i] << s);
  }
  bl_put_line_i16("sra16", r16, n);
  bl_put_line_i32("sll32", r32, n);
  for (i = 0; i < n; i++) {
    r32[i] = ((int32_t)x[i] * (int32_t)x[(i + 1u) % n]) >> (i % 31u);
  }
  bl_put_line_i32("sra32", r32, n);

  /* 64-bit multiply and divide over the first (up to) four elements. */
  for (i = 0; i < n && i < 4u; i++) {
    int64_t a = (int64_t)((int32_t)x[i] * (int32_t)x[(i + 1u) % n]);
    int64_t b = (int64_t)((int32_t)x[(i + 3u) % n] * (int32_t)x[i]) + 1;
    int64_t d = (int64_t)((int32_t)x[(i + 1u) % n] * (int32_t)x[(i + 1u) % n]) + 1;
    r64[i] = (a * b) / d;
  }
  put_i64_line("muldiv64", r64, i);
  bl_mark(2u);

#if defined(BL_BACKEND_CMSIS)
  if (n >= 128u) {
    static q15_t in[128];
    static q15_t out[2 * 128 + 2];
    arm_rfft_instance_q15 rfft;
    if (arm_rfft_init_q15(&rfft, 128u, 0u, 1u) != ARM_MATH_SUCCESS) {
      bl_puts("error rfft init\n");
      return 4;
    }
    for (i = 0; i < 128u; i++) {
      in[i] = x[i];
    }
    bl_mark(3u);
    arm_rfft_q15(&rfft, in, out);
    bl_mark(4u);
    bl_put_line_i16("rfft128", out, 130u);
  }
#endif
  bl_puts("done\n");
  return 0;
}
