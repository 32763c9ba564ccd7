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

static uint32_t sat_add(uint32_t a, uint32_t b)
{
  return (a > BL_EVE_U32 - b) ? BL_EVE_U32 : a + b;
}

/* min(a * b, 2^32 - 1) without a division (a 16-bit MCU has none): a = ah 2^16 + al, b = bh 2^16 + bl */
static uint32_t mul16(uint16_t a, uint16_t b) /* 16 x 16 -> 32: one hardware/helper multiply */
{
  return (uint32_t)a * b;
}

static uint32_t mul_sat(uint32_t a, uint32_t b)
{
  uint16_t ah = (uint16_t)(a >> 16), al = (uint16_t)a, bh = (uint16_t)(b >> 16), bl = (uint16_t)b;
  uint32_t cross;
  if (ah != 0u && bh != 0u) {
    return BL_EVE_U32;
  }
  cross = (ah != 0u) ? mul16(ah, bl) : mul16(al, bh); /* the other term is 0 */
  if (cross > 0xFFFFu) {
    return BL_EVE_U32;
  }
  return sat_add(cross << 16, mul16(al, bl));
}

/* floor(a * w / 256), saturating: a = 256 q + r, a w / 256 = q w + r w / 256 */
static uint32_t muldiv256(uint32_t a, uint16_t w)
{
  if (w == 0u || w == 256u) { /* the common weights: no multiply */
    return w == 0u ? 0u : a;
  }
  return sat_add(mul_sat(a >> 8, w), mul16((uint16_t)(a & 0xFFu), w) >> 8);
}

/* eve/select.py rate_select, bit for bit: unsigned 32-bit, saturating (a 16-bit MCU divides 64-bit
 * numbers slowly: 100k MCLK cycles per selection measured with 64-bit arithmetic). */
uint8_t bl_eve_select_rate(const bl_eve_table *t, bl_eve_rate_state *s, uint16_t mv, uint32_t ms,
                           uint8_t current)
{
  const bl_eve_rate *r = t->rate;
  uint32_t e_now = mul16(mv, mv);
  uint32_t e_ref = mul16(r->ref_mv, r->ref_mv);
  uint32_t plus, minus, up = 0u;
  uint8_t n = (uint8_t)t->n_modes;
  uint8_t pick = (uint8_t)(n - 1u);
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
    uint32_t dt = ms - s->ms;
    uint32_t have = sat_add(e_now, s->spent_mv2);
    uint32_t prev = mul16(s->mv, s->mv);
    uint32_t income = have > prev ? have - prev : 0u; /* net of leakage, boots and re-executed work */
    uint32_t p_inst;
    p_inst = mul_sat(income, r->period_ms); /* scaled to one demand period */
    if (p_inst != BL_EVE_U32) {
      p_inst /= dt;
    } else {
      p_inst = mul_sat(income / dt, r->period_ms);
    }
    if (p_inst > BL_EVE_P_MAX) {
      p_inst = BL_EVE_P_MAX;
    }
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
    up = sat_add(r->energy_mv2[current - 1u], muldiv256(r->energy_mv2[current - 1u], r->hyst_q8));
  }
  for (i = r->top; i < n; i++) {
    uint32_t need = r->energy_mv2[i];
    if (i < current) {
      need = sat_add(need, muldiv256(need, r->hyst_q8));
    }
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
