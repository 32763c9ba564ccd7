/* The few MSP430FR5xx peripheral registers batteryless touches (SLAU367 / SLASE54D register maps).
 * Debian's msp430mcu headers predate the FR5994, so they are written here from the datasheet. */
#ifndef BL_MSP430_H
#define BL_MSP430_H
#include <stdint.h>

#define BL_WDTCTL (*(volatile uint16_t *)0x015Cu) /* watchdog timer control */
#define BL_WDTPW 0x5A00u
#define BL_WDTHOLD 0x0080u

/* bl_mark() writes the mark id to the board's [emulator].mark_register (CRCDIRB, CRC16 data in, on the
 * FR59xx boards): harmless on the chip (it only feeds the CRC engine) and an IO write that mspdebug's
 * tracer device logs with its MCLK timestamp, which is how the runner times marks. */
#include "bl_board.h"
#ifndef BL_BOARD_MARK_REGISTER
#error "board.toml [emulator].mark_register is not set for this MSP430 board"
#endif
#define BL_MARK_REG (*(volatile uint16_t *)BL_BOARD_MARK_REGISTER)

#endif
