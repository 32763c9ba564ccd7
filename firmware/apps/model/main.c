/* batteryless model app: reads one int16 input sample from the image's input buffer (patched in by the
 * host runner), runs the generated model (MODEL_DIR) task by task, and prints "logits v0 v1 ...".
 * bl_mark(t + 1) before task t lets the emulators count instructions / cycles per task. */
#include <stdint.h>

#include "bl_platform.h"
#include "model.h"

static int16_t input[BL_MODEL_INPUT_LEN];
static int16_t logits[BL_MODEL_OUTPUT_LEN];

int bl_app_main(void)
{
  bl_status st;
  if (bl_input_length() != 2u * BL_MODEL_INPUT_LEN) {
    bl_puts("error input length ");
    bl_put_u32(bl_input_length());
    bl_puts(" expected ");
    bl_put_u32(2u * BL_MODEL_INPUT_LEN);
    bl_putc('\n');
    return 3;
  }
  (void)bl_input_read(input, 0u, 2u * BL_MODEL_INPUT_LEN);
  /* bl_mark(t + 1) before task t; tasks [BL_MODEL_MARK_FIRST, BL_MODEL_MARK_LAST) only when a measuring
   * build narrows the window (the emulator keeps only a few marks: mspdebug) — generated model.c */
  st = bl_model_run_marked(input, logits);
  bl_mark(0u);
  if (st != BL_OK) {
    bl_puts("error status ");
    bl_put_i32((int32_t)st);
    bl_putc('\n');
    return 4;
  }
  bl_put_line_i16("logits", logits, BL_MODEL_OUTPUT_LEN);
  return 0;
}
