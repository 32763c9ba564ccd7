/* batteryless Cortex-M platform under QEMU: output and exit code through ARM semihosting (SYS_OPEN ":tt",
 * SYS_WRITE line by line, SYS_EXIT_EXTENDED), marks through a table the QEMU plugin watches.
 * No newlib stdio on the output path: a power-cut run reboots often, and QEMU retranslates all code after
 * each reset (the image is reloaded), so less code per boot means more boots per second. */
#include <stdint.h>

#include "bl_platform.h"

#define BL_SH_SYS_OPEN 0x01u
#define BL_SH_SYS_WRITE 0x05u
#define BL_SH_SYS_EXIT_EXTENDED 0x20u
#define BL_SH_ADP_STOPPED_APPLICATION_EXIT 0x20026u
#define BL_SH_OPEN_MODE_W 4u

static int bl_semihost(unsigned op, void *arg)
{
  register unsigned r0 __asm("r0") = op;
  register void *r1 __asm("r1") = arg;
  __asm volatile("bkpt 0xAB" : "+r"(r0) : "r"(r1) : "memory");
  return (int)r0;
}

static int bl_stdout = -1;
static char bl_line[128];
static unsigned bl_line_len;

static void bl_flush(void)
{
  unsigned args[3];
  if (bl_line_len == 0u || bl_stdout < 0) {
    bl_line_len = 0u;
    return;
  }
  args[0] = (unsigned)bl_stdout;
  args[1] = (unsigned)(uintptr_t)bl_line;
  args[2] = bl_line_len;
  (void)bl_semihost(BL_SH_SYS_WRITE, args);
  bl_line_len = 0u;
}

void bl_platform_init(void)
{
  static const char tt[] = ":tt";
  unsigned args[3];
  args[0] = (unsigned)(uintptr_t)tt;
  args[1] = BL_SH_OPEN_MODE_W;
  args[2] = sizeof tt - 1u;
  bl_stdout = bl_semihost(BL_SH_SYS_OPEN, args);
  bl_line_len = 0u;
}

void bl_putc(char c)
{
  bl_line[bl_line_len++] = c;
  if (c == '\n' || bl_line_len == sizeof bl_line) {
    bl_flush();
  }
}

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
  bl_flush();
  block[0] = BL_SH_ADP_STOPPED_APPLICATION_EXIT;
  block[1] = (unsigned)code;
  (void)bl_semihost(BL_SH_SYS_EXIT_EXTENDED, block);
  for (;;) {
  }
}
