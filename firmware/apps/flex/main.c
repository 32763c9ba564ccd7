/* batteryless flex app: the generated model (MODEL_DIR, activation buffers in NVM) on the FLEX intermittent
 * runtime (checkpointing/). Every boot: recover; if there is no valid commit, load the input into NVM and
 * start the inference at task 0; run the remaining tasks, committing as the policy says; when all tasks are
 * done print "logits ...", then the counters "boots", "task_runs", "corrupt", "fresh" (and "marks" on the
 * host: bl_mark calls of this boot).
 *
 * Build-time switches (EXTRA_DEFINES):
 *   BL_FLEX_POLICY  1 flex (commit after every task, default), 2 layer (after the last task of each layer),
 *                   3 restart (never commit: every boot restarts the inference), 4 jit (at layer ends and
 *                   at any task boundary where bl_voltage_low()).
 *   BL_FLEX_BROKEN=N  deliberately broken variants (tests only): 1 early-advance (commit task t as done
 *                   *before* running it), 5 commit-before-output (the inference is committed as finished
 *                   before its logits are saved); 2, 3, 4, 6 are in the runtime (checkpointing/flex.c).
 *   BL_FLEX_CONTINUOUS=1  continuous inference (the firmware-level emulator, docs/emulation.md): one
 *                   inference after another until a limit, each checked by the host. Input: a 12-byte
 *                   header {u32 inferences (0 = no limit), u32 max_boots (0 = no limit), u32 flags (bit 0:
 *                   no marks this run)} and S >= 1 samples; inference i uses sample i mod S. Every boot
 *                   prints "boot B commits V inference I next T" (the state it recovered); every finished
 *                   inference prints "inference I boot B logits ..." (B: the boot whose commit finished
 *                   it), possibly twice if power fails while printing; after the last inference, or at the
 *                   first boot beyond max_boots, the app prints the last BL_FLEX_LOG_LEN finished
 *                   inferences again from NVM (MSP430 keeps only the last boot's output), "commits V", and
 *                   exits 0. The restart policy and fault injection are not available in this mode.
 *   BL_FLEX_FAULTS=1  fault injection for tests: input bytes after the model input are 8-byte records
 *                   {u16 boot, u16 arg, u8 kind, u8 value, u16 0}, applied at that boot before recovery:
 *                   kind 1 xor byte `arg` of the FLEX NVM state with `value`; kind 2 torn write: the first
 *                   half of a forged newer record into slot `arg`; kind 3 a complete forged record with a
 *                   valid CRC but next_task = num_tasks + value (impossible) into slot `arg`.
 * Both modes share one boot path (boot_and_recover), one task loop (run_tasks) and one way to start an
 * inference (start_inference); they differ only in what happens after the last task. The logits of a
 * finished inference are saved in an NVM log entry *before* the commit that finishes it, and printed from
 * there, so a boot after that commit prints them again without re-running anything.
 * Every boot also prints (single mode: with the result) the statistics the harnesses check besides the
 * logits: "corrupt" (committed state that failed its checks), "unborn" (a cut inside the first commit)
 * and "lost_max" (most tasks one power failure threw away; flex.h).
 * Marks: BL_FLEX_MARK_* (flex.h) and t % 239 + 1 before task t. */
#include <stdint.h>

#include "../../../checkpointing/flex.h"
#include "bl_platform.h"
#include "model.h"

/* EVE (docs/eve.md): a model with several modes picks one from the stored energy when an inference starts
 * and commits it with the progress (flex.h); every boot resumes in the committed mode. */
#ifndef BL_MODEL_NUM_MODES
#define BL_MODEL_NUM_MODES 1u
#endif

#define BL_FLEX_POLICY_FLEX 1
#define BL_FLEX_POLICY_LAYER 2
#define BL_FLEX_POLICY_RESTART 3
#define BL_FLEX_POLICY_JIT 4
#ifndef BL_FLEX_POLICY
#define BL_FLEX_POLICY BL_FLEX_POLICY_FLEX
#endif
#ifndef BL_FLEX_BROKEN
#define BL_FLEX_BROKEN 0
#endif
#ifndef BL_FLEX_FAULTS
#define BL_FLEX_FAULTS 0
#endif
#ifndef BL_FLEX_LOG_LEN
#if BL_FLEX_CONTINUOUS
#define BL_FLEX_LOG_LEN 16u
#else
#define BL_FLEX_LOG_LEN 1u
#endif
#endif
#if BL_FLEX_CONTINUOUS && (BL_FLEX_POLICY == BL_FLEX_POLICY_RESTART || BL_FLEX_FAULTS)
#error "BL_FLEX_CONTINUOUS needs a policy that commits (flex, layer, jit) and no fault injection"
#endif

/* Tasks 0 .. N_IN-1 load the input into NVM, BL_MODEL_INPUT_CHUNK elements each, straight from the image's
 * input buffer (no RAM copy); task N_IN + m is the model's task m. Progress through the input load is
 * committed like any other task's, so a power-on period only has to hold one chunk, not the whole input. */
#define N_IN ((uint16_t)((BL_MODEL_INPUT_LEN + BL_MODEL_INPUT_CHUNK - 1u) / BL_MODEL_INPUT_CHUNK))
#define N_TASKS ((uint16_t)(N_IN + BL_MODEL_NUM_TASKS))

#if BL_FLEX_FAULTS
static void put_record(uint8_t slot, const bl_flex_record *r, uint8_t bytes)
{
  volatile uint8_t *dst = (volatile uint8_t *)&bl_flex.rec[slot & 1u];
  const uint8_t *src = (const uint8_t *)r;
  uint8_t i;
  for (i = 0; i < bytes; i++) {
    dst[i] = src[i];
  }
}

static void apply_faults(void)
{
  uint32_t off = 2u * BL_MODEL_INPUT_LEN;
  uint8_t f[8];
  while (bl_input_read(f, off, 8u) == 8u) {
    uint16_t boot = (uint16_t)(f[0] | (f[1] << 8));
    uint16_t arg = (uint16_t)(f[2] | (f[3] << 8));
    off += 8u;
    if (boot != bl_flex.boots) {
      continue;
    }
    if (f[4] == 1u && arg < sizeof(bl_flex_nvm)) {
      ((volatile uint8_t *)&bl_flex)[arg] ^= f[5];
    } else if (f[4] == 2u || f[4] == 3u) {
      bl_flex_record r;
      r.version = (bl_flex.rec[0].version > bl_flex.rec[1].version ? bl_flex.rec[0].version
                                                                    : bl_flex.rec[1].version) + 1u;
      r.inference = bl_flex.rec[arg & 1u].inference;
      r.num_tasks = N_TASKS;
      r.next_task = f[4] == 2u ? (uint16_t)(f[5] % (N_TASKS + 1u)) : (uint16_t)(N_TASKS + f[5]);
#if BL_EVE_MODES > 1
      r.mode = 0u;
      r.reserved = 0u;
#endif
      r.crc = bl_flex_crc32(&r, offsetof(bl_flex_record, crc));
      put_record((uint8_t)arg, &r, f[4] == 2u ? 8u : (uint8_t)sizeof r);
    }
  }
}
#endif

__attribute__((unused)) static int commit_after(uint16_t done)
{
#if BL_FLEX_POLICY == BL_FLEX_POLICY_FLEX
  (void)done;
  return 1;
#elif BL_FLEX_POLICY == BL_FLEX_POLICY_LAYER
  return done >= N_TASKS || done == N_IN ||
         (done > N_IN && bl_model_task_layer_end((uint16_t)(done - N_IN - 1u)));
#elif BL_FLEX_POLICY == BL_FLEX_POLICY_JIT
  return done >= N_TASKS || done == N_IN ||
         (done > N_IN && bl_model_task_layer_end((uint16_t)(done - N_IN - 1u))) ||
         bl_voltage_low();
#else
  (void)done;
  return 0;
#endif
}

/* Finished inferences in NVM: the log entry of inference i is written before the commit that finishes it
 * (continuous mode keeps the last BL_FLEX_LOG_LEN, the single-inference mode one). `printed` (continuous
 * mode): inferences 0 .. printed-1 have certainly been printed. */
#define OUT_MAGIC 0xC0271E5Dul

typedef struct {
  uint32_t inference;
  uint32_t boot; /* the boot whose commit finished this inference */
#if BL_MODEL_NUM_MODES > 1
  uint16_t mode; /* the EVE mode it ran in */
#endif
  int16_t logits[BL_MODEL_OUTPUT_LEN];
} out_entry;

typedef struct {
  uint32_t magic;
  volatile uint32_t printed;
  out_entry log[BL_FLEX_LOG_LEN];
} out_nvm;

BL_NVM static out_nvm outs;

#if BL_FLEX_CONTINUOUS
static uint32_t input_base;        /* offset of the first sample in the input (after the header) */
static uint32_t input_samples = 1; /* inference i uses sample i mod input_samples */
#endif

static void save_output(const bl_flex_state *st)
{
  out_entry *e = &outs.log[st->inference % BL_FLEX_LOG_LEN];
  const int16_t *out = bl_model_output();
  uint16_t k;
  e->inference = st->inference;
  e->boot = bl_flex.boots;
#if BL_MODEL_NUM_MODES > 1
  e->mode = st->mode;
#endif
  for (k = 0u; k < BL_MODEL_OUTPUT_LEN; k++) {
    e->logits[k] = out[k];
  }
}

/* Start inference i at task 0 (its first tasks load sample i). Nothing is written to the protocol here: the
 * first commit is the one after the first input chunk, and until it lands every boot finds the previous
 * state (none, or inference i-1 finished) and starts again here, which is right because the input-load
 * tasks, like all others, rewrite their outputs in full. `started` is cleared so that the previous
 * inference's last task does not count as lost. */
static void start_inference(uint32_t i, bl_flex_state *st)
{
  bl_flex.started = 0u;
  BL_FLEX_MARK(BL_FLEX_MARK_INPUT);
  st->next_task = 0u;
  st->inference = i;
#if BL_MODEL_NUM_MODES > 1
  /* the mode from the stored energy, with hysteresis from the last inference's mode (the recovered one);
   * committed with the first commit of this inference (until it lands, every boot starts again here) */
  st->mode = bl_model_select_mode((uint8_t)st->mode);
  (void)bl_model_set_mode((uint8_t)st->mode);
#endif
}

/* Task t of the inference in st: an input chunk (t < N_IN) or model task t - N_IN. */
static bl_status run_task(uint16_t t, const bl_flex_state *st)
{
  if (t < N_IN) {
    /* sample (inference mod samples) of the input buffer, read in place (volatile: the runner patches it) */
#if BL_FLEX_CONTINUOUS
    const uint32_t off = input_base + (st->inference % input_samples) * 2u * BL_MODEL_INPUT_LEN;
#else
    const uint32_t off = 0u; /* one sample; no 32-bit modulo (a software routine on the MSP430) */
    (void)st;
#endif
    const volatile int16_t *src = (const volatile int16_t *)(const volatile void *)&bl_input.data[off];
    uint16_t e0 = (uint16_t)(t * BL_MODEL_INPUT_CHUNK);
    uint16_t e1 = (uint16_t)(e0 + BL_MODEL_INPUT_CHUNK);
    bl_model_load_input_part(src, e0, e1 < BL_MODEL_INPUT_LEN ? e1 : (uint16_t)BL_MODEL_INPUT_LEN);
    return BL_OK;
  }
  return bl_model_task((uint16_t)(t - N_IN));
}

/* Every boot: count it, recover (read-only), classify what was found and account the lost work. */
static bl_flex_recovery boot_and_recover(bl_flex_state *st)
{
  bl_flex_recovery kind;
  BL_FLEX_MARK(BL_FLEX_MARK_BOOT);
  bl_flex_counters_init();
  bl_flex.boots = bl_flex.boots + 1u;
  if (outs.magic != OUT_MAGIC) {
    outs.printed = 0u;
    outs.magic = OUT_MAGIC;
  }
#if BL_FLEX_FAULTS
  apply_faults();
#endif
  kind = bl_flex_recover(N_TASKS, st);
#if BL_MODEL_NUM_MODES > 1
  if (kind == BL_FLEX_RESUME && bl_model_set_mode((uint8_t)st->mode) != BL_OK) {
    kind = BL_FLEX_CORRUPT; /* a mode this model does not have: start again */
    st->kind = kind;
    st->mode = 0u;
  }
#endif
  if (kind == BL_FLEX_CORRUPT) {
    bl_flex.corrupt = bl_flex.corrupt + 1u;
  } else if (kind == BL_FLEX_UNBORN) {
    bl_flex.unborn = bl_flex.unborn + 1u;
  }
  bl_flex_account_lost(st);
#if BL_FLEX_POLICY == BL_FLEX_POLICY_RESTART
  kind = BL_FLEX_EMPTY;
#endif
  return kind;
}

/* The one task loop: tasks st->next_task .. N-1, each marked (t + 1), counted and committed as the policy
 * says; the last one also saves the logits before its commit. Returns 0, or 4 after a kernel error. */
static int run_tasks(bl_flex_state *st)
{
  uint16_t t;
  bl_status status;
  /* task marks 1..239, wrapping, so they never collide with the runtime's 0xF0.. marks on a target
   * whose mark ids are taken modulo 256 (the QEMU mark table): t % 239 + 1, computed once per boot and
   * then counted. On the MSP430 a division is a ~700-cycle software routine, so there not even once per
   * boot: nine conditional subtractions of 239 * 2^s, s = 8 .. 0 (restoring division: each leaves
   * mark < 239 * 2^s), ~30 instructions. A plain `while (mark >= 239) mark -= 239` is turned back into the
   * division helper by the compiler (~430 instructions per resumed boot); where division is an instruction,
   * the subtractions would cost more (a resumed M4 boot's budget at 1,000-instruction periods is tight). */
#if defined(__MSP430__)
  uint16_t mark = st->next_task;
  for (uint16_t s = 8u + 1u; s-- > 0u;) {
    const uint16_t m = (uint16_t)(239u << s);
    if (mark >= m) {
      mark = (uint16_t)(mark - m);
    }
  }
  mark = (uint16_t)(mark + 1u);
#else
  uint16_t mark = (uint16_t)(st->next_task % 239u + 1u);
#endif
  for (t = st->next_task; t < N_TASKS; t++, mark = mark == 239u ? 1u : (uint16_t)(mark + 1u)) {
    BL_FLEX_MARK(mark);
#if BL_FLEX_BROKEN == 1
    bl_flex_commit(st, (uint16_t)(t + 1u), N_TASKS); /* BROKEN: progress advanced before the work is done */
#endif
    bl_flex.started = (uint16_t)(t + 1u);
    bl_flex.task_runs = bl_flex.task_runs + 1u;
    status = run_task(t, st);
    if (status != BL_OK) {
      bl_puts("error status ");
      bl_put_i32((int32_t)status);
      bl_puts(" task ");
      bl_put_u32(t);
      bl_putc('\n');
      return 4;
    }
    if (t + 1u == N_TASKS) {
#if BL_FLEX_BROKEN == 5
      bl_flex_commit(st, N_TASKS, N_TASKS); /* BROKEN: finished committed before the logits are saved */
      save_output(st);
      continue;
#else
      save_output(st);
#endif
    }
#if BL_FLEX_BROKEN != 1
    if (commit_after((uint16_t)(t + 1u))) {
      bl_flex_commit(st, (uint16_t)(t + 1u), N_TASKS);
    }
#endif
  }
  return 0;
}

static void print_checks(void)
{
  bl_puts("corrupt ");
  bl_put_u32(bl_flex.corrupt);
  bl_puts("\nunborn ");
  bl_put_u32(bl_flex.unborn);
  bl_puts("\nlost_max ");
  bl_put_u32(bl_flex.lost_max);
  bl_putc('\n');
#if defined(BL_PLATFORM_HOST)
  {
    extern volatile unsigned bl_mark_count;
    bl_puts("marks ");
    bl_put_u32(bl_mark_count);
    bl_putc('\n');
  }
#endif
}

#if BL_FLEX_CONTINUOUS
/* Continuous inference. The commit record's `inference` field is the index i of the inference in
 * progress; {i, next_task N_TASKS} means "inference i finished". Cut points, and what the next boot does:
 *   - inside a task or before its commit: resume at that task (FLEX, as in the single-inference mode);
 *   - after the last task, before its commit: the last task runs again and rewrites the same log entry;
 *   - after the final commit, before or while printing: {i, N} recovered, `printed` <= i, print again
 *     from the NVM log (a line cut half-way is lost with the RAM line buffer, or repeated: the host keeps
 *     the first complete one);
 *   - after printing, before `printed` is updated: printed twice (the host deduplicates by index);
 *   - while sample i+1 is being copied into the NVM input buffer, or before the commit {i+1, 0}: the record
 *     still says "i finished", so the next boot copies the input again and commits: nothing is lost, and
 *     inference i's logits are safe in the log even if the input buffer aliases the output buffer. */
#define CONT_HEADER 12u

static void print_entry(const out_entry *e)
{
  bl_puts("inference ");
  bl_put_u32(e->inference);
  bl_puts(" boot ");
  bl_put_u32(e->boot);
#if BL_MODEL_NUM_MODES > 1
  bl_puts(" mode ");
  bl_put_u32(e->mode);
#endif
  bl_putc(' ');
  bl_put_line_i16("logits", e->logits, BL_MODEL_OUTPUT_LEN);
}

/* `done` inferences finished (committed); the log holds the last BL_FLEX_LOG_LEN of them, printed or not. */
static int finish_run(uint32_t commits, uint32_t done)
{
  uint32_t i = done > BL_FLEX_LOG_LEN ? done - BL_FLEX_LOG_LEN : 0u;
  for (; i < done; i++) {
    if (outs.log[i % BL_FLEX_LOG_LEN].inference == i) {
      print_entry(&outs.log[i % BL_FLEX_LOG_LEN]);
    }
  }
  bl_puts("commits ");
  bl_put_u32(commits);
  bl_puts("\nboots ");
  bl_put_u32(bl_flex.boots);
  bl_puts("\ntask_runs ");
  bl_put_u32(bl_flex.task_runs);
  bl_putc('\n');
  print_checks();
  return 0;
}

static int continuous_main(void)
{
  uint8_t h[CONT_HEADER];
  uint32_t limit, max_boots;
  bl_flex_state st;
  bl_flex_recovery kind;
  int rc;
  if (bl_input_read(h, 0u, CONT_HEADER) != CONT_HEADER ||
      bl_input_length() < CONT_HEADER + 2u * BL_MODEL_INPUT_LEN) {
    bl_puts("error input length ");
    bl_put_u32(bl_input_length());
    bl_puts(" expected ");
    bl_put_u32(CONT_HEADER + 2u * BL_MODEL_INPUT_LEN);
    bl_putc('\n');
    return 3;
  }
  limit = (uint32_t)h[0] | ((uint32_t)h[1] << 8) | ((uint32_t)h[2] << 16) | ((uint32_t)h[3] << 24);
  max_boots = (uint32_t)h[4] | ((uint32_t)h[5] << 8) | ((uint32_t)h[6] << 16) | ((uint32_t)h[7] << 24);
  input_base = CONT_HEADER;
  input_samples = (bl_input_length() - CONT_HEADER) / (2u * BL_MODEL_INPUT_LEN);
#if !defined(BL_PLATFORM_HOST)
  bl_flex_marks_on = (uint8_t)((h[8] & 1u) == 0u);
#endif
  kind = boot_and_recover(&st);
  bl_puts("boot ");
  bl_put_u32(bl_flex.boots);
  bl_puts(" commits ");
  bl_put_u32(st.version);
  bl_puts(" inference ");
  bl_put_u32(st.inference);
  bl_puts(" next ");
  bl_put_u32(st.next_task);
  bl_putc('\n');
  if (max_boots != 0u && bl_flex.boots > max_boots) {
    if (kind != BL_FLEX_RESUME) {
      return finish_run(0u, 0u);
    }
    return finish_run(st.version, st.inference + (st.next_task == N_TASKS ? 1u : 0u));
  }
  if (kind != BL_FLEX_RESUME) {
    bl_flex.fresh = bl_flex.fresh + 1u;
    outs.printed = 0u;
    start_inference(0u, &st);
  }
  for (;;) {
    rc = run_tasks(&st);
    if (rc != 0) {
      return rc;
    }
    BL_FLEX_MARK(BL_FLEX_MARK_DONE);
    if (outs.printed <= st.inference) {
      print_entry(&outs.log[st.inference % BL_FLEX_LOG_LEN]);
      outs.printed = st.inference + 1u;
    }
    if (limit != 0u && st.inference + 1u >= limit) {
      return finish_run(st.version, st.inference + 1u);
    }
    start_inference(st.inference + 1u, &st);
  }
}
#endif

int bl_app_main(void)
{
#if BL_FLEX_CONTINUOUS
  return continuous_main();
#else
  bl_flex_state st;
  int rc;
  /* the input is checked when an inference starts (it is read by the input-load tasks), not on every
   * resumed boot: ~40 instructions of a resumed MSP430 boot's ~300 */
  if (boot_and_recover(&st) != BL_FLEX_RESUME) {
    if (bl_input_length() < 2u * BL_MODEL_INPUT_LEN) {
      bl_puts("error input length ");
      bl_put_u32(bl_input_length());
      bl_puts(" expected ");
      bl_put_u32(2u * BL_MODEL_INPUT_LEN);
      bl_putc('\n');
      return 3;
    }
    bl_flex.fresh = bl_flex.fresh + 1u;
    start_inference(bl_flex.fresh, &st);
  }
  rc = run_tasks(&st);
  if (rc != 0) {
    return rc;
  }
  BL_FLEX_MARK(BL_FLEX_MARK_DONE);
  bl_putc('\n'); /* ends a line an earlier boot may have been cut in the middle of */
  bl_put_line_i16("logits", outs.log[0].logits, BL_MODEL_OUTPUT_LEN);
#if BL_MODEL_NUM_MODES > 1
  bl_puts("mode ");
  bl_put_u32(outs.log[0].mode);
  bl_putc('\n');
#endif
  bl_puts("boots ");
  bl_put_u32(bl_flex.boots);
  bl_puts("\ntask_runs ");
  bl_put_u32(bl_flex.task_runs);
  bl_puts("\nfresh ");
  bl_put_u32(bl_flex.fresh);
  bl_putc('\n');
  print_checks();
  return 0;
#endif
}
