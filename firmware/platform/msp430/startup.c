/* batteryless MSP430 startup (clang, small memory model): reset vector, stack, watchdog off, .data copy,
 * .bss clear. The .nvm section (FRAM, NOLOAD) is left alone so checkpoints survive power loss.
 * Section boundaries and the stack top come from the board's linker script. */
#include <stdint.h>

#include "bl_board.h"
#include "bl_msp430.h"
#include "bl_platform.h"

/* MCLK = SMCLK = DCO at the board's clock_hz (board.toml); FRAM wait state above 8 MHz. While switching,
 * the dividers are set to /4 first (the FR5xx CS errata advice for DCO changes), then to /1.
 * Not exercised on hardware in this project (mspdebug's simulator does not model CS or FRAM waits). */
static void bl_clock_init(void)
{
#if BL_BOARD_CLOCK_HZ == 16000000UL
  BL_FRCTL0 = BL_FRCTLPW | BL_NWAITS_1;
  BL_CSCTL0 = BL_CSKEY;
  BL_CSCTL3 = BL_DIVA_4 | BL_DIVS_4 | BL_DIVM_4;
  BL_CSCTL1 = BL_DCORSEL | BL_DCOFSEL_4;
#elif BL_BOARD_CLOCK_HZ == 8000000UL
  BL_CSCTL0 = BL_CSKEY;
  BL_CSCTL3 = BL_DIVA_4 | BL_DIVS_4 | BL_DIVM_4;
  BL_CSCTL1 = BL_DCORSEL | BL_DCOFSEL_3;
#elif BL_BOARD_CLOCK_HZ == 1000000UL
  BL_CSCTL0 = BL_CSKEY;
  BL_CSCTL1 = BL_DCOFSEL_0;
#else
#error "board.toml clock_hz must be 1, 8 or 16 MHz on the MSP430FR5xx platform layer"
#endif
  BL_CSCTL2 = BL_SELA_VLOCLK | BL_SELS_DCOCLK | BL_SELM_DCOCLK;
  BL_CSCTL3 = 0u;
  BL_CSCTL0 = 0u; /* lock CS (any value but the key in the high byte) */
}

extern uint16_t __bl_data_start[], __bl_data_end[], __bl_data_load[];
extern uint16_t __bl_bss_start[], __bl_bss_end[];
extern uint16_t __bl_ramfunc_start[], __bl_ramfunc_end[], __bl_ramfunc_load[];

void bl_reset(void);
void bl_c_start(void);
void bl_unexpected_irq(void);
void bl_mpy_init(void);

/* 56 vectors; the last (0xFFFE) is reset. Unused interrupts go to bl_unexpected_irq. */
__attribute__((used, section(".vectors"))) void (*const bl_vectors[56])(void) = {
    [0 ... 54] = bl_unexpected_irq,
    [55] = bl_reset,
};

__attribute__((naked, used, section(".text.bl_reset"))) void bl_reset(void)
{
  __asm volatile("mov #__bl_stack_top, r1\n\t"
                 "call #bl_c_start\n\t");
}

__attribute__((used, noreturn)) void bl_c_start(void)
{
  uint16_t *src = __bl_data_load;
  uint16_t *dst = __bl_data_start;
  BL_WDTCTL = BL_WDTPW | BL_WDTHOLD;
  bl_clock_init();
  while (dst < __bl_data_end) {
    *dst++ = *src++;
  }
  /* Hot code placed in SRAM (the linker script's .ramfunc): copied at every boot, SRAM is lost at a power
   * cut; one DMA block (2 cycles a word against ~9 for this CPU loop: ~1 k cycles, not ~4.6 k, for the lea
   * images' ~1 KB). In FRAM its load and run addresses are the same and there is nothing to copy. */
  src = __bl_ramfunc_load;
  dst = __bl_ramfunc_start;
  if (src != dst && dst < __bl_ramfunc_end) {
    BL_DMACTL0 = 0u; /* DMA0TSEL = 0: DMAREQ triggers channel 0 */
    BL_DMA0SA_L = (uint16_t)(uintptr_t)src;
    BL_DMA0SA_H = 0u;
    BL_DMA0DA_L = (uint16_t)(uintptr_t)dst;
    BL_DMA0DA_H = 0u;
    BL_DMA0SZ = (uint16_t)(((uintptr_t)__bl_ramfunc_end - (uintptr_t)dst) >> 1);
    BL_DMA0CTL = BL_DMA_BLOCK_WORD_INC; /* returns when the block is done */
  }
  for (dst = __bl_bss_start; dst < __bl_bss_end; dst++) {
    *dst = 0u;
  }
  bl_mpy_init(); /* after .bss is cleared: it sets a .bss variable */
  bl_platform_init();
  bl_exit(bl_app_main());
}

void bl_unexpected_irq(void)
{
  bl_puts("bl: unexpected interrupt\n");
  bl_exit(98);
}
