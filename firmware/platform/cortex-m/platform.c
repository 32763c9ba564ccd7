/* batteryless Cortex-M platform under QEMU: output through ARM semihosting (newlib rdimon stdio), exit
 * code through SYS_EXIT_EXTENDED, marks as an empty function the QEMU plugin watches. */
#include <stdio.h>

#include "bl_platform.h"

void initialise_monitor_handles(void);

#define BL_SH_SYS_EXIT_EXTENDED 0x20u
#define BL_SH_ADP_STOPPED_APPLICATION_EXIT 0x20026u

static int bl_semihost(unsigned op, void *arg)
{
  register unsigned r0 __asm("r0") = op;
  register void *r1 __asm("r1") = arg;
  __asm volatile("bkpt 0xAB" : "+r"(r0) : "r"(r1) : "memory");
  return (int)r0;
}

void bl_platform_init(void)
{
  initialise_monitor_handles();
  setvbuf(stdout, NULL, _IOLBF, 0);
}

void bl_putc(char c) { putchar(c); }

__attribute__((noinline, noipa)) void bl_mark(unsigned id)
{
  __asm volatile("" : : "r"(id) : "memory");
}

void bl_exit(int code)
{
  unsigned block[2];
  fflush(stdout);
  block[0] = BL_SH_ADP_STOPPED_APPLICATION_EXIT;
  block[1] = (unsigned)code;
  bl_semihost(BL_SH_SYS_EXIT_EXTENDED, block);
  for (;;) {
  }
}
