/* The few MSP430FR5xx peripheral registers batteryless touches (SLAU367 / SLASE54D register maps).
 * Debian's msp430mcu headers predate the FR5994, so they are written here from the datasheet. */
#ifndef BL_MSP430_H
#define BL_MSP430_H
#include <stdint.h>

#define BL_WDTCTL (*(volatile uint16_t *)0x015Cu) /* watchdog timer control */
#define BL_WDTPW 0x5A00u
#define BL_WDTHOLD 0x0080u

/* MPY32 hardware multiplier (FR5xx): its first eight words are the classic 16x16 interface
 * (MPY, MPYS, MAC, MACS, OP2, RESLO, RESHI, SUMEXT). */
#define BL_MPY32_BASE_REG (*(volatile uint16_t *)0x04C0u)

/* DMA channel 0 (SLAU367 chapter 11; base 0x0500, SLASE54D): one software-triggered block transfer, word to
 * word, both addresses incremented; the CPU is halted until it is done (2 MCLK cycles a word). The start-up
 * copies the hot code with it (the lea driver, firmware/kernels/lea/msp430, has its own use of channel 0). */
#define BL_DMACTL0 (*(volatile uint16_t *)0x0500u)
#define BL_DMA0CTL (*(volatile uint16_t *)0x0510u)
#define BL_DMA0SA_L (*(volatile uint16_t *)0x0512u)
#define BL_DMA0SA_H (*(volatile uint16_t *)0x0514u)
#define BL_DMA0DA_L (*(volatile uint16_t *)0x0516u)
#define BL_DMA0DA_H (*(volatile uint16_t *)0x0518u)
#define BL_DMA0SZ (*(volatile uint16_t *)0x051Au)
#define BL_DMA_BLOCK_WORD_INC 0x1F11u /* DMADT 1 | DMADSTINCR 3 | DMASRCINCR 3 | DMAEN | DMAREQ */

/* FRAM controller: one wait state is required above 8 MHz (SLASE54D). */
#define BL_FRCTL0 (*(volatile uint16_t *)0x0140u)
#define BL_FRCTLPW 0xA500u
#define BL_NWAITS_1 0x0010u

/* Clock system (CS, SLAU367): password-protected; DCO range/frequency select; clock sources. */
#define BL_CSCTL0 (*(volatile uint16_t *)0x0160u)
#define BL_CSCTL1 (*(volatile uint16_t *)0x0162u)
#define BL_CSCTL2 (*(volatile uint16_t *)0x0164u)
#define BL_CSCTL3 (*(volatile uint16_t *)0x0166u)
#define BL_CSKEY 0xA500u
#define BL_DCORSEL 0x0040u
#define BL_DCOFSEL_0 0x0000u /* 1 MHz (DCORSEL=0) */
#define BL_DCOFSEL_3 0x0006u /* 8 MHz with DCORSEL=1 */
#define BL_DCOFSEL_4 0x0008u /* 16 MHz with DCORSEL=1 */
#define BL_SELA_VLOCLK 0x0100u
#define BL_SELS_DCOCLK 0x0030u
#define BL_SELM_DCOCLK 0x0003u
#define BL_DIVM_4 0x0002u
#define BL_DIVS_4 0x0020u
#define BL_DIVA_4 0x0200u

/* CRC32 module, CRC-32 part (SLAU367 chapter "CRC32 Module", register table; the base is a board fact,
 * board.toml [crc32] -> BL_BOARD_CRC32_BASE, absent on chips without the module): seed CRC32INIRESW0/W1,
 * write data words to CRC32DIW0 (low byte first), read the reflected CRC-32 register (zlib's order) from the
 * result-reverse words, RESRW1 low and RESRW0 high. BL_CRC32_PROBE_*: that register after a seed of
 * 0xFFFFFFFF and the word BL_CRC32_PROBE_WORD, i.e. ~zlib.crc32(b"\xa3\xb5") (tests/test_flex_crc.py). */
#include "bl_board.h"
#ifdef BL_BOARD_CRC32_BASE
#define BL_CRC32DIW0 (*(volatile uint16_t *)(BL_BOARD_CRC32_BASE + 0x00u))
#define BL_CRC32INIRESW0 (*(volatile uint16_t *)(BL_BOARD_CRC32_BASE + 0x08u))
#define BL_CRC32INIRESW1 (*(volatile uint16_t *)(BL_BOARD_CRC32_BASE + 0x0Au))
#define BL_CRC32RESRW1 (*(volatile uint16_t *)(BL_BOARD_CRC32_BASE + 0x0Cu))
#define BL_CRC32RESRW0 (*(volatile uint16_t *)(BL_BOARD_CRC32_BASE + 0x0Eu))
#define BL_CRC32_PROBE_WORD 0xB5A3u
#define BL_CRC32_PROBE_LO 0x4529u
#define BL_CRC32_PROBE_HI 0x8007u
#endif

/* bl_mark() writes the mark id to the board's [emulator].mark_register (CRCDIRB, CRC16 data in, on the
 * FR59xx boards): harmless on the chip (it only feeds the CRC engine) and an IO write that mspdebug's
 * tracer device logs with its MCLK timestamp, which is how the runner times marks. */
#include "bl_board.h"
#ifndef BL_BOARD_MARK_REGISTER
#error "board.toml [emulator].mark_register is not set for this MSP430 board"
#endif
#define BL_MARK_REG (*(volatile uint16_t *)BL_BOARD_MARK_REGISTER)

#endif
