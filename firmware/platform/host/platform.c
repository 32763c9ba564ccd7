/* batteryless host platform: stdout, exit(), marks counted in a global for tests.
 * The input buffer is patched into the executable image by the runner, as on the targets. */
#include <stdio.h>
#include <stdlib.h>

#include "bl_platform.h"

volatile unsigned bl_mark_count;

void bl_platform_init(void) {}

void bl_putc(char c) { putchar(c); }

__attribute__((noinline)) void bl_mark(unsigned id)
{
  (void)id;
  bl_mark_count++;
}

void bl_exit(int code)
{
  fflush(stdout);
  exit(code);
}

int main(void)
{
  bl_platform_init();
  bl_exit(bl_app_main());
}
