/* EVE mode selection (host/batteryless/eve/select.py is the reference; docs/eve.md).
 *
 * The mode table is generated data (eve_table.c from the EVE search / compress --modes): per mode, largest
 * first, the buffer voltage in millivolts it needs to stay in or to be entered from a smaller mode. */
#ifndef BL_EVE_H
#define BL_EVE_H

#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef struct {
  uint16_t n_modes;          /* 1 .. 8 */
  const uint16_t *stay_mv;   /* keep (or move down to) mode i while V >= stay_mv[i] */
  const uint16_t *enter_mv;  /* move up to mode i (smaller index than the current) only if V >= enter_mv[i] */
  const char *const *names;  /* for logs */
} bl_eve_table;

/* The generated table (eve_table.c of an EVE model). */
extern const bl_eve_table bl_eve_modes;

/* The largest mode that fits at `mv` after running `current`; the smallest mode if none fits. */
uint8_t bl_eve_select(const bl_eve_table *t, uint16_t mv, uint8_t current);

/* Board hook: the energy buffer's voltage in millivolts. The default (weak) reads bl_eve_supply_mv, a
 * variable in NVM (BL_NVM) that the emulator writes at every power-on (the energy buffer's voltage at that
 * boot, from the trace) or a host test sets; an MSP430 board overrides it with an ADC reading. */
uint16_t bl_eve_read_mv(void);
extern volatile uint16_t bl_eve_supply_mv;

#ifdef __cplusplus
}
#endif

#endif /* BL_EVE_H */
