/* EVE mode selection: see bl_eve.h. Integer compares only (no floating point on the device). */
#include "bl_eve.h"
#include "bl_platform.h"

#include <stddef.h>

/* In NVM (BL_NVM): startup re-initialises RAM at every boot, so a value the emulator writes at a power-on
 * (batteryless.firmware.run(writes=...): the buffer's voltage at that boot) must survive it. */
BL_NVM volatile uint16_t bl_eve_supply_mv;
BL_NVM volatile uint32_t bl_eve_now_ms;
BL_NVM bl_eve_rate_state bl_eve_state;

__attribute__((weak)) uint32_t bl_eve_read_ms(void)
{
  return bl_eve_now_ms;
}

#if defined(BL_EVE_TEST_SUPPLY)
/* Tests only (-DBL_EVE_TEST_SUPPLY=mv,mv,...): every reading takes the next value of the table, its position
 * kept in NVM, so the stored energy differs between inferences, between boots and between the retries of
 * an inference whose start a power failure cut (the FLEX tests of mode switches). */
static const uint16_t test_supply[] = {BL_EVE_TEST_SUPPLY};
BL_NVM static uint16_t test_supply_next;

uint16_t bl_eve_read_mv(void)
{
  const uint16_t n = (uint16_t)(sizeof test_supply / sizeof test_supply[0]);
  uint16_t i = (uint16_t)(test_supply_next % n);
  test_supply_next = (uint16_t)((i + 1u) % n);
  return test_supply[i];
}
#else
__attribute__((weak)) uint16_t bl_eve_read_mv(void)
{
  return bl_eve_supply_mv;
}
#endif

uint8_t bl_eve_select(const bl_eve_table *t, uint16_t mv, uint8_t current)
{
  uint16_t i;
  for (i = 0u; i < t->n_modes; i++) {
    uint16_t need = (i < current) ? t->enter_mv[i] : t->stay_mv[i];
    if (mv >= need) {
      return (uint8_t)i;
    }
  }
  return (uint8_t)(t->n_modes - 1u);
}

#define BL_EVE_U32 0xFFFFFFFFul
#define BL_EVE_P_MAX 0x3FFFFFFFul
#define BL_EVE_DT_BITS 7u      /* eve/select.py DT_BITS */
#define BL_EVE_INCOME_BITS 16u /* eve/select.py INCOME_BITS */

static uint32_t sat_add(uint32_t a, uint32_t b)
{
  return (a > BL_EVE_U32 - b) ? BL_EVE_U32 : a + b;
}

/* 16 x 16 -> 32, the only multiply of the rule. On the MSP430 clang 14 lowers every 32-bit product to the
 * 32x32 helper (three hardware multiplies and sign handling); the run time's 16x16 helper is one
 * (firmware/platform/msp430/mspabi.c; the ref kernels call it the same way: kernels/ref/bl_ref_internal.h). */
#if defined(__MSP430__)
uint32_t __mspabi_mpyul_f5hw(uint16_t a, uint16_t b);
#define mul16(a, b) __mspabi_mpyul_f5hw((a), (b))
#else
static uint32_t mul16(uint16_t a, uint16_t b)
{
  return (uint32_t)a * b;
}
#endif

/* floor(a * w / 256), saturating (eve/select.py _muldiv256). The tuner's weights (0, 1/4, 1/2, 1: the
 * policy grid of eve/policy.py) are constant shifts (an MSP430 shifts one bit per instruction, and a
 * variable shift is a run-time loop); other weights from 16-bit halves, a = ah 2^16 + al:
 * a w / 256 = ah w 2^8 + al w / 256. */
static uint32_t muldiv256(uint32_t a, uint16_t w)
{
  uint32_t hi, lo;
  switch (w) {
  case 0u:
    return 0u;
  case 64u:
    return a >> 2;
  case 128u:
    return a >> 1;
  case 256u:
    return a;
  default:
    break;
  }
  hi = mul16((uint16_t)(a >> 16), w);
  lo = mul16((uint16_t)a, w) >> 8;
  if (hi > (BL_EVE_U32 >> 8)) {
    return BL_EVE_U32;
  }
  return sat_add(hi << 8, lo);
}

/* eve/select.py income_per_period: income * period / dt through the generated reciprocals, no division.
 * dt = m 2^s with m its top DT_BITS bits, income = i 2^t with i its top INCOME_BITS bits; the result is
 * i recip[m] 2^(t - s - recip_shift). Bit by bit shifts: no run-time shift helper on the MSP430. */
static uint32_t income_per_period(const bl_eve_rate *r, uint32_t income, uint32_t dt)
{
  int16_t sh = (int16_t)r->recip_shift;
  uint32_t prod;
#if defined(__ARM_ARCH) && __ARM_ARCH >= 7
  /* Cortex-M3 and up: CLZ and a barrel shifter, the same steps in a few instructions */
  if (dt >= (1ul << BL_EVE_DT_BITS)) {
    const int16_t s = (int16_t)(32 - __builtin_clz(dt) - (int)BL_EVE_DT_BITS);
    dt >>= s;
    sh = (int16_t)(sh + s);
  }
  if ((income >> BL_EVE_INCOME_BITS) != 0u) {
    const int16_t t = (int16_t)(32 - __builtin_clz(income) - (int)BL_EVE_INCOME_BITS);
    income >>= t;
    sh = (int16_t)(sh - t);
  }
  prod = mul16((uint16_t)income, r->recip[dt]);
  if (sh >= 0) {
    prod = sh >= 32 ? 0u : prod >> sh;
    return prod > BL_EVE_P_MAX ? BL_EVE_P_MAX : prod;
  }
  return prod > (BL_EVE_P_MAX >> -sh) ? BL_EVE_P_MAX : prod << -sh;
#else
  while (dt >= (1ul << BL_EVE_DT_BITS)) {
    dt >>= 1;
    sh++;
  }
  while ((income >> BL_EVE_INCOME_BITS) != 0u) {
    income >>= 1;
    sh--;
  }
  prod = mul16((uint16_t)income, r->recip[dt]);
  if (sh >= 0) {
    if (sh >= 32) {
      return 0u;
    }
    while (sh >= 8) { /* a byte at a time, then bit by bit */
      prod >>= 8;
      sh -= 8;
    }
    while (sh > 0) {
      prod >>= 1;
      sh--;
    }
    return prod > BL_EVE_P_MAX ? BL_EVE_P_MAX : prod;
  }
  while (sh < 0) { /* income >> t with t > s + shift: scale up, saturating (P_MAX < 2^31) */
    if (prod > BL_EVE_P_MAX) {
      return BL_EVE_P_MAX;
    }
    prod <<= 1;
    sh++;
  }
  return prod > BL_EVE_P_MAX ? BL_EVE_P_MAX : prod;
#endif
}

/* eve/select.py rate_select, bit for bit: unsigned 32-bit, saturating, at most a few 16x16 multiplies and
 * no division (a 16-bit MCU divides and multiplies 32-bit numbers in software: 6,712 MCLK cycles per
 * selection with the first 32-bit version, 103,331 with a 64-bit one). */
uint8_t bl_eve_select_rate(const bl_eve_table *t, bl_eve_rate_state *s, uint16_t mv, uint32_t ms,
                           uint8_t current)
{
  const bl_eve_rate *r = t->rate;
  uint32_t e_now = mul16(mv, mv);
  uint32_t e_ref = r->ref_mv2;
  uint32_t plus, minus, up = 0u;
  uint8_t n = (uint8_t)t->n_modes;
  uint8_t last = r->bottom < n ? r->bottom : (uint8_t)(n - 1u); /* the smallest mode the rule picks */
  uint8_t pick = last;
  uint8_t probe;
  uint8_t i;

  if (s->magic != BL_EVE_RATE_MAGIC) { /* first use: the NOLOAD record holds whatever was there */
    s->ms = 0u;
    s->spent_mv2 = 0u;
    s->p_mv2 = 0u;
    s->mv = 0u;
    s->magic = BL_EVE_RATE_MAGIC;
  }
  if (ms < s->ms) { /* the clock went back: measure from here, keep the estimate */
    s->mv = mv;
    s->ms = ms;
    s->spent_mv2 = 0u;
  }
  if (ms - s->ms >= r->min_dt_ms) {
    uint32_t have = sat_add(e_now, s->spent_mv2);
    uint32_t prev = mul16(s->mv, s->mv);
    uint32_t income = have > prev ? have - prev : 0u; /* net of leakage, boots and re-executed work */
    uint32_t p_inst = income_per_period(r, income, ms - s->ms); /* scaled to one demand period */
    if (p_inst >= s->p_mv2) {
      s->p_mv2 += muldiv256(p_inst - s->p_mv2, r->ewma_q8);
    } else {
      s->p_mv2 -= muldiv256(s->p_mv2 - p_inst, r->ewma_q8);
    }
    s->mv = mv;
    s->ms = ms;
    s->spent_mv2 = 0u;
  }
  /* budget = income P period + gain (E(V) - E(ref)): its positive and negative parts apart */
  plus = sat_add(muldiv256(s->p_mv2, r->income_q8),
                 e_now >= e_ref ? muldiv256(e_now - e_ref, r->gain_q8) : 0u);
  minus = e_now < e_ref ? muldiv256(e_ref - e_now, r->gain_q8) : 0u;
  /* a full buffer clips the income, so the estimate is only a lower bound: one mode up is affordable */
  probe = (uint8_t)(mv >= r->full_mv && current > r->top && current < n);
  if (probe) {
    up = r->energy_up_mv2[current - 1u];
  }
  for (i = r->top; i <= last; i++) {
    uint32_t need = i < current ? r->energy_up_mv2[i] : r->energy_mv2[i];
    if (plus >= sat_add(need, minus) || (probe && up >= need)) {
      pick = i;
      break;
    }
  }
  s->spent_mv2 = sat_add(s->spent_mv2, r->energy_mv2[pick]);
  return pick;
}

uint8_t bl_eve_choose(const bl_eve_table *t, uint8_t current)
{
  uint16_t mv = bl_eve_read_mv();
  if (t->rate != NULL) {
    return bl_eve_select_rate(t, &bl_eve_state, mv, bl_eve_read_ms(), current);
  }
  return bl_eve_select(t, mv, current);
}
