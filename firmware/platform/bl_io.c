/* batteryless: platform-independent output formatting and input access (see bl_platform.h). */
#include "bl_platform.h"

__attribute__((used, section(".rodata.bl_input"))) const bl_input_t bl_input = {BL_INPUT_MAGIC, 0u, {0}};

/* The runner patches bl_input in the image after linking: every read goes through a volatile lvalue so
 * the compiler cannot fold the all-zero initialiser into the code. */
static const volatile bl_input_t *bl_input_view(void) { return (const volatile bl_input_t *)&bl_input; }

void bl_puts(const char *s)
{
  while (*s) {
    bl_putc(*s++);
  }
}

/* Two ways to print decimal, chosen by whether the CPU divides in hardware: the MSP430 does not (32-bit
 * division is a software helper there, and printing one logits line through it cost ~195 k MCLK cycles), a
 * Cortex-M4 or the host does (there the subtraction form costs more instructions: +99 k in the selftest). */
#ifndef BL_IO_DECIMAL_BY_SUBTRACTION
#if defined(__MSP430__)
#define BL_IO_DECIMAL_BY_SUBTRACTION 1
#else
#define BL_IO_DECIMAL_BY_SUBTRACTION 0
#endif
#endif

#if BL_IO_DECIMAL_BY_SUBTRACTION
/* Decimal without division: each digit is the number of times its power of ten can be subtracted (at most
 * 9 subtractions per digit). Values that fit 16 bits take a 16-bit path (one-word compares and subtractions
 * on the MSP430). Leading zeros are skipped; the last digit is what remains. */
static const uint32_t bl_pow10_u32[5] = {1000000000ul, 100000000ul, 10000000ul, 1000000ul, 100000ul};
static const uint16_t bl_pow10_u16[4] = {10000u, 1000u, 100u, 10u};

void bl_put_u32(uint32_t v)
{
  unsigned i;
  int started = 0;
  char d;
  for (i = 0; i < 5u; i++) {
    const uint32_t p = bl_pow10_u32[i];
    d = '0';
    while (v >= p) {
      v -= p;
      d++;
    }
    if (d != '0' || started) {
      bl_putc(d);
      started = 1;
    }
  }
  /* v < 100000 here; below 65536 unless a digit has been printed or v itself is 65536..99999 */
  if (v > 0xFFFFul) {
    d = '0';
    while (v >= 10000ul) {
      v -= 10000ul;
      d++;
    }
    bl_putc(d);
    started = 1;
    i = 1u; /* 10000 done */
  } else {
    i = 0u;
  }
  {
    uint16_t w = (uint16_t)v;
    for (; i < 4u; i++) {
      const uint16_t p = bl_pow10_u16[i];
      d = '0';
      while (w >= p) {
        w = (uint16_t)(w - p);
        d++;
      }
      if (d != '0' || started) {
        bl_putc(d);
        started = 1;
      }
    }
    bl_putc((char)('0' + w));
  }
}
#else
void bl_put_u32(uint32_t v)
{
  char buf[10];
  unsigned i = 0;
  do {
    buf[i++] = (char)('0' + (v % 10u));
    v /= 10u;
  } while (v != 0u);
  while (i > 0u) {
    bl_putc(buf[--i]);
  }
}
#endif

void bl_put_i64(int64_t v)
{
  char buf[21];
  unsigned i = 0;
  uint64_t m;
  if (v < 0) {
    bl_putc('-');
    m = (uint64_t)0 - (uint64_t)v;
  } else {
    m = (uint64_t)v;
  }
  do {
    buf[i++] = (char)('0' + (unsigned)(m % 10u));
    m /= 10u;
  } while (m != 0u);
  while (i > 0u) {
    bl_putc(buf[--i]);
  }
}

void bl_put_i32(int32_t v)
{
  if (v < 0) {
    bl_putc('-');
    bl_put_u32((uint32_t)0 - (uint32_t)v);
  } else {
    bl_put_u32((uint32_t)v);
  }
}

void bl_put_line_i32(const char *key, const int32_t *v, size_t n)
{
  bl_puts(key);
  for (size_t i = 0; i < n; i++) {
    bl_putc(' ');
    bl_put_i32(v[i]);
  }
  bl_putc('\n');
}

void bl_put_line_i16(const char *key, const int16_t *v, size_t n)
{
  bl_puts(key);
  for (size_t i = 0; i < n; i++) {
    bl_putc(' ');
    bl_put_i32(v[i]);
  }
  bl_putc('\n');
}

uint32_t bl_input_length(void)
{
  uint32_t n = bl_input_view()->length;
  if (bl_input_view()->magic != BL_INPUT_MAGIC || n > BL_INPUT_CAPACITY) {
    return 0u;
  }
  return n;
}

size_t bl_input_read(void *dst, size_t offset, size_t n)
{
  uint32_t len = bl_input_length();
  uint8_t *d = (uint8_t *)dst;
  size_t i;
  if (offset >= len) {
    return 0u;
  }
  if (n > len - offset) {
    n = len - offset;
  }
  for (i = 0; i < n; i++) {
    d[i] = bl_input_view()->data[offset + i];
  }
  return n;
}
