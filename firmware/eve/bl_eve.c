/* EVE mode selection: see bl_eve.h. Integer compares only (no floating point on the device). */
#include "bl_eve.h"

volatile uint16_t bl_eve_supply_mv = 0u;

__attribute__((weak)) uint16_t bl_eve_read_mv(void)
{
  return bl_eve_supply_mv;
}

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
