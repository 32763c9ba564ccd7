/* batteryless QEMU TCG plugin: deterministic executed-instruction count, instrumentation marks and
 * power-cut injection (system reset at chosen instruction counts). Built against bl_qemu_plugin_api.h.
 *
 * Arguments (-plugin libbl_insn.so,arg=value,...):
 *   out=PATH          write the report there (else to stderr through qemu_plugin_outs)
 *   mark=0xADDR       record the instruction count each time the instruction at ADDR executes (id -1)
 *   marktable=0xADDR:N:STRIDE  N mark entries STRIDE bytes apart from ADDR: executing entry i records the
 *                     count with id i (the Cortex-M platform's bl_mark(id) branches to entry id % N)
 *   cuts=N1:N2:...    request a guest reset once the count reaches N1, then N2, ... (ascending)
 *
 * The count is exact (an inline add per executed instruction). A reset is requested from a callback
 * before the instruction that makes the count reach N; QEMU acts on it at the end of the current
 * translation block, so the cut lands at the same place on every run (possibly a few instructions after N).
 * Report lines: "insns T", "resets K", "cut I REQUESTED_AT", "mark I COUNT ID" (one per hit), "error ...". */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bl_qemu_plugin_api.h"

BL_PLUGIN_EXPORT int qemu_plugin_version = BL_QEMU_PLUGIN_VERSION;

#define BL_MAX_CUTS 4096
#define BL_MAX_MARK_HITS 4096

static uint64_t insn_count;
static uint64_t mark_addr;
static int have_mark;
static uint64_t cuts[BL_MAX_CUTS];
static size_t n_cuts;
static size_t next_cut;
static uint64_t cut_at[BL_MAX_CUTS];
static uint64_t table_addr;
static uint64_t table_n;
static uint64_t table_stride;
static uint64_t mark_hits[BL_MAX_MARK_HITS];
static int64_t mark_ids[BL_MAX_MARK_HITS];
static size_t n_mark_hits;
static size_t mark_overflow;
static char out_path[1024];
static int reported;

static void on_cut_check(unsigned int vcpu, void *udata)
{
  (void)vcpu;
  (void)udata;
  if (next_cut < n_cuts && insn_count >= cuts[next_cut]) {
    cut_at[next_cut] = insn_count;
    next_cut++;
    qemu_system_reset_request(BL_SHUTDOWN_CAUSE_GUEST_RESET);
  }
}

static void on_mark(unsigned int vcpu, void *udata)
{
  (void)vcpu;
  if (n_mark_hits < BL_MAX_MARK_HITS) {
    mark_ids[n_mark_hits] = (int64_t)(intptr_t)udata;
    mark_hits[n_mark_hits++] = insn_count;
  } else {
    mark_overflow++;
  }
}

static void on_tb_trans(qemu_plugin_id_t id, struct qemu_plugin_tb *tb)
{
  size_t n = qemu_plugin_tb_n_insns(tb);
  size_t i;
  (void)id;
  for (i = 0; i < n; i++) {
    struct qemu_plugin_insn *insn = qemu_plugin_tb_get_insn(tb, i);
    if (n_cuts > 0) {
      qemu_plugin_register_vcpu_insn_exec_cb(insn, on_cut_check, QEMU_PLUGIN_CB_NO_REGS, NULL);
    }
    uint64_t va = qemu_plugin_insn_vaddr(insn);
    if (have_mark && va == mark_addr) {
      qemu_plugin_register_vcpu_insn_exec_cb(insn, on_mark, QEMU_PLUGIN_CB_NO_REGS, (void *)(intptr_t)-1);
    }
    if (table_n && va >= table_addr && va < table_addr + table_n * table_stride &&
        (va - table_addr) % table_stride == 0) {
      intptr_t id = (intptr_t)((va - table_addr) / table_stride);
      qemu_plugin_register_vcpu_insn_exec_cb(insn, on_mark, QEMU_PLUGIN_CB_NO_REGS, (void *)id);
    }
    qemu_plugin_register_vcpu_insn_exec_inline(insn, QEMU_PLUGIN_INLINE_ADD_U64, &insn_count, 1);
  }
}

static void report(void)
{
  char line[128];
  size_t i;
  FILE *f = NULL;
  if (reported) {
    return;
  }
  reported = 1;
  if (out_path[0]) {
    f = fopen(out_path, "w");
  }
#define EMIT(...)                                    \
  do {                                               \
    snprintf(line, sizeof line, __VA_ARGS__);        \
    if (f) {                                         \
      fputs(line, f);                                \
    } else {                                         \
      qemu_plugin_outs(line);                        \
    }                                                \
  } while (0)
  EMIT("insns %" PRIu64 "\n", insn_count);
  EMIT("resets %zu\n", next_cut);
  for (i = 0; i < next_cut; i++) {
    EMIT("cut %zu %" PRIu64 "\n", i, cut_at[i]);
  }
  for (i = 0; i < n_mark_hits; i++) {
    EMIT("mark %zu %" PRIu64 " %" PRId64 "\n", i, mark_hits[i], mark_ids[i]);
  }
  if (mark_overflow) {
    EMIT("error %zu mark hits not recorded (more than %d)\n", mark_overflow, BL_MAX_MARK_HITS);
  }
  if (f) {
    fclose(f);
  }
#undef EMIT
}

static void on_exit_cb(qemu_plugin_id_t id, void *udata)
{
  (void)id;
  (void)udata;
  report();
}

/* Semihosting SYS_EXIT ends QEMU through exit(); make sure the report is written on that path too. */
static void on_process_exit(void) { report(); }

static int parse_cuts(const char *s)
{
  while (*s) {
    char *end;
    uint64_t v = strtoull(s, &end, 0);
    if (end == s || n_cuts >= BL_MAX_CUTS || (n_cuts > 0 && v <= cuts[n_cuts - 1])) {
      return -1;
    }
    cuts[n_cuts++] = v;
    s = end;
    if (*s == ':') {
      s++;
    } else if (*s) {
      return -1;
    }
  }
  return 0;
}

BL_PLUGIN_EXPORT int qemu_plugin_install(qemu_plugin_id_t id, const qemu_info_t *info, int argc, char **argv)
{
  int i;
  (void)info;
  for (i = 0; i < argc; i++) {
    const char *a = argv[i];
    if (strncmp(a, "out=", 4) == 0) {
      snprintf(out_path, sizeof out_path, "%s", a + 4);
    } else if (strncmp(a, "mark=", 5) == 0) {
      mark_addr = strtoull(a + 5, NULL, 0) & ~(uint64_t)1; /* Thumb bit off */
      have_mark = 1;
    } else if (strncmp(a, "marktable=", 10) == 0) {
      char *end;
      table_addr = strtoull(a + 10, &end, 0) & ~(uint64_t)1;
      table_n = *end == ':' ? strtoull(end + 1, &end, 0) : 0;
      table_stride = *end == ':' ? strtoull(end + 1, &end, 0) : 0;
      if (*end != '\0' || table_n == 0 || table_stride == 0) {
        fprintf(stderr, "bl_insn: marktable= wants ADDR:N:STRIDE, got '%s'\n", a + 10);
        return -1;
      }
    } else if (strncmp(a, "cuts=", 5) == 0) {
      if (parse_cuts(a + 5) != 0) {
        fprintf(stderr, "bl_insn: cuts= wants ascending counts separated by ':' (at most %d), got '%s'\n",
                BL_MAX_CUTS, a + 5);
        return -1;
      }
    } else {
      fprintf(stderr, "bl_insn: unknown argument '%s' (known: out=, mark=, marktable=, cuts=)\n", a);
      return -1;
    }
  }
  if (n_cuts > 0 && qemu_system_reset_request == NULL) {
    fprintf(stderr, "bl_insn: this qemu-system-arm does not export qemu_system_reset_request; power cuts "
                    "need Debian's QEMU 7.2 build\n");
    return -1;
  }
  qemu_plugin_register_vcpu_tb_trans_cb(id, on_tb_trans);
  qemu_plugin_register_atexit_cb(id, on_exit_cb, NULL);
  atexit(on_process_exit);
  return 0;
}
