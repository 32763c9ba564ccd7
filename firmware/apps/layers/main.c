/* batteryless layers app: per-layer outputs of a generated model, for golden comparisons of a kernel
 * backend against the numeric spec (batteryless.firmware.layers). The input buffer holds one or more int16
 * samples back to back; for each sample s the app runs the model task by task and, after each task t that
 * ends a layer (bl_model_task_layer_end(t)), prints "s<s>t<t> v0 v1 ..." with that layer's output, which
 * the generated table bl_dump.c (written next to the model sources) locates; then "s<s>logits ...". */
#include <stddef.h>
#include <stdint.h>

#include "bl_platform.h"
#include "model.h"

extern const int16_t *const bl_dump_buf[BL_MODEL_NUM_TASKS];
extern const uint16_t bl_dump_len[BL_MODEL_NUM_TASKS];

static int16_t input[BL_MODEL_INPUT_LEN];

static void put_key(uint32_t s, int has_t, uint32_t t)
{
  bl_putc('s');
  bl_put_u32(s);
  if (has_t) {
    bl_putc('t');
    bl_put_u32(t);
  }
}

int bl_app_main(void)
{
  const uint32_t sample_bytes = 2u * BL_MODEL_INPUT_LEN;
  const uint32_t n = bl_input_length();
  uint32_t s;
  uint16_t t;
  if (n == 0u || n % sample_bytes != 0u) {
    bl_puts("error input length ");
    bl_put_u32(n);
    bl_puts(" not a multiple of ");
    bl_put_u32(sample_bytes);
    bl_putc('\n');
    return 3;
  }
  for (s = 0; s < n / sample_bytes; s++) {
    (void)bl_input_read(input, s * sample_bytes, sample_bytes);
    bl_model_load_input(input);
    for (t = 0; t < BL_MODEL_NUM_TASKS; t++) {
      bl_status st = bl_model_task(t);
      if (st != BL_OK) {
        bl_puts("error status ");
        bl_put_i32((int32_t)st);
        bl_putc('\n');
        return 4;
      }
      if (bl_model_task_layer_end(t) && bl_dump_buf[t] != NULL) {
        put_key(s, 1, t);
        bl_put_line_i16("", bl_dump_buf[t], bl_dump_len[t]);
      }
    }
    put_key(s, 0, 0);
    bl_put_line_i16("logits", bl_model_output(), BL_MODEL_OUTPUT_LEN);
  }
  return 0;
}
