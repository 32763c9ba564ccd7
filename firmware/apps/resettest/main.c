/* batteryless resettest: counts boots in a non-volatile (.nvm, NOLOAD) counter, prints it, then spins for
 * a fixed number of loop iterations (input: uint32 little-endian, default 100000) before exiting with the
 * boot count. A power cut (QEMU plugin reset, mspdebug reset) during the spin shows up as a higher count,
 * and the volatile counter shows that .bss was re-initialised. */
#include "bl_platform.h"

#define BL_RESETTEST_MAGIC 0xB007C0DEul

BL_NVM static volatile uint32_t nvm_magic;
BL_NVM static volatile uint32_t nvm_boots;
static volatile uint32_t ram_boots;

int bl_app_main(void)
{
  uint32_t spins = 100000ul;
  uint32_t i;
  uint8_t b[4];
  if (bl_input_read(b, 0u, 4u) == 4u) {
    spins = (uint32_t)b[0] | ((uint32_t)b[1] << 8) | ((uint32_t)b[2] << 16) | ((uint32_t)b[3] << 24);
  }
  if (nvm_magic != BL_RESETTEST_MAGIC) {
    nvm_magic = BL_RESETTEST_MAGIC;
    nvm_boots = 0u;
  }
  nvm_boots = nvm_boots + 1u;
  ram_boots = ram_boots + 1u;
  bl_puts("boot ");
  bl_put_u32(nvm_boots);
  bl_puts(" ram ");
  bl_put_u32(ram_boots);
  bl_putc('\n');
  bl_mark(1u);
  for (i = 0; i < spins; i++) {
    __asm volatile("" ::: "memory");
  }
  bl_mark(2u);
  bl_puts("finished\n");
  return (int)nvm_boots;
}
