/* batteryless: the MSP430 EABI run-time helpers clang emits (multiply, divide, shift), written in C.
 * LLVM 14 calls the *_f5hw multiply helpers for -mhwmult=f5series; they use the hardware multiplier when
 * bl_mpy_init() found one (see below) and shift-and-add otherwise. Every helper is written so that it
 * cannot compile into a call to itself: only constant shifts, adds, compares and multiplier registers. */
#include <stdint.h>

#include "bl_board.h"
#include "bl_msp430.h"

#define BL_ABI __attribute__((used))

static uint16_t mul16(uint16_t a, uint16_t b)
{
  uint16_t r = 0u;
  while (b != 0u) {
    if (b & 1u) {
      r = (uint16_t)(r + a);
    }
    a = (uint16_t)(a << 1);
    b = (uint16_t)(b >> 1);
  }
  return r;
}

static uint32_t mul32(uint32_t a, uint32_t b)
{
  uint32_t r = 0u;
  while (b != 0u) {
    if (b & 1u) {
      r += a;
    }
    a <<= 1;
    b >>= 1;
  }
  return r;
}

/* Hardware multiplier. The MSP430FR5xx MPY32 keeps the 16x16 register interface of the classic MPY
 * (MPY, MPYS, MAC, MACS, OP2, RESLO, RESHI, SUMEXT at consecutive words); mspdebug's simulator offers only
 * that classic MPY, at its own address ("simio add hwmult", [emulator].mpy16_base in board.toml). At start
 * bl_mpy_init() probes the chip's MPY32 first, then the simulator's MPY16, else falls back to shift-and-add,
 * so one image computes correctly everywhere. Every product, also 32x32 and 64-bit ones, is built from
 * 16x16 multiplies through that common interface, so the simulator executes the same instructions as the
 * chip and its MCLK counts carry over. Not interrupt-safe: no ISR may use the multiplier. */
enum { BL_MPY = 0, BL_MPYS = 1, BL_OP2 = 4, BL_RESLO = 5, BL_RESHI = 6 };

/* The probed multiplier (or null): also read by kernels that drive its MAC registers inline
 * (firmware/kernels/ref/mac_step.c), so they run wherever these helpers do. */
volatile uint16_t *bl_mpy;

static int bl_mpy_probe(volatile uint16_t *m)
{
  m[BL_MPY] = 3u;
  m[BL_OP2] = 5u;
  if (m[BL_RESLO] != 15u || m[BL_RESHI] != 0u) {
    return 0;
  }
  m[BL_MPYS] = (uint16_t)-7;
  m[BL_OP2] = 9u;
  return m[BL_RESLO] == (uint16_t)-63 && m[BL_RESHI] == 0xFFFFu;
}

void bl_mpy_init(void);
BL_ABI void bl_mpy_init(void)
{
  bl_mpy = (volatile uint16_t *)0;
  if (bl_mpy_probe(&BL_MPY32_BASE_REG)) {
    bl_mpy = &BL_MPY32_BASE_REG;
  }
#ifdef BL_BOARD_MPY16_SIM_BASE
  else if (bl_mpy_probe((volatile uint16_t *)BL_BOARD_MPY16_SIM_BASE)) {
    bl_mpy = (volatile uint16_t *)BL_BOARD_MPY16_SIM_BASE;
  }
#endif
}

/* The software fallbacks are separate, never inlined: the helpers' hardware path then needs no callee-saved
 * register (the shift-and-add loops did: four pushes and pops around every multiply, ~9 of a helper's ~18
 * instructions on the fine-grained FLEX steps, which call it a few times per step). */
__attribute__((noinline)) static uint32_t umul16x16_soft(uint16_t a, uint16_t b) { return mul32(a, b); }
__attribute__((noinline)) static int32_t smul16x16_soft(int16_t a, int16_t b)
{
  return (int32_t)mul32((uint32_t)(int32_t)a, (uint32_t)(int32_t)b);
}
__attribute__((noinline)) static uint16_t mul16lo_soft(uint16_t a, uint16_t b) { return mul16(a, b); }

/* Unsigned 16x16 -> 32. */
static uint32_t umul16x16(uint16_t a, uint16_t b)
{
  volatile uint16_t *m = bl_mpy;
  if (m) {
    m[BL_MPY] = a;
    m[BL_OP2] = b;
    return (uint32_t)m[BL_RESLO] | ((uint32_t)m[BL_RESHI] << 16);
  }
  return umul16x16_soft(a, b);
}

/* Signed 16x16 -> 32. */
static int32_t smul16x16(int16_t a, int16_t b)
{
  volatile uint16_t *m = bl_mpy;
  if (m) {
    m[BL_MPYS] = (uint16_t)a;
    m[BL_OP2] = (uint16_t)b;
    return (int32_t)((uint32_t)m[BL_RESLO] | ((uint32_t)m[BL_RESHI] << 16));
  }
  return smul16x16_soft(a, b);
}

/* Low 16 bits of a 16x16 product. */
static uint16_t mul16lo(uint16_t a, uint16_t b)
{
  volatile uint16_t *m = bl_mpy;
  if (m) {
    m[BL_MPY] = a;
    m[BL_OP2] = b;
    return m[BL_RESLO];
  }
  return mul16lo_soft(a, b);
}

/* Low 32 bits of a 32x32 product: aL*bL + ((aL*bH + aH*bL) << 16). */
static uint32_t mul32lo(uint32_t a, uint32_t b)
{
  uint16_t al = (uint16_t)a, ah = (uint16_t)(a >> 16), bl = (uint16_t)b, bh = (uint16_t)(b >> 16);
  uint16_t cross = (uint16_t)(mul16lo(al, bh) + mul16lo(ah, bl));
  return umul16x16(al, bl) + ((uint32_t)cross << 16);
}

/* Full unsigned 32x32 -> 64 from four 16x16 products. */
static uint64_t umul32x32(uint32_t a, uint32_t b)
{
  uint16_t al = (uint16_t)a, ah = (uint16_t)(a >> 16), bl = (uint16_t)b, bh = (uint16_t)(b >> 16);
  uint64_t mid = (uint64_t)umul16x16(al, bh) + umul16x16(ah, bl);
  return (uint64_t)umul16x16(al, bl) + (mid << 16) + ((uint64_t)umul16x16(ah, bh) << 32);
}

/* Low 64 bits of a 64x64 product. */
static uint64_t mul64lo(uint64_t a, uint64_t b)
{
  uint32_t al = (uint32_t)a, ah = (uint32_t)(a >> 32), bl = (uint32_t)b, bh = (uint32_t)(b >> 32);
  uint32_t cross = mul32lo(al, bh) + mul32lo(ah, bl);
  return umul32x32(al, bl) + ((uint64_t)cross << 32);
}

/* Multiplies: same-width (i, l, ll), 16x16->32 (sl/ul), 32x32->64 (sll/ull). */
BL_ABI int16_t __mspabi_mpyi_f5hw(int16_t a, int16_t b) { return (int16_t)mul16lo((uint16_t)a, (uint16_t)b); }
BL_ABI int16_t __mspabi_mpyi(int16_t a, int16_t b) { return (int16_t)mul16lo((uint16_t)a, (uint16_t)b); }
BL_ABI int32_t __mspabi_mpysl_f5hw(int16_t a, int16_t b) { return smul16x16(a, b); }
BL_ABI uint32_t __mspabi_mpyul_f5hw(uint16_t a, uint16_t b) { return umul16x16(a, b); }
BL_ABI int32_t __mspabi_mpyl_f5hw(int32_t a, int32_t b) { return (int32_t)mul32lo((uint32_t)a, (uint32_t)b); }
BL_ABI int32_t __mspabi_mpyl(int32_t a, int32_t b) { return (int32_t)mul32lo((uint32_t)a, (uint32_t)b); }
BL_ABI int64_t __mspabi_mpysll_f5hw(int32_t a, int32_t b)
{
  /* Two's complement: signed = unsigned - (a < 0 ? b << 32 : 0) - (b < 0 ? a << 32 : 0). */
  uint64_t p = umul32x32((uint32_t)a, (uint32_t)b);
  if (a < 0) {
    p -= (uint64_t)(uint32_t)b << 32;
  }
  if (b < 0) {
    p -= (uint64_t)(uint32_t)a << 32;
  }
  return (int64_t)p;
}
BL_ABI uint64_t __mspabi_mpyull_f5hw(uint32_t a, uint32_t b) { return umul32x32(a, b); }
BL_ABI int64_t __mspabi_mpyll_f5hw(int64_t a, int64_t b) { return (int64_t)mul64lo((uint64_t)a, (uint64_t)b); }
BL_ABI int64_t __mspabi_mpyll(int64_t a, int64_t b) { return (int64_t)mul64lo((uint64_t)a, (uint64_t)b); }

/* Unsigned restoring division; quotient and remainder. Division by zero gives quotient all-ones and
 * remainder = dividend (no trap on MSP430). */
static uint16_t udiv16(uint16_t n, uint16_t d, uint16_t *rem)
{
  uint16_t q = 0u, r = 0u;
  int i;
  for (i = 15; i >= 0; i--) {
    r = (uint16_t)((r << 1) | ((n >> 15) & 1u));
    n = (uint16_t)(n << 1);
    q = (uint16_t)(q << 1);
    if (r >= d) {
      r = (uint16_t)(r - d);
      q |= 1u;
    }
  }
  *rem = r;
  return q;
}

static uint32_t udiv32(uint32_t n, uint32_t d, uint32_t *rem)
{
  uint32_t q = 0u, r = 0u;
  int i;
  for (i = 31; i >= 0; i--) {
    r = (r << 1) | ((n >> 31) & 1u);
    n <<= 1;
    q <<= 1;
    if (r >= d) {
      r -= d;
      q |= 1u;
    }
  }
  *rem = r;
  return q;
}

static uint64_t udiv64(uint64_t n, uint64_t d, uint64_t *rem)
{
  uint64_t q = 0u, r = 0u;
  int i;
  for (i = 63; i >= 0; i--) {
    r = (r << 1) | ((n >> 63) & 1u);
    n <<= 1;
    q <<= 1;
    if (r >= d) {
      r -= d;
      q |= 1u;
    }
  }
  *rem = r;
  return q;
}

BL_ABI uint16_t __mspabi_divu(uint16_t n, uint16_t d)
{
  uint16_t r;
  return udiv16(n, d, &r);
}
BL_ABI uint16_t __mspabi_remu(uint16_t n, uint16_t d)
{
  uint16_t r;
  (void)udiv16(n, d, &r);
  return r;
}
BL_ABI int16_t __mspabi_divi(int16_t n, int16_t d)
{
  uint16_t r;
  uint16_t un = n < 0 ? (uint16_t)(0u - (uint16_t)n) : (uint16_t)n;
  uint16_t ud = d < 0 ? (uint16_t)(0u - (uint16_t)d) : (uint16_t)d;
  uint16_t q = udiv16(un, ud, &r);
  return (int16_t)(((n < 0) != (d < 0)) ? (uint16_t)(0u - q) : q);
}
BL_ABI int16_t __mspabi_remi(int16_t n, int16_t d)
{
  uint16_t r;
  uint16_t un = n < 0 ? (uint16_t)(0u - (uint16_t)n) : (uint16_t)n;
  uint16_t ud = d < 0 ? (uint16_t)(0u - (uint16_t)d) : (uint16_t)d;
  (void)udiv16(un, ud, &r);
  return (int16_t)(n < 0 ? (uint16_t)(0u - r) : r);
}

BL_ABI uint32_t __mspabi_divul(uint32_t n, uint32_t d)
{
  uint32_t r;
  return udiv32(n, d, &r);
}
BL_ABI uint32_t __mspabi_remul(uint32_t n, uint32_t d)
{
  uint32_t r;
  (void)udiv32(n, d, &r);
  return r;
}
BL_ABI int32_t __mspabi_divli(int32_t n, int32_t d)
{
  uint32_t r;
  uint32_t un = n < 0 ? 0u - (uint32_t)n : (uint32_t)n;
  uint32_t ud = d < 0 ? 0u - (uint32_t)d : (uint32_t)d;
  uint32_t q = udiv32(un, ud, &r);
  return (int32_t)(((n < 0) != (d < 0)) ? 0u - q : q);
}
BL_ABI int32_t __mspabi_remli(int32_t n, int32_t d)
{
  uint32_t r;
  uint32_t un = n < 0 ? 0u - (uint32_t)n : (uint32_t)n;
  uint32_t ud = d < 0 ? 0u - (uint32_t)d : (uint32_t)d;
  (void)udiv32(un, ud, &r);
  return (int32_t)(n < 0 ? 0u - r : r);
}

/* 64-bit divide/remainder. LLVM calls __mspabi_{div,rem}{u,}ll{i,} with MSP430's special "builtin"
 * convention: dividend in R8 (low word) .. R11, divisor in R12 .. R15, result in R12 .. R15, and R8-R11 may
 * be clobbered. C cannot declare that convention, so a small assembly shim per entry point spills both
 * operands to the stack and calls bl_divmod64() below with pointers (ordinary C convention: R12-R15). */
#define BL_DIVMOD64_UNSIGNED_DIV 0u
#define BL_DIVMOD64_UNSIGNED_REM 1u
#define BL_DIVMOD64_SIGNED_DIV 2u
#define BL_DIVMOD64_SIGNED_REM 3u

void bl_divmod64(uint64_t *out, const uint64_t *d, const uint64_t *n, unsigned mode);

BL_ABI void bl_divmod64(uint64_t *out, const uint64_t *d, const uint64_t *n, unsigned mode)
{
  uint64_t r, q;
  if (mode == BL_DIVMOD64_UNSIGNED_DIV || mode == BL_DIVMOD64_UNSIGNED_REM) {
    q = udiv64(*n, *d, &r);
    *out = mode == BL_DIVMOD64_UNSIGNED_DIV ? q : r;
  } else {
    int64_t sn = (int64_t)*n, sd = (int64_t)*d;
    uint64_t un = sn < 0 ? 0u - (uint64_t)sn : (uint64_t)sn;
    uint64_t ud = sd < 0 ? 0u - (uint64_t)sd : (uint64_t)sd;
    q = udiv64(un, ud, &r);
    if (mode == BL_DIVMOD64_SIGNED_DIV) {
      *out = ((sn < 0) != (sd < 0)) ? 0u - q : q;
    } else {
      *out = sn < 0 ? 0u - r : r;
    }
  }
}

/* Stack after the pushes and "sub #8": out at 0(r1), divisor at 8(r1), dividend at 16(r1). */
#define BL_DIV64_SHIM(name, mode)                                                                          \
  __asm__(".section .text." #name ",\"ax\",@progbits\n"                                                   \
          ".global " #name "\n"                                                                            \
          ".type " #name ",@function\n" #name ":\n"                                                        \
          "  push r11\n  push r10\n  push r9\n  push r8\n"                                                   \
          "  push r15\n  push r14\n  push r13\n  push r12\n"                                                 \
          "  sub #8, r1\n"                                                                                 \
          "  mov r1, r12\n"                                                                                \
          "  mov r1, r13\n  add #8, r13\n"                                                                  \
          "  mov r1, r14\n  add #16, r14\n"                                                                 \
          "  mov #" #mode ", r15\n"                                                                        \
          "  call #bl_divmod64\n"                                                                          \
          "  mov 0(r1), r12\n  mov 2(r1), r13\n  mov 4(r1), r14\n  mov 6(r1), r15\n"                          \
          "  add #16, r1\n"                                                                                \
          "  pop r8\n  pop r9\n  pop r10\n  pop r11\n"                                                       \
          "  ret\n"                                                                                        \
          ".size " #name ", .-" #name "\n"                                                                 \
          ".text\n")

BL_DIV64_SHIM(__mspabi_divull, 0);
BL_DIV64_SHIM(__mspabi_remull, 1);
BL_DIV64_SHIM(__mspabi_divlli, 2);
BL_DIV64_SHIM(__mspabi_remlli, 3);

/* Variable shifts, one bit at a time (constant shifts never become libcalls). 32-bit: __mspabi_*l;
 * 64-bit: LLVM 14 calls the libgcc names __ashldi3/__lshrdi3/__ashrdi3 (ordinary C convention). */
BL_ABI int16_t __mspabi_slli(int16_t x, int16_t n)
{
  uint16_t v = (uint16_t)x;
  while (n-- > 0) {
    v = (uint16_t)(v << 1);
  }
  return (int16_t)v;
}
BL_ABI uint16_t __mspabi_srli(uint16_t x, int16_t n)
{
  while (n-- > 0) {
    x = (uint16_t)(x >> 1);
  }
  return x;
}
BL_ABI int16_t __mspabi_srai(int16_t x, int16_t n)
{
  while (n-- > 0) {
    x = (int16_t)(x >> 1);
  }
  return x;
}
BL_ABI int32_t __mspabi_slll(int32_t x, int16_t n)
{
  uint32_t v = (uint32_t)x;
  while (n-- > 0) {
    v <<= 1;
  }
  return (int32_t)v;
}
BL_ABI uint32_t __mspabi_srll(uint32_t x, int16_t n)
{
  while (n-- > 0) {
    x >>= 1;
  }
  return x;
}
BL_ABI int32_t __mspabi_sral(int32_t x, int16_t n)
{
  while (n-- > 0) {
    x >>= 1;
  }
  return x;
}
BL_ABI int64_t __ashldi3(int64_t x, int n)
{
  uint64_t v = (uint64_t)x;
  while (n-- > 0) {
    v <<= 1;
  }
  return (int64_t)v;
}
BL_ABI uint64_t __lshrdi3(uint64_t x, int n)
{
  while (n-- > 0) {
    x >>= 1;
  }
  return x;
}
BL_ABI int64_t __ashrdi3(int64_t x, int n)
{
  while (n-- > 0) {
    x >>= 1;
  }
  return x;
}

/* Freestanding memory functions the compiler may call for struct copies and initialisers. */
void *memcpy(void *dst, const void *src, unsigned int n);
void *memset(void *dst, int c, unsigned int n);
void *memmove(void *dst, const void *src, unsigned int n);

BL_ABI void *memcpy(void *dst, const void *src, unsigned int n)
{
  uint8_t *d = (uint8_t *)dst;
  const uint8_t *s = (const uint8_t *)src;
  while (n-- != 0u) {
    *d++ = *s++;
  }
  return dst;
}
BL_ABI void *memmove(void *dst, const void *src, unsigned int n)
{
  uint8_t *d = (uint8_t *)dst;
  const uint8_t *s = (const uint8_t *)src;
  if (d < s) {
    while (n-- != 0u) {
      *d++ = *s++;
    }
  } else {
    while (n != 0u) {
      n--;
      d[n] = s[n];
    }
  }
  return dst;
}
BL_ABI void *memset(void *dst, int c, unsigned int n)
{
  uint8_t *d = (uint8_t *)dst;
  while (n-- != 0u) {
    *d++ = (uint8_t)c;
  }
  return dst;
}
