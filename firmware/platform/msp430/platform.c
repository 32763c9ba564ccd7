/* batteryless MSP430 platform: output goes to a RAM buffer (bl_out_buf, bl_out_len) that the runner reads
 * with mspdebug once the program reaches bl_done; the exit code is left in bl_exit_code. */
#include "bl_msp430.h"
#include "bl_platform.h"

#ifndef BL_OUT_CAPACITY
#define BL_OUT_CAPACITY 1024u
#endif

/* Not cleared at start-up (.noinit, board linker script): only its first bl_out_len bytes are ever read,
 * and clearing 1 KB cost ~4,600 MCLK cycles of every boot — most of an intermittent boot on the FR5994. */
__attribute__((section(".noinit"))) char bl_out_buf[BL_OUT_CAPACITY];
volatile uint16_t bl_out_len;
volatile uint16_t bl_out_overflow;
volatile int16_t bl_exit_code;

void bl_platform_init(void)
{
  bl_out_len = 0u;
  bl_out_overflow = 0u;
}

void bl_putc(char c)
{
  if (bl_out_len < BL_OUT_CAPACITY) {
    bl_out_buf[bl_out_len++] = c;
  } else {
    bl_out_overflow = 1u;
  }
}

__attribute__((noinline)) void bl_mark(unsigned id) { BL_MARK_REG = (uint16_t)id; }

/* The end of a run: interrupts off, CPU off (LPM4) for good. The runner puts a breakpoint here; mspdebug's
 * simulator also stops running once CPUOFF is set with no interrupt pending. */
__attribute__((noinline, noreturn, used)) void bl_done(void)
{
  for (;;) {
    __asm volatile("dint\n\tnop\n\tbis #0x00F0, r2\n\tnop" ::: "memory");
  }
}

void bl_exit(int code)
{
  bl_exit_code = (int16_t)code;
  bl_done();
}
