/* EVE board hook on an MSP430 with ADC12_B: the energy buffer's voltage read through the ADC (docs/eve.md).
 *
 * The buffer feeds the supply, so its voltage is AVCC. ADC12_B converts AVCC/2 (the internal battery-monitor
 * divider, mapped to the MAX input channel by ADC12CTL3.ADC12BATMAP) against the internal reference of
 * REF_A; mV = code * divider * Vref / 2^bits. Addresses, channel, divider and reference come from the
 * board's [supply_adc] table (board.toml, with TI's documents cited there) through bl_board.h.
 *
 * Opt-in (build defines BL_EVE_SUPPLY_ADC=1): without it the weak bl_eve_read_mv of firmware/eve/bl_eve.c
 * reads a variable the emulator sets, which is what mspdebug's simulator (no ADC) needs. The project's
 * MSP430 simulator (tools/msp430sim) models these registers with a supply voltage the host sets. */
#include "bl_board.h"

#if defined(BL_EVE_SUPPLY_ADC) && BL_EVE_SUPPLY_ADC

#include <stdint.h>

#include "bl_eve.h"

#ifndef BL_BOARD_SUPPLY_ADC12_BASE
#error "BL_EVE_SUPPLY_ADC: this board.toml has no [supply_adc] table"
#endif

#define ADC_REG(off) (*(volatile uint16_t *)(BL_BOARD_SUPPLY_ADC12_BASE + (off)))
#define ADC12CTL0 ADC_REG(0x00u)
#define ADC12CTL1 ADC_REG(0x02u)
#define ADC12CTL2 ADC_REG(0x04u)
#define ADC12CTL3 ADC_REG(0x06u)
#define ADC12IFGR0 ADC_REG(0x0Cu)
#define ADC12MCTL0 ADC_REG(0x20u)
#define ADC12MEM0 ADC_REG(0x60u)
#define REFCTL0 (*(volatile uint16_t *)BL_BOARD_SUPPLY_REF_BASE)

/* ADC12_B bits (SLAU367 ADC12_B registers) */
#define ADC12SC 0x0001u
#define ADC12ENC 0x0002u
#define ADC12ON 0x0010u
#define ADC12SHT0_16 0x0200u /* 16 ADC12CLK cycles: >= 1.7 us at MODOSC, the V1/2 minimum sample time */
#define ADC12SHP 0x0200u     /* sample-and-hold from the sampling timer */
#define ADC12RES_12 0x0020u
#define ADC12BATMAP 0x0040u
#define ADC12VRSEL_VREF 0x0100u /* VR+ = buffered internal reference, VR- = AVSS */
#define ADC12IFG0 0x0001u
/* REF_A bits (SLAU367 REF_A registers) */
#define REFON 0x0001u
#define REFGENBUSY 0x0400u
#define REFGENRDY 0x1000u
#if BL_BOARD_SUPPLY_REF_MV == 1200
#define REFVSEL_BITS 0x0000u
#elif BL_BOARD_SUPPLY_REF_MV == 2000
#define REFVSEL_BITS 0x0010u
#elif BL_BOARD_SUPPLY_REF_MV == 2500
#define REFVSEL_BITS 0x0020u
#else
#error "[supply_adc].ref_mv must be one of REF_A's levels: 1200, 2000, 2500"
#endif

uint16_t bl_eve_read_mv(void)
{
  uint32_t code;
  while (REFCTL0 & REFGENBUSY) {
  }
  REFCTL0 = (uint16_t)(REFVSEL_BITS | REFON);
  while (!(REFCTL0 & REFGENRDY)) {
  }
  ADC12CTL0 = 0u; /* ENC low: the control bits may change */
  ADC12CTL0 = (uint16_t)(ADC12SHT0_16 | ADC12ON);
  ADC12CTL1 = ADC12SHP;
  ADC12CTL2 = ADC12RES_12;
  ADC12CTL3 = ADC12BATMAP; /* conversion start address 0: the result lands in ADC12MEM0 */
  ADC12MCTL0 = (uint16_t)(ADC12VRSEL_VREF | BL_BOARD_SUPPLY_CHANNEL);
  ADC12CTL0 |= (uint16_t)(ADC12ENC | ADC12SC);
  while (!(ADC12IFGR0 & ADC12IFG0)) {
  }
  code = ADC12MEM0; /* reading it clears ADC12IFG0 */
  /* both off again: each draws current from the very buffer being measured */
  ADC12CTL0 = 0u;
  REFCTL0 = 0u;
  return (uint16_t)((code * (BL_BOARD_SUPPLY_DIVIDER * (uint32_t)BL_BOARD_SUPPLY_REF_MV)) >>
                    BL_BOARD_SUPPLY_BITS);
}

#else
/* ISO C: a translation unit needs at least one declaration */
typedef int bl_eve_supply_adc_unused;
#endif
