/* DSPLib software model: what counts as LEA RAM.
 * MSP430 (stand-in link only): the board's lea_ram region, origin and usable length from the generated
 * bl_board.h (board.toml), so LEA's reserved stack at the top is excluded.
 * Host: the section DSPLIB_DATA places objects in (bl_learam); the linker defines its bounds. The symbols
 * are weak so that a program with no LEA data links (then no address is valid). */
#include "msp_model.h"

#if defined(__MSP430__)
#include "bl_board.h"
#define LEA_LO ((uintptr_t)BL_REGION_LEA_RAM_ORIGIN)
#define LEA_HI ((uintptr_t)(BL_REGION_LEA_RAM_ORIGIN + BL_REGION_LEA_RAM_USABLE))
#else
extern char __start_bl_learam[] __attribute__((weak, visibility("hidden")));
extern char __stop_bl_learam[] __attribute__((weak, visibility("hidden")));
#define LEA_LO ((uintptr_t)__start_bl_learam)
#define LEA_HI ((uintptr_t)__stop_bl_learam)
#endif

int msp_model_lea_valid(const void *p, uint32_t bytes, uint32_t align) {
  const uintptr_t a = (uintptr_t)p;
  if (p == NULL || LEA_LO == 0u || align == 0u) return 0;
  if (a % align != 0u) return 0;
  if (a < LEA_LO || a > LEA_HI) return 0;
  return (uintptr_t)bytes <= LEA_HI - a;
}
