/* batteryless MSP430 startup (clang, small memory model): reset vector, stack, watchdog off, .data copy,
 * .bss clear. The .nvm section (FRAM, NOLOAD) is left alone so checkpoints survive power loss.
 * Section boundaries and the stack top come from the board's linker script. */
#include <stdint.h>

#include "bl_msp430.h"
#include "bl_platform.h"

extern uint16_t __bl_data_start[], __bl_data_end[], __bl_data_load[];
extern uint16_t __bl_bss_start[], __bl_bss_end[];

void bl_reset(void);
void bl_c_start(void);
void bl_unexpected_irq(void);

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
  while (dst < __bl_data_end) {
    *dst++ = *src++;
  }
  for (dst = __bl_bss_start; dst < __bl_bss_end; dst++) {
    *dst = 0u;
  }
  bl_platform_init();
  bl_exit(bl_app_main());
}

void bl_unexpected_irq(void)
{
  bl_puts("bl: unexpected interrupt\n");
  bl_exit(98);
}
