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

#define BL_EVE_U32 0xFFFFFFFFull

static uint64_t energy_nj(uint32_t cap_nf, uint16_t mv)
{
  return (uint64_t)cap_nf * mv * mv / 2000000u;
}

/* eve/select.py rate_select, bit for bit: 64-bit integers, every division on non-negative operands. */
uint8_t bl_eve_select_rate(const bl_eve_table *t, bl_eve_rate_state *s, uint16_t mv, uint32_t ms,
                           uint8_t current)
{
  const bl_eve_rate *r = t->rate;
  uint64_t e_now = energy_nj(r->cap_nf, mv);
  uint64_t e_ref = energy_nj(r->cap_nf, r->ref_mv);
  int64_t budget;
  uint64_t spent;
  uint8_t n = (uint8_t)t->n_modes;
  uint8_t pick = (uint8_t)(n - 1u);
  uint8_t i;

  if (ms < s->ms) { /* the clock went back: measure from here, keep the estimate */
    s->mv = mv;
    s->ms = ms;
    s->spent_nj = 0u;
  }
  if (ms - s->ms >= r->min_dt_ms) {
    int64_t income = (int64_t)e_now + (int64_t)s->spent_nj - (int64_t)energy_nj(r->cap_nf, s->mv);
    uint64_t p_inst = income > 0 ? (uint64_t)income * 1000u / (uint64_t)(ms - s->ms) : 0u;
    uint64_t p = ((uint64_t)s->p_nw * (256u - r->ewma_q8) + p_inst * r->ewma_q8) / 256u;
    s->p_nw = (uint32_t)(p < BL_EVE_U32 ? p : BL_EVE_U32);
    s->mv = mv;
    s->ms = ms;
    s->spent_nj = 0u;
  }
  budget = (int64_t)((uint64_t)s->p_nw * r->period_ms / 1000u * r->income_q8 / 256u);
  if (e_now >= e_ref) {
    budget += (int64_t)((uint64_t)r->gain_q8 * (e_now - e_ref) / 256u);
  } else {
    budget -= (int64_t)((uint64_t)r->gain_q8 * (e_ref - e_now) / 256u);
  }
  if (mv >= r->full_mv && current > r->top && current < n) {
    /* a full buffer clips the income: the estimate is a lower bound, probe one mode up */
    int64_t up = (int64_t)((uint64_t)r->energy_nj[current - 1u] * (256u + r->hyst_q8) / 256u);
    if (up > budget) {
      budget = up;
    }
  }
  for (i = r->top; i < n; i++) {
    uint64_t need = r->energy_nj[i];
    if (i < current) {
      need += need * r->hyst_q8 / 256u;
    }
    if (budget >= (int64_t)need) {
      pick = i;
      break;
    }
  }
  spent = (uint64_t)s->spent_nj + r->energy_nj[pick];
  s->spent_nj = (uint32_t)(spent < BL_EVE_U32 ? spent : BL_EVE_U32);
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
