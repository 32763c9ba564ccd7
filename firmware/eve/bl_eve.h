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

/* The rate rule (eve/select.py RatePolicy, rate_select): the harvested power estimated from the voltage
 * change since the previous reading plus the energy spent since, and a budget
 *   income * P_in * period + gain * (E(V) - E(ref_mv))
 * for the next inference; the largest mode (from `top` to `bottom`) whose energy fits runs, else `bottom`. Energies in units of
 * C/2 * (1 mV)^2 (the buffer at V mV holds V^2 of them): unsigned 32-bit arithmetic only. Generated data. */
typedef struct {
  const uint32_t *energy_mv2; /* per mode, largest first (effective energy per inference) */
  uint32_t period_ms;         /* one input every period_ms */
  uint32_t min_dt_ms;         /* a reading closer to the previous one does not update the estimate (>= 1) */
  uint16_t ref_mv;            /* reserve level */
  uint16_t gain_q8;           /* share of the stored energy above ref_mv in the budget (256 = all) */
  uint16_t ewma_q8;           /* weight of the newest income sample (256 = newest only) */
  uint16_t hyst_q8;           /* moving up needs budget >= E * (1 + hyst_q8 / 256) */
  uint16_t full_mv;           /* at or above: the buffer clips the income, probe one mode up */
  uint8_t top;                /* the largest mode the rule may pick */
  uint8_t bottom;             /* the smallest mode it may pick, and the one it runs when none fits */
  uint16_t income_q8;         /* weight of the expected income (256 = the estimate as it is) */
  /* computed at generation (eve/select.py rate_constants), so the device divides nothing: */
  const uint32_t *energy_up_mv2; /* per mode, energy_mv2 * (1 + hyst_q8 / 256): moving up to it */
  uint32_t ref_mv2;              /* ref_mv squared */
  const uint16_t *recip;         /* [128]: floor(period_ms * 2^recip_shift / m), the income rate's reciprocals */
  uint8_t recip_shift;
} bl_eve_rate;

/* The rate rule's record, kept in NVM across power failures. Zeros ("the buffer was empty at time 0") until
 * the first reading; `magic` tells a record from the NOLOAD section's power-up contents. */
typedef struct {
  uint32_t ms;        /* the previous reading's time */
  uint32_t spent_mv2; /* energy of the inferences started since */
  uint32_t p_mv2;     /* income per demand period, running estimate */
  uint16_t mv;        /* the previous reading's voltage */
  uint16_t magic;
} bl_eve_rate_state;
#define BL_EVE_RATE_MAGIC 0xE7E5u

typedef struct {
  uint16_t n_modes;          /* 1 .. 8 */
  const uint16_t *stay_mv;   /* keep (or move down to) mode i while V >= stay_mv[i] */
  const uint16_t *enter_mv;  /* move up to mode i (smaller index than the current) only if V >= enter_mv[i] */
  const char *const *names;  /* for logs */
  const bl_eve_rate *rate;   /* the rate rule; NULL: the thresholds above */
} bl_eve_table;

/* The generated table (eve_table.c of an EVE model). */
extern const bl_eve_table bl_eve_modes;

/* The largest mode that fits at `mv` after running `current`; the smallest mode if none fits. */
uint8_t bl_eve_select(const bl_eve_table *t, uint16_t mv, uint8_t current);

/* The rate rule at `mv` and device time `ms` after running `current`; updates *s. */
uint8_t bl_eve_select_rate(const bl_eve_table *t, bl_eve_rate_state *s, uint16_t mv, uint32_t ms,
                           uint8_t current);

/* The mode for the next inference after `current`: reads the hooks, then the rate rule if the table has
 * one (its record bl_eve_state), the thresholds otherwise. */
uint8_t bl_eve_choose(const bl_eve_table *t, uint8_t current);
extern bl_eve_rate_state bl_eve_state;

/* Board hook: the device's time in ms (the rate rule's clock; it must keep counting across power failures:
 * a remanence timer or the sensor's timestamp on a board). The default (weak) reads bl_eve_now_ms, a
 * variable in NVM the emulator writes with the trace's time. */
uint32_t bl_eve_read_ms(void);
extern volatile uint32_t bl_eve_now_ms;

/* Board hook: the energy buffer's voltage in millivolts. The default (weak) reads bl_eve_supply_mv, a
 * variable in NVM (BL_NVM) that the emulator writes at every power-on (the energy buffer's voltage at that
 * boot, from the trace) or a host test sets; an MSP430 board overrides it with an ADC reading. */
uint16_t bl_eve_read_mv(void);
extern volatile uint16_t bl_eve_supply_mv;

#ifdef __cplusplus
}
#endif

#endif /* BL_EVE_H */
