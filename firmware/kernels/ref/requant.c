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

/* floor(v / 2^s): for negative v, ~v = -v - 1 >= 0 and floor(v / 2^s) = ~(floor(~v / 2^s)). */
int32_t bl_asr_s32(int32_t v, uint16_t s) {
  if (s > 31) return v < 0 ? -1 : 0;
  return v >= 0 ? (int32_t)(v >> s) : (int32_t)~((~v) >> s);
}

int64_t bl_asr_s64(int64_t v, uint16_t s) {
  if (s > 63) return v < 0 ? -1 : 0;
  return v >= 0 ? (int64_t)(v >> s) : (int64_t)~((~v) >> s);
}

int64_t bl_rshift_round_s64(int64_t v, int16_t s) {
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

int16_t bl_requant_s32(int32_t acc, int16_t shift) { return bl_sat16_s64(bl_rshift_round_s64(acc, shift)); }

int32_t bl_wrap_s32(uint32_t acc) {
  if (acc <= (uint32_t)INT32_MAX) return (int32_t)acc;
  return -(int32_t)(~acc) - 1; /* acc - 2^32, with ~acc = 2^32 - 1 - acc in [0, 2^31 - 1] */
}
