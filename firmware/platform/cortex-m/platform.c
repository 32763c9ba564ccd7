/* batteryless Cortex-M platform under QEMU: output through ARM semihosting (newlib rdimon stdio), exit
 * code through SYS_EXIT_EXTENDED, marks as an empty function the QEMU plugin watches. */
#include <stdint.h>
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

/* Marks carry their id to the QEMU plugin through the address executed: bl_mark(id) branches to entry
 * id % 256 of a table of 256 two-byte "bx lr" instructions, and the plugin (marktable=ADDR:256:2) records
 * (count, id) when an entry runs. The plugin API of QEMU 7.2 cannot read registers or memory. */
__asm__(".section .text.bl_mark_table,\"ax\",%progbits\n"
        ".balign 4\n"
        ".global bl_mark_table\n"
        ".type bl_mark_table, %function\n"
        ".thumb_func\n"
        "bl_mark_table:\n"
        ".rept 256\n"
        "  bx lr\n"
        ".endr\n"
        ".size bl_mark_table, . - bl_mark_table\n"
        ".text\n");
void bl_mark_table(void);

__attribute__((noinline, noipa)) void bl_mark(unsigned id)
{
  void (*entry)(void) = (void (*)(void))((uintptr_t)&bl_mark_table + 2u * (id & 0xFFu));
  entry();
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
