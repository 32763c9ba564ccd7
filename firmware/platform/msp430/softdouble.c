/* batteryless: IEEE-754 binary64 ("double") in software for the MSP430, the EABI helpers clang emits for
 * double arithmetic: __mspabi_addd, subd, mpyd, divd, cmpd, cvtfd (float -> double), fltlid (int32 ->
 * double), fixdli (double -> int32). The model's numeric path is integer-only; these exist so that code on
 * the device may use double, above all codegen's model_input.h, which quantises raw inputs exactly as
 * batteryless.spec.quantize_input does (one subtraction, one division, a multiplication by 2^f, + 0.5).
 *
 * Every operation is correctly rounded to nearest, ties to even (the only mode), with subnormals, signed
 * zeros and infinities; a NaN result is the default quiet NaN (payloads are not propagated). Compared with
 * the host's hardware double in tests/test_softdouble.py (the same C compiled by host gcc). Nothing here is
 * fast: division is a bit-by-bit loop. Unreferenced helpers cost nothing (-ffunction-sections, --gc-sections).
 *
 * Calling conventions: LLVM calls addd/subd/mpyd/divd/cmpd with MSP430's "builtin" convention (first operand
 * in R8 (low word) .. R11, second in R12 .. R15, result in R12 ..), which C cannot declare, so an assembly
 * shim per entry point spills both operands to the stack and calls bl_softdouble_op() with pointers, as
 * mspabi.c does for the 64-bit divides. The one-operand helpers use the ordinary C convention and are C. */
#include <stdint.h>

#define BL_ABI __attribute__((used))

#define SD_SIGN 0x8000000000000000ull
#define SD_FRAC 0x000FFFFFFFFFFFFFull
#define SD_INF 0x7FF0000000000000ull
#define SD_NAN 0x7FF8000000000000ull
#define SD_HIDDEN 0x0010000000000000ull /* the implicit leading 1 of a normal number, bit 52 */

static int sd_exp(uint64_t a) { return (int)((a >> 52) & 0x7FFu); }
static int sd_is_nan(uint64_t a) { return sd_exp(a) == 0x7FF && (a & SD_FRAC) != 0u; }
static int sd_is_inf(uint64_t a) { return (a & ~SD_SIGN) == SD_INF; }
static int sd_is_zero(uint64_t a) { return (a & ~SD_SIGN) == 0u; }

/* Shift right by n, ORing every bit shifted out into bit 0 (the "sticky" bit that rounding needs). */
static uint64_t sd_shift_right_sticky(uint64_t v, int n)
{
  if (n <= 0) {
    return v;
  }
  if (n >= 64) {
    return v != 0u ? 1u : 0u;
  }
  return (v >> n) | ((v & ((1ull << n) - 1u)) != 0u ? 1u : 0u);
}

/* Finite nonzero operand -> significand with its leading 1 at bit 52 and the unbiased exponent: value =
 * sig * 2^(exp - 52). Subnormals are normalised here, so callers see one form. */
static uint64_t sd_unpack(uint64_t a, int *exp)
{
  int e = sd_exp(a);
  uint64_t sig = a & SD_FRAC;
  if (e == 0) { /* subnormal: value = frac * 2^-1074 */
    e = 1;
    while ((sig & SD_HIDDEN) == 0u) {
      sig <<= 1;
      e--;
    }
  } else {
    sig |= SD_HIDDEN;
  }
  *exp = e - 1023;
  return sig;
}

/* Round and pack: value = sig * 2^(exp - 62) with sig < 2^63 and, for a normal result, its leading 1 at
 * bit 62 (10 bits below the 53 kept ones: round, guard and sticky). Subnormal and overflowing results are
 * handled here. Round to nearest, ties to even. */
static uint64_t sd_round_pack(uint64_t sign, int exp, uint64_t sig)
{
  uint64_t rest, m, packed;
  int biased = exp + 1023; /* exponent field if the leading 1 stays at bit 62 */
  if (sig == 0u) {
    return sign;
  }
  if (biased >= 0x7FF) {
    return sign | SD_INF;
  }
  if (biased < 1) { /* subnormal: shift to the 2^-1074 grid, keeping every lost bit as sticky */
    sig = sd_shift_right_sticky(sig, 1 - biased);
    biased = 0;
  } else {
    biased--; /* the leading 1 at bit 52 after the shift below adds it back */
  }
  rest = sig & 0x3FFu;
  m = (sig + 0x200u) >> 10;
  if (rest == 0x200u) {
    m &= ~(uint64_t)1u; /* a tie: to even */
  }
  packed = ((uint64_t)biased << 52) + m; /* a carry out of the significand bumps the exponent, as it must */
  if (packed >= SD_INF) {
    return sign | SD_INF;
  }
  return sign | packed;
}

static uint64_t sd_add(uint64_t a, uint64_t b)
{
  uint64_t sa = a & SD_SIGN, sb = b & SD_SIGN, sig_a, sig_b, sig;
  int ea, eb, e;
  if (sd_is_nan(a) || sd_is_nan(b)) {
    return SD_NAN;
  }
  if (sd_is_inf(a)) {
    return (sd_is_inf(b) && sa != sb) ? SD_NAN : a;
  }
  if (sd_is_inf(b)) {
    return b;
  }
  if (sd_is_zero(a)) {
    return sd_is_zero(b) ? (sa & sb) : b; /* -0 + -0 = -0; +0 + -0 = +0 */
  }
  if (sd_is_zero(b)) {
    return a;
  }
  sig_a = sd_unpack(a, &ea) << 10; /* leading 1 at bit 62 */
  sig_b = sd_unpack(b, &eb) << 10;
  if (ea < eb || (ea == eb && sig_a < sig_b)) { /* a: the larger magnitude */
    uint64_t t = sig_a;
    int te = ea;
    sig_a = sig_b;
    sig_b = t;
    ea = eb;
    eb = te;
    t = sa;
    sa = sb;
    sb = t;
  }
  sig_b = sd_shift_right_sticky(sig_b, ea - eb);
  e = ea;
  if (sa == sb) {
    sig = sig_a + sig_b; /* < 2^64 */
    if (sig & SD_SIGN) {
      sig = sd_shift_right_sticky(sig, 1);
      e++;
    }
  } else {
    sig = sig_a - sig_b;
    if (sig == 0u) {
      return 0u; /* exact cancellation is +0 when rounding to nearest */
    }
    /* At most one bit is lost when the operands were shifted apart by 2 or more, so the sticky bit stays
     * below the rounding position; with a shift of 0 or 1 the difference is exact. */
    while ((sig & (1ull << 62)) == 0u) {
      sig <<= 1;
      e--;
    }
  }
  return sd_round_pack(sa, e, sig);
}

/* 64 x 64 -> 128-bit product of two significands below 2^53, returned as its top 64 bits with the low ones
 * folded into a sticky bit 0: built from 32 x 32 -> 64 products. */
static uint64_t sd_mul_sticky(uint64_t a, uint64_t b, int drop)
{
  uint64_t a_lo = a & 0xFFFFFFFFu, a_hi = a >> 32, b_lo = b & 0xFFFFFFFFu, b_hi = b >> 32;
  uint64_t lo = a_lo * b_lo, mid1 = a_lo * b_hi, mid2 = a_hi * b_lo, hi = a_hi * b_hi;
  uint64_t mid = (lo >> 32) + (mid1 & 0xFFFFFFFFu) + (mid2 & 0xFFFFFFFFu);
  uint64_t low64 = (lo & 0xFFFFFFFFu) | (mid << 32);
  uint64_t high64 = hi + (mid1 >> 32) + (mid2 >> 32) + (mid >> 32);
  /* the product is high64 * 2^64 + low64; keep bits drop .. drop + 63 (0 < drop < 64) */
  uint64_t top = (high64 << (64 - drop)) | (low64 >> drop);
  return top | ((low64 & ((1ull << drop) - 1u)) != 0u ? 1u : 0u);
}

static uint64_t sd_mul(uint64_t a, uint64_t b)
{
  uint64_t sign = (a ^ b) & SD_SIGN, sig;
  int ea, eb, e;
  if (sd_is_nan(a) || sd_is_nan(b)) {
    return SD_NAN;
  }
  if (sd_is_inf(a) || sd_is_inf(b)) {
    return (sd_is_zero(a) || sd_is_zero(b)) ? SD_NAN : (sign | SD_INF);
  }
  if (sd_is_zero(a) || sd_is_zero(b)) {
    return sign;
  }
  /* sig_a * sig_b lies in [2^104, 2^106); dropping 42 bits puts its leading 1 at bit 62 or 63 */
  sig = sd_mul_sticky(sd_unpack(a, &ea), sd_unpack(b, &eb), 42);
  e = ea + eb;
  if (sig & SD_SIGN) {
    sig = sd_shift_right_sticky(sig, 1);
    e++;
  }
  return sd_round_pack(sign, e, sig);
}

static uint64_t sd_div(uint64_t a, uint64_t b)
{
  uint64_t sign = (a ^ b) & SD_SIGN, num, den, q = 0u;
  int ea, eb, e, i;
  if (sd_is_nan(a) || sd_is_nan(b)) {
    return SD_NAN;
  }
  if (sd_is_inf(a)) {
    return sd_is_inf(b) ? SD_NAN : (sign | SD_INF);
  }
  if (sd_is_inf(b)) {
    return sign;
  }
  if (sd_is_zero(b)) {
    return sd_is_zero(a) ? SD_NAN : (sign | SD_INF);
  }
  if (sd_is_zero(a)) {
    return sign;
  }
  num = sd_unpack(a, &ea);
  den = sd_unpack(b, &eb);
  e = ea - eb;
  if (num < den) { /* make the quotient's first bit a 1 */
    num <<= 1;
    e--;
  }
  /* long division: 63 quotient bits, leading 1 at bit 62; a nonzero remainder is the sticky bit */
  for (i = 0; i < 63; i++) {
    q <<= 1;
    if (num >= den) {
      num -= den;
      q |= 1u;
    }
    num <<= 1;
  }
  return sd_round_pack(sign, e, q | (num != 0u ? 1u : 0u));
}

/* <0, 0, >0 as a is below, equal to or above b; an unordered pair (a NaN) gives 1, so a < b, a <= b and
 * a == b are false for it (clang tests the sign of this result). */
static int16_t sd_cmp(uint64_t a, uint64_t b)
{
  int64_t ka, kb;
  if (sd_is_nan(a) || sd_is_nan(b)) {
    return 1;
  }
  if (sd_is_zero(a) && sd_is_zero(b)) {
    return 0;
  }
  /* sign-magnitude -> two's-complement order */
  ka = (a & SD_SIGN) ? -(int64_t)(a & ~SD_SIGN) : (int64_t)a;
  kb = (b & SD_SIGN) ? -(int64_t)(b & ~SD_SIGN) : (int64_t)b;
  return ka < kb ? -1 : (ka > kb ? 1 : 0);
}

/* --- entry points ------------------------------------------------------------------------------------- */
#define BL_SD_ADD 0u
#define BL_SD_SUB 1u
#define BL_SD_MUL 2u
#define BL_SD_DIV 3u
#define BL_SD_CMP 4u

/* out = a (op) b on bit patterns; the shims' target, and what the host test calls. */
void bl_softdouble_op(uint64_t *out, const uint64_t *b, const uint64_t *a, unsigned op);

BL_ABI void bl_softdouble_op(uint64_t *out, const uint64_t *b, const uint64_t *a, unsigned op)
{
  switch (op) {
  case BL_SD_ADD:
    *out = sd_add(*a, *b);
    break;
  case BL_SD_SUB:
    *out = sd_add(*a, *b ^ SD_SIGN);
    break;
  case BL_SD_MUL:
    *out = sd_mul(*a, *b);
    break;
  case BL_SD_DIV:
    *out = sd_div(*a, *b);
    break;
  default:
    *out = (uint64_t)(int64_t)sd_cmp(*a, *b);
    break;
  }
}

uint64_t bl_softdouble_from_float(uint32_t f);
int32_t bl_softdouble_to_int32(uint64_t a);
uint64_t bl_softdouble_from_int32(int32_t v);

/* float -> double: exact. */
BL_ABI uint64_t bl_softdouble_from_float(uint32_t f)
{
  uint64_t sign = (uint64_t)(f & 0x80000000u) << 32;
  int e = (int)((f >> 23) & 0xFFu);
  uint64_t m = f & 0x7FFFFFu;
  if (e == 0xFF) {
    return m != 0u ? SD_NAN : (sign | SD_INF);
  }
  if (e == 0) {
    if (m == 0u) {
      return sign;
    }
    e = 1;
    while ((m & 0x800000u) == 0u) { /* a float subnormal is a normal double */
      m <<= 1;
      e--;
    }
    m &= 0x7FFFFFu;
  }
  return sign | ((uint64_t)(e - 127 + 1023) << 52) | (m << 29);
}

/* double -> int32, truncating toward zero (C's conversion). Out of range and NaN give INT32_MIN, as x86's
 * cvttsd2si does (C leaves it undefined; model_input.h never converts such a value). */
BL_ABI int32_t bl_softdouble_to_int32(uint64_t a)
{
  int e = sd_exp(a) - 1023;
  uint64_t m;
  if (sd_is_nan(a) || e >= 31) { /* also -2^31 itself, whose answer is INT32_MIN anyway */
    return INT32_MIN;
  }
  if (e < 0) {
    return 0;
  }
  m = ((a & SD_FRAC) | SD_HIDDEN) >> (52 - e);
  return (a & SD_SIGN) ? (int32_t)(0u - (uint32_t)m) : (int32_t)m;
}

/* int32 -> double: exact. */
BL_ABI uint64_t bl_softdouble_from_int32(int32_t v)
{
  uint64_t sign = v < 0 ? SD_SIGN : 0u;
  uint64_t m = v < 0 ? (uint64_t)(0u - (uint32_t)v) : (uint64_t)v;
  int e = 52;
  if (m == 0u) {
    return 0u;
  }
  while ((m & SD_HIDDEN) == 0u) {
    m <<= 1;
    e--;
  }
  return sign | ((uint64_t)(e + 1023) << 52) | (m & SD_FRAC);
}

#if defined(__MSP430__)
BL_ABI uint64_t __mspabi_cvtfd(uint32_t f) { return bl_softdouble_from_float(f); }
BL_ABI int32_t __mspabi_fixdli(uint64_t a) { return bl_softdouble_to_int32(a); }
BL_ABI uint64_t __mspabi_fltlid(int32_t v) { return bl_softdouble_from_int32(v); }

/* Stack after the pushes and "sub #8": out at 0(r1), second operand at 8(r1), first at 16(r1). cmpd
 * returns its int16 in R12 (the low word of out). R8-R11 are restored: callers keep values there. */
#define BL_SD_SHIM(name, op)                                                                               \
  __asm__(".section .text." #name ",\"ax\",@progbits\n"                                                   \
          ".global " #name "\n"                                                                            \
          ".type " #name ",@function\n" #name ":\n"                                                        \
          "  push r11\n  push r10\n  push r9\n  push r8\n"                                                   \
          "  push r15\n  push r14\n  push r13\n  push r12\n"                                                 \
          "  sub #8, r1\n"                                                                                 \
          "  mov r1, r12\n"                                                                                \
          "  mov r1, r13\n  add #8, r13\n"                                                                  \
          "  mov r1, r14\n  add #16, r14\n"                                                                 \
          "  mov #" #op ", r15\n"                                                                          \
          "  call #bl_softdouble_op\n"                                                                     \
          "  mov 0(r1), r12\n  mov 2(r1), r13\n  mov 4(r1), r14\n  mov 6(r1), r15\n"                          \
          "  add #16, r1\n"                                                                                \
          "  pop r8\n  pop r9\n  pop r10\n  pop r11\n"                                                       \
          "  ret\n"                                                                                        \
          ".size " #name ", .-" #name "\n"                                                                 \
          ".text\n")

BL_SD_SHIM(__mspabi_addd, 0);
BL_SD_SHIM(__mspabi_subd, 1);
BL_SD_SHIM(__mspabi_mpyd, 2);
BL_SD_SHIM(__mspabi_divd, 3);
BL_SD_SHIM(__mspabi_cmpd, 4);
#endif
