/* batteryless platform layer: the few services every firmware app uses, implemented once per platform
 * (firmware/platform/{host,msp430,cortex-m}). Board facts (addresses, sizes, clock) come from the
 * generated bl_board.h, never from this file.
 *
 *   output   bl_putc/bl_puts/bl_put_i32/bl_put_i64: text lines. Host: stdout. QEMU: semihosting (QEMU's
 *            stdout). MSP430: the RAM buffer bl_out_buf/bl_out_len, read back by the runner at bl_done.
 *   input    bl_input: a buffer in the ELF image (const, in the code region) that the host runner patches
 *            before each run (magic "BLIN", length, bytes); firmware reads it with bl_input_data().
 *   marks    bl_mark(id): an empty, never-inlined function; the QEMU plugin and the mspdebug runner record
 *            the instruction / cycle count each time it is entered (instrumentation points).
 *   exit     bl_exit(code): host exit(), QEMU SYS_EXIT_EXTENDED, MSP430 stores the code and enters bl_done.
 *   nvm      BL_NVM: puts a variable in the board's non-volatile NOLOAD section (FRAM / QEMU NOLOAD RAM /
 *            host: section bl_nvm, loaded from and saved to $BL_NVM_FILE when that is set).
 *   cuts     host only: $BL_CUT_AT_MARK=k ends the process at the k-th bl_mark() of this boot as a power
 *            failure would (NVM saved to $BL_NVM_FILE, exit code BL_HOST_POWER_CUT_EXIT).
 */
#ifndef BL_PLATFORM_H
#define BL_PLATFORM_H

#include <stddef.h>
#include <stdint.h>

#ifndef BL_INPUT_CAPACITY
#define BL_INPUT_CAPACITY 4096u
#endif
#define BL_INPUT_MAGIC 0x4E494C42ul /* "BLIN" little-endian */

typedef struct {
  uint32_t magic;
  uint32_t length;
  uint8_t data[BL_INPUT_CAPACITY];
} bl_input_t;

extern const bl_input_t bl_input; /* read it through bl_input_read(): volatile access */

#if defined(BL_PLATFORM_HOST)
#define BL_NVM __attribute__((section("bl_nvm")))
#else
#define BL_NVM __attribute__((section(".nvm")))
#endif

#define BL_HOST_POWER_CUT_EXIT 86

/* Platform hooks (per platform). */
void bl_platform_init(void);
void bl_putc(char c);
void bl_mark(unsigned id);
__attribute__((noreturn)) void bl_exit(int code);

/* The application's entry point (one per app). Its return value is the exit code. */
int bl_app_main(void);

/* Common helpers (bl_io.c). */
void bl_puts(const char *s);
void bl_put_i32(int32_t v);
void bl_put_i64(int64_t v);
void bl_put_u32(uint32_t v);
/* "key v0 v1 ... v(n-1)\n" */
void bl_put_line_i32(const char *key, const int32_t *v, size_t n);
void bl_put_line_i16(const char *key, const int16_t *v, size_t n);
/* Length in bytes of the input the runner supplied, and a copy out of the (volatile) image buffer. */
uint32_t bl_input_length(void);
size_t bl_input_read(void *dst, size_t offset, size_t n);

#endif /* BL_PLATFORM_H */
