/* batteryless host platform: stdout, exit(), marks counted. Non-volatile variables (BL_NVM, section
 * bl_nvm) are loaded from $BL_NVM_FILE at start and written back (atomically) at exit and at a simulated
 * power cut; $BL_CUT_AT_MARK=k cuts power at the k-th bl_mark() call of this boot. The input buffer is
 * patched into the executable image by the runner, as on the targets. */
#define _POSIX_C_SOURCE 200809L
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "bl_platform.h"

extern char __start_bl_nvm[] __attribute__((weak));
extern char __stop_bl_nvm[] __attribute__((weak));

volatile unsigned bl_mark_count;
static unsigned long bl_cut_at_mark;

static size_t nvm_size(void) { return __start_bl_nvm ? (size_t)(__stop_bl_nvm - __start_bl_nvm) : 0u; }

static void nvm_load(void)
{
  const char *path = getenv("BL_NVM_FILE");
  FILE *f;
  if (!path || nvm_size() == 0u) {
    return;
  }
  f = fopen(path, "rb");
  if (!f) {
    return; /* first power-up: NVM keeps its initial (zero) contents */
  }
  if (fread(__start_bl_nvm, 1, nvm_size(), f) != nvm_size()) {
    memset(__start_bl_nvm, 0, nvm_size()); /* a short or foreign file is treated as erased NVM */
  }
  fclose(f);
}

static void nvm_save(void)
{
  const char *path = getenv("BL_NVM_FILE");
  char tmp[4096];
  FILE *f;
  if (!path || nvm_size() == 0u) {
    return;
  }
  if (snprintf(tmp, sizeof tmp, "%s.tmp", path) >= (int)sizeof tmp) {
    return;
  }
  f = fopen(tmp, "wb");
  if (!f) {
    return;
  }
  if (fwrite(__start_bl_nvm, 1, nvm_size(), f) == nvm_size() && fclose(f) == 0) {
    rename(tmp, path);
  } else {
    remove(tmp);
  }
}

void bl_platform_init(void)
{
  const char *cut = getenv("BL_CUT_AT_MARK");
  bl_cut_at_mark = cut ? strtoul(cut, NULL, 10) : 0ul;
  nvm_load();
}

void bl_putc(char c) { putchar(c); }

__attribute__((noinline)) void bl_mark(unsigned id)
{
  (void)id;
  bl_mark_count++;
  if (bl_cut_at_mark != 0ul && bl_mark_count == bl_cut_at_mark) {
    fflush(stdout);
    nvm_save();
    _exit(BL_HOST_POWER_CUT_EXIT);
  }
}

void bl_exit(int code)
{
  fflush(stdout);
  nvm_save();
  exit(code);
}

int main(void)
{
  bl_platform_init();
  bl_exit(bl_app_main());
}
