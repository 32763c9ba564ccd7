/* batteryless Cortex-M startup (mps2-an386 under QEMU): vector table, .data copy, .bss clear, FPU on.
 * The .nvm section (NOLOAD) is deliberately left alone so its contents survive a reset. Section
 * boundaries come from the board's linker script; no address is written here. */
#include <stdint.h>

#include "bl_platform.h"

extern uint32_t __bl_data_start[], __bl_data_end[], __bl_data_load[];
extern uint32_t __bl_bss_start[], __bl_bss_end[];
extern uint32_t __bl_stack_top[];

void bl_reset_handler(void);
void bl_fault_handler(void);

/* System Control Block registers are architectural (ARMv7-M ARM), not board facts. */
#define BL_SCB_CPACR (*(volatile uint32_t *)0xE000ED88u)

typedef void (*bl_vector_t)(void);

__attribute__((used, section(".vectors"))) const bl_vector_t bl_vectors[16] = {
    (bl_vector_t)(uintptr_t)__bl_stack_top, /* initial SP */
    bl_reset_handler,                       /* reset */
    bl_fault_handler,                       /* NMI */
    bl_fault_handler,                       /* HardFault */
    bl_fault_handler,                       /* MemManage */
    bl_fault_handler,                       /* BusFault */
    bl_fault_handler,                       /* UsageFault */
    0, 0, 0, 0,                             /* reserved */
    bl_fault_handler,                       /* SVCall */
    bl_fault_handler,                       /* DebugMon */
    0,                                      /* reserved */
    bl_fault_handler,                       /* PendSV */
    bl_fault_handler,                       /* SysTick */
};

/* Plain word loops; -fno-tree-loop-distribute-patterns (CMakeLists) keeps GCC from calling memcpy here. */
void bl_reset_handler(void)
{
  uint32_t *src = __bl_data_load;
  uint32_t *dst = __bl_data_start;
  /* CP10/CP11 full access first: the hard-float ABI uses the FPU, and on an M-profile core with MVE (the
   * M55) the compiler may vectorise the loops below into vector stores, which fault while it is off */
  BL_SCB_CPACR |= (0xFu << 20);
  __asm volatile("dsb\n\tisb" ::: "memory");
  while (dst < __bl_data_end) {
    *dst++ = *src++;
  }
  /* four words per iteration, then the rest: the intermittent runtime pays for start-up at every boot, so
   * with power-on periods of ~1,000 instructions the loop overhead matters */
  for (dst = __bl_bss_start; dst + 4 <= __bl_bss_end; dst += 4) {
    dst[0] = 0u;
    dst[1] = 0u;
    dst[2] = 0u;
    dst[3] = 0u;
  }
  for (; dst < __bl_bss_end; dst++) {
    *dst = 0u;
  }
  bl_platform_init();
  bl_exit(bl_app_main());
}

void bl_fault_handler(void)
{
  bl_puts("bl: fault\n");
  bl_exit(99);
}

/* newlib with -nostartfiles wants these. */
void _init(void) {}
void _fini(void) {}
