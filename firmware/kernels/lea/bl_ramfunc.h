/* BL_LEA_RAMFUNC: the lea kernels' and LEA driver's hot code, in SRAM when the image has room (one place for
 * the attribute; bl_lea_internal.h and msp430/bl_lea_driver.c include it). */
#ifndef BL_RAMFUNC_H
#define BL_RAMFUNC_H

/* A hot inner loop that may run from SRAM (MSP430): the FRAM controller's cache holds 4 lines of 8 bytes, so
 * a loop body longer than ~32 bytes misses on every pass and stalls NWAITS cycles a line (SLAU367 FRAM
 * controller; docs/msp430sim.md), while SRAM has no wait states. Its section .bl_ramfunc.<name> goes to the
 * board linker script's .ramfunc: in SRAM (copied from FRAM by the C start-up at every boot, so it is back
 * after a power cut) when the model's memory plan has room for it, else in FRAM where it runs in place
 * (codegen/memory.py decides per image; schedule.json memory_plan.ramfunc). SRAM is 4 KB: small loops only. */
#if defined(__MSP430__)
#define BL_LEA_RAMFUNC(name) __attribute__((noinline, section(".bl_ramfunc." #name)))
#else
#define BL_LEA_RAMFUNC(name)
#endif

#endif /* BL_RAMFUNC_H */
