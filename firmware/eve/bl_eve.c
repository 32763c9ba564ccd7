/* EVE mode selection: see bl_eve.h. Integer compares only (no floating point on the device). */
#include "bl_eve.h"
#include "bl_platform.h"

/* In NVM (BL_NVM): startup re-initialises RAM at every boot, so a value the emulator writes at a power-on
 * (batteryless.firmware.run(writes=...): the buffer's voltage at that boot) must survive it. */
BL_NVM volatile uint16_t bl_eve_supply_mv;

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
