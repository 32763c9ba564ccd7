/* ref backend: the numeric spec's integer primitives (docs/numeric-spec.md, "Notation"; spec.py sat16,
 * wrap32, shift_round). Written so that no step is undefined or implementation-defined in C11: right shifts
 * of negative values and unsigned -> signed conversions are spelled out. */
#include "bl_kernels.h"

#define BL_RSR_DOMAIN_BITS 40 /* |v| <= 2^40: every value the kernels pass in is far inside */
#define BL_RSR_CLAMP ((int64_t)1 << 62)

int16_t bl_sat16_s32(int32_t v) {
  if (v > INT16_MAX) return INT16_MAX;
  if (v < INT16_MIN) return INT16_MIN;
  return (int16_t)v;
}

int16_t bl_sat16_s64(int64_t v) {
  if (v > INT16_MAX) return INT16_MAX;
  if (v < INT16_MIN) return INT16_MIN;
  return (int16_t)v;
}

/* floor(v / 2^s) for 0 <= s <= 31 with constant shifts only (for negative v, ~v = -v - 1 >= 0 and
 * floor(v / 2^s) = ~(floor(~v / 2^s))): on 16-bit targets a variable 32-bit shift is
 * a helper call looping once per bit, and a 64-bit one costs far more (docs/kernels.md, ref on the MSP430). */
static int32_t asr_s32_steps(int32_t v, uint16_t s) {
  /* 32-bit int: a variable shift is one instruction (a compile-time choice, not a target #if) */
  if (sizeof(int) >= 4u) return v >= 0 ? (int32_t)(v >> s) : (int32_t)~((~v) >> s);
  if (s >= 16u) {
    v = v >= 0 ? (int32_t)(v >> 16) : (int32_t)~((~v) >> 16);
    s = (uint16_t)(s - 16u);
  }
  if (s >= 8u) {
    v = v >= 0 ? (int32_t)(v >> 8) : (int32_t)~((~v) >> 8);
    s = (uint16_t)(s - 8u);
  }
  for (; s != 0u; s--) v = v >= 0 ? (int32_t)(v >> 1) : (int32_t)~((~v) >> 1);
  return v;
}

#if defined(__MSP430__)
/* bl_requant_s32 for 1 <= s <= 31 on the MSP430's register pair: sat16(floor((v + 2^(s-1)) / 2^s)) as an
 * arithmetic shift by s whose last shifted-out bit (bit s-1 of v) is added back (floor(v / 2^s) + bit:
 * the same value). 16 and 8 bits go as word / byte moves while more than one bit is left, each further bit is
 * one RRA (high word, arithmetic) + RRC (low word, through carry), the last one followed by ADC ADC. The C
 * path costs ~12 instructions per bit there plus an int64 saturation: ~250 instructions of a ~650-instruction
 * fine FLEX step (every output's last step requantises), this ~40. Only unsigned C arithmetic and those
 * shift / add-carry instructions: nothing implementation-defined. */
static int16_t requant_msp430(int32_t v, uint16_t s) {
  const uint32_t u = (uint32_t)v;
  uint16_t lo = (uint16_t)u, hi = (uint16_t)(u >> 16);
  const uint16_t sign = (hi & 0x8000u) != 0u ? 0xFFFFu : 0u;
  if (s > 16u) {
    lo = hi;
    hi = sign;
    s = (uint16_t)(s - 16u);
  }
  if (s > 8u) {
    lo = (uint16_t)((lo >> 8) | (hi << 8));
    hi = (uint16_t)((hi >> 8) | (sign & 0xFF00u));
    s = (uint16_t)(s - 8u);
  }
  for (; s > 1u; s--) __asm__("rra %0\n\trrc %1" : "+r"(hi), "+r"(lo));
  __asm__("rra %0\n\trrc %1\n\tadc %1\n\tadc %0" : "+r"(hi), "+r"(lo));
  if (hi == 0u) return lo <= 0x7FFFu ? (int16_t)lo : INT16_MAX;
  if (hi == 0xFFFFu) return lo >= 0x8000u ? (int16_t)(-(int16_t)(uint16_t)~lo - 1) : INT16_MIN;
  return (hi & 0x8000u) != 0u ? INT16_MIN : INT16_MAX;
}
#endif

int32_t bl_asr_s32(int32_t v, uint16_t s) {
  if (s > 31) return v < 0 ? -1 : 0;
  return asr_s32_steps(v, s);
}

int64_t bl_asr_s64(int64_t v, uint16_t s) {
  if (s > 63) return v < 0 ? -1 : 0;
  return v >= 0 ? (int64_t)(v >> s) : (int64_t)~((~v) >> s);
}

int64_t bl_rshift_round_s64(int64_t v, int16_t s) {
  if (s > 0 && s <= 31 && v >= INT32_MIN && v <= INT32_MAX) {
    /* floor((v + 2^(s-1)) / 2^s) = floor((a + 1) / 2) with a = floor(v / 2^(s-1)); no overflow */
    const int32_t a = asr_s32_steps((int32_t)v, (uint16_t)(s - 1));
    return (int64_t)(a >= 0 ? (int32_t)(a >> 1) : (int32_t)~((~a) >> 1)) + (int64_t)((uint32_t)a & 1u);
  }
  if (s > 0) {
    /* |v| <= 2^40 < 2^(s-1) for s > 41: v + 2^(s-1) lies in [0, 2^s), so the result is 0. */
    if (s > BL_RSR_DOMAIN_BITS + 1) return 0;
    return bl_asr_s64(v + ((int64_t)1 << (s - 1)), (uint16_t)s); /* the exact rounding add (64-bit) */
  }
  if (v == 0 || s == 0) return v;
  /* v * 2^-s; beyond +-2^62 only the sign matters to the callers (they saturate to int16 after adding at
   * most an int32), so clamp there instead of overflowing. */
  int32_t ns = -(int32_t)s; /* 1 .. 32768; int32_t because int may be 16 bits */
  if (ns >= 62) return v > 0 ? BL_RSR_CLAMP : -BL_RSR_CLAMP;
  int64_t lim = BL_RSR_CLAMP >> ns; /* 2^(62 - ns) >= 1 */
  if (v >= lim || v <= -lim) return v > 0 ? BL_RSR_CLAMP : -BL_RSR_CLAMP;
  return v * ((int64_t)1 << ns);
}

int16_t bl_requant_s32(int32_t acc, int16_t shift) {
  if (shift > 0 && shift <= 31) {
#if defined(__MSP430__)
    return requant_msp430(acc, (uint16_t)shift);
#endif
    /* bl_rshift_round_s64's first case, kept in 32 bits (its result floor(a / 2) + (a & 1) fits an int32) */
    const int32_t a = asr_s32_steps(acc, (uint16_t)(shift - 1));
    return bl_sat16_s32((a >= 0 ? (int32_t)(a >> 1) : (int32_t)~((~a) >> 1)) + (int32_t)((uint32_t)a & 1u));
  }
  return bl_sat16_s64(bl_rshift_round_s64(acc, shift));
}

int32_t bl_wrap_s32(uint32_t acc) {
  if (acc <= (uint32_t)INT32_MAX) return (int32_t)acc;
  return -(int32_t)(~acc) - 1; /* acc - 2^32, with ~acc = 2^32 - 1 - acc in [0, 2^31 - 1] */
}
