/* batteryless QEMU TCG plugin: deterministic executed-instruction count, instrumentation marks,
 * power-cut injection (system reset at chosen instruction counts) and a host-side stop. Built against
 * bl_qemu_plugin_api.h.
 *
 * Arguments (-plugin libbl_insn.so,arg=value,...):
 *   out=PATH          write the report there (else to stderr through qemu_plugin_outs)
 *   mark=0xADDR       record the instruction count each time the instruction at ADDR executes (id -1)
 *   marktable=0xADDR:N:STRIDE  N mark entries STRIDE bytes apart from ADDR: executing entry i records the
 *                     count with id i (the Cortex-M platform's bl_mark(id) branches to entry id % N)
 *   markids=I:J:...   record individual hits only for these mark ids (every id is still counted in the
 *                     "marks" summary lines); markids=none records no individual hit
 *   cuts=N1:N2:...    request a guest reset once the count reaches N1, then N2, ... (strictly ascending)
 *   cutsfile=PATH     the same, one count per line (no limit on the number of cuts)
 *   stop=N            end QEMU (exit code BL_STOP_EXIT, report written) once the count reaches N
 *   trace=LO:HI       record the count each time an instruction with address in [LO, HI) executes (the
 *                     count before it, as for marks; at most BL_MAX_TRACE): where a function's
 *                     instructions run, so a harness can cut power before each of them
 *   callcuts=S1/K1:S2/K2:...  power cuts relative to calls of the traced function (entry: LO): cut i
 *                     happens after the K_i-th instruction (K_i >= 1, counted from the entry) of the
 *                     S_i-th call since the previous call-relative cut (or the start); may be combined
 *                     with cuts= (e.g. a cut at a count, then cuts inside the recovery that follows).
 *                     Exact only with -singlestep;
 *                     one run sweeps many offsets of a function whose calls repeat (the FLEX commit).
 *   cutsend=ID        when mark ID executes (marktable=), drop the cuts not yet requested: e.g. stop cutting
 *                     once an inference has finished, so its result is printed in one piece
 *   writesfile=PATH   guest memory writes, one "COUNT ADDR SIZE VALUE" per line (COUNT ascending; SIZE 1, 2
 *                     or 4; VALUE little-endian): each is done at the first TB entry whose count is >= COUNT,
 *                     before that TB runs: COUNT 0 before the first instruction, COUNT = a cut's count right
 *                     after that power cut, before the next boot's first instruction (e.g. the energy
 *                     buffer's voltage an EVE image reads; the variable must survive the reset: NVM)
 *   romreload=off     after the first boot, a reset no longer rewrites the image's loaded sections (QEMU's
 *                     ROM-blob reset handler is unregistered): the image behaves as flash, and QEMU keeps
 *                     its translated code instead of retranslating every boot (~15x cheaper power cuts).
 *                     Default on (QEMU's own behaviour).
 *
 * The count is exact (an inline add per executed instruction). Cuts and the stop are checked once per
 * translation block (TB), at its entry, knowing how many instructions it holds: if the count will reach
 * the next cut inside this TB, a reset is requested; QEMU acts on it at the end of the TB (a reset request
 * cannot take effect earlier). So a power cut at N lands at the first TB boundary whose count is >= N
 * (at most one TB, i.e. a few instructions, late; exactly N when N is a TB boundary), the same place on
 * every run. If a TB is left early (an exception inside it), the reset lands at the end of the next TB.
 * The stop happens at the first TB entry whose count is >= N. Run QEMU with -singlestep (one instruction
 * per TB; batteryless.firmware.run(exact=True)) and every cut lands exactly at its count: a cut at N
 * leaves exactly N instructions executed.
 *
 * Report lines: "insns T", "resets K", "cut I COUNT REQUESTED" (COUNT: the count when the reset took
 * effect), "mark I COUNT ID" (one per recorded hit), "marks ID HITS" (every id seen), "stopped COUNT",
 * "trace COUNT" (one per traced instruction executed), "translations N" (TBs translated), "romreload off"
 * (or why not), "error ...". */
#define _POSIX_C_SOURCE 200809L /* open_memstream */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bl_qemu_plugin_api.h"

BL_PLUGIN_EXPORT int qemu_plugin_version = BL_QEMU_PLUGIN_VERSION;

/* Exit status of QEMU when stop=N ended the run (batteryless.firmware.QEMU_STOP_EXIT). */
#define BL_STOP_EXIT 87
#define BL_MAX_TABLE 4096
#define BL_MAX_TRACE 1000000

struct u64vec {
  uint64_t *v;
  size_t n, cap;
};

static int vec_push(struct u64vec *a, uint64_t x)
{
  if (a->n == a->cap) {
    size_t cap = a->cap ? 2 * a->cap : 1024;
    uint64_t *v = realloc(a->v, cap * sizeof *v);
    if (!v) {
      return -1;
    }
    a->v = v;
    a->cap = cap;
  }
  a->v[a->n++] = x;
  return 0;
}

static uint64_t insn_count;
static struct u64vec wr_count, wr_addr, wr_size, wr_value; /* writesfile= */
static size_t wr_next;
static uint64_t mark_addr;
static int have_mark;
static struct u64vec cuts;     /* requested counts, ascending */
static struct u64vec cut_at;   /* count when each requested reset took effect */
static size_t next_cut;        /* cuts[0..next_cut) have been requested */
static int cut_pending;        /* a reset was requested and has not been seen yet */
static uint64_t stop_at;
static int have_stop;
static int stopped;
static uint64_t table_addr;
static uint64_t table_n;
static uint64_t table_stride;
static struct u64vec hit_counts; /* recorded mark hits: count, id (interleaved) */
static uint64_t id_hits[BL_MAX_TABLE + 1]; /* per id (slot BL_MAX_TABLE: the single mark=, id -1) */
static unsigned char id_recorded[BL_MAX_TABLE + 1];
static int record_all = 1;
static long long cuts_end_id = -2; /* cutsend=: the mark id that ends the cut list (-2: none) */
static uint64_t translations;
static uint64_t trace_lo, trace_hi;
static int have_trace;
static struct u64vec trace_counts;
static struct u64vec ccut_s, ccut_k; /* callcuts: calls to skip, instruction within the call */
static size_t ccut_next;
static uint64_t ccut_calls, ccut_off; /* calls since the last cut, instructions into the current call */
static size_t resets_requested;       /* cuts= and callcuts= together */
static int oom;
static char out_path[1024];
static int reported;

static bl_reset_handler rom_reset_fn;
static int rom_reload = 1; /* romreload=off: skip it after the first boot (see rom_reset_handler) */
static int rom_reload_removed;

/* QEMU registers its ROM-blob reset handler (loader.c rom_reset, a static function) from the exported
 * rom_check_and_register_reset as `qemu_register_reset(rom_reset, NULL)`. Find that handler in the
 * x86-64 code (lea rel32(%rip),%rdi; call qemu_register_reset), so it can be unregistered. Returns NULL
 * when the pattern is not found exactly once; a wrong pointer would be harmless (qemu_unregister_reset
 * only removes a registered (handler, NULL) pair). */
static bl_reset_handler rom_reset_handler(void)
{
#if defined(__x86_64__)
  const unsigned char *p = (const unsigned char *)(uintptr_t)rom_check_and_register_reset;
  const unsigned char *reg = (const unsigned char *)(uintptr_t)qemu_register_reset;
  const unsigned char *found = NULL;
  int hits = 0;
  size_t i;
  if (!p || !reg || !qemu_unregister_reset) {
    return NULL;
  }
  for (i = 0; i < 1024; i++) {
    int32_t lea, call;
    if (p[i] == 0xc3 && hits) { /* ret after the call: end of the function */
      break;
    }
    if (p[i] != 0x48 || p[i + 1] != 0x8d || p[i + 2] != 0x3d || p[i + 7] != 0xe8) {
      continue;
    }
    memcpy(&lea, p + i + 3, 4);
    memcpy(&call, p + i + 8, 4);
    if (p + i + 12 + call == reg) {
      found = p + i + 7 + lea;
      hits++;
    }
  }
  return hits == 1 ? (bl_reset_handler)(uintptr_t)found : NULL;
#else
  return NULL;
#endif
}

static void on_tb_exec(unsigned int vcpu, void *udata)
{
  uint64_t n = (uint64_t)(uintptr_t)udata;
  (void)vcpu;
  if (!rom_reload && !rom_reload_removed) {
    /* The first boot has started: the initial reset has written the image. From now on a power cut
     * does not rewrite it (it is flash: it keeps its contents), so QEMU keeps its translated code. */
    rom_reload_removed = 1;
    if (rom_reset_fn) {
      qemu_unregister_reset(rom_reset_fn, NULL);
    }
  }
  if (cut_pending) {
    /* the first TB after the reset: nothing ran in between, so this is the count at the power cut */
    if (vec_push(&cut_at, insn_count) != 0) {
      oom = 1;
    }
    cut_pending = 0;
  }
  while (wr_next < wr_count.n && insn_count >= wr_count.v[wr_next]) {
    unsigned char b[4];
    uint64_t v = wr_value.v[wr_next];
    size_t k;
    for (k = 0; k < wr_size.v[wr_next]; k++) {
      b[k] = (unsigned char)(v >> (8 * k));
    }
    cpu_physical_memory_rw(wr_addr.v[wr_next], b, wr_size.v[wr_next], 1);
    wr_next++;
  }
  if (have_stop && insn_count >= stop_at) {
    stopped = 1;
    exit(BL_STOP_EXIT); /* the atexit handler writes the report, as on the semihosting exit path */
  }
  if (next_cut < cuts.n && insn_count + n >= cuts.v[next_cut]) {
    next_cut++;
    resets_requested++;
    cut_pending = 1;
    qemu_system_reset_request(BL_SHUTDOWN_CAUSE_GUEST_RESET);
  }
}

static void on_mark(unsigned int vcpu, void *udata)
{
  size_t slot = (size_t)(uintptr_t)udata;
  (void)vcpu;
  id_hits[slot]++;
  if (cuts_end_id >= 0 && (long long)slot == cuts_end_id) {
    cuts.n = next_cut; /* no further count-based cuts */
    ccut_s.n = ccut_next;
  }
  if (record_all || id_recorded[slot]) {
    if (vec_push(&hit_counts, insn_count) != 0 || vec_push(&hit_counts, slot) != 0) {
      oom = 1;
    }
  }
}

static void on_trace(unsigned int vcpu, void *udata)
{
  (void)vcpu;
  if (trace_counts.n < BL_MAX_TRACE && vec_push(&trace_counts, insn_count) != 0) {
    oom = 1;
  }
  if (ccut_next >= ccut_s.n) {
    return;
  }
  if (udata) { /* the function's entry */
    ccut_calls++;
    ccut_off = 0;
  }
  ccut_off++;
  if (!cut_pending && ccut_calls == ccut_s.v[ccut_next] && ccut_off == ccut_k.v[ccut_next]) {
    /* before this instruction executes: with one instruction per TB the reset follows it exactly */
    ccut_next++;
    ccut_calls = 0;
    resets_requested++;
    cut_pending = 1;
    qemu_system_reset_request(BL_SHUTDOWN_CAUSE_GUEST_RESET);
  }
}

static void on_tb_trans(qemu_plugin_id_t id, struct qemu_plugin_tb *tb)
{
  size_t n = qemu_plugin_tb_n_insns(tb);
  size_t i;
  (void)id;
  translations++;
  if (cuts.n > 0 || have_stop || ccut_s.n > 0 || wr_count.n > 0) {
    qemu_plugin_register_vcpu_tb_exec_cb(tb, on_tb_exec, QEMU_PLUGIN_CB_NO_REGS, (void *)(uintptr_t)n);
  }
  for (i = 0; i < n; i++) {
    struct qemu_plugin_insn *insn = qemu_plugin_tb_get_insn(tb, i);
    uint64_t va = qemu_plugin_insn_vaddr(insn);
    if (have_mark && va == mark_addr) {
      qemu_plugin_register_vcpu_insn_exec_cb(insn, on_mark, QEMU_PLUGIN_CB_NO_REGS,
                                             (void *)(uintptr_t)BL_MAX_TABLE);
    }
    if (table_n && va >= table_addr && va < table_addr + table_n * table_stride &&
        (va - table_addr) % table_stride == 0) {
      uintptr_t slot = (uintptr_t)((va - table_addr) / table_stride);
      qemu_plugin_register_vcpu_insn_exec_cb(insn, on_mark, QEMU_PLUGIN_CB_NO_REGS, (void *)slot);
    }
    if (have_trace && va >= trace_lo && va < trace_hi) {
      qemu_plugin_register_vcpu_insn_exec_cb(insn, on_trace, QEMU_PLUGIN_CB_NO_REGS,
                                             (void *)(uintptr_t)(va == trace_lo));
    }
    qemu_plugin_register_vcpu_insn_exec_inline(insn, QEMU_PLUGIN_INLINE_ADD_U64, &insn_count, 1);
  }
}

static long long slot_id(uint64_t slot) { return slot == BL_MAX_TABLE ? -1 : (long long)slot; }

static void report(void)
{
  FILE *f = NULL;
  char *buf = NULL;
  size_t len = 0;
  size_t i;
  if (reported) {
    return;
  }
  reported = 1;
  if (cut_pending) { /* QEMU ended before the next TB: the reset never took effect */
    if (vec_push(&cut_at, insn_count) != 0) {
      oom = 1;
    }
    cut_pending = 0;
  }
  if (out_path[0]) {
    f = fopen(out_path, "w");
  } else {
    f = open_memstream(&buf, &len);
  }
  if (!f) {
    return;
  }
  fprintf(f, "insns %" PRIu64 "\n", insn_count);
  fprintf(f, "resets %zu\n", resets_requested);
  for (i = 0; i < resets_requested && i < cut_at.n; i++) {
    /* REQUESTED: the count asked for (cuts=), or 0 for a call-relative cut (callcuts=) */
    fprintf(f, "cut %zu %" PRIu64 " %" PRIu64 "\n", i, cut_at.v[i], ccut_s.n == 0 ? cuts.v[i] : 0);
  }
  for (i = 0; i + 1 < hit_counts.n; i += 2) {
    fprintf(f, "mark %zu %" PRIu64 " %lld\n", i / 2, hit_counts.v[i], slot_id(hit_counts.v[i + 1]));
  }
  for (i = 0; i <= BL_MAX_TABLE; i++) {
    if (id_hits[i]) {
      fprintf(f, "marks %lld %" PRIu64 "\n", slot_id(i), id_hits[i]);
    }
  }
  for (i = 0; i < trace_counts.n; i++) {
    fprintf(f, "trace %" PRIu64 "\n", trace_counts.v[i]);
  }
  if (stopped) {
    fprintf(f, "stopped %" PRIu64 "\n", insn_count);
  }
  fprintf(f, "translations %" PRIu64 "\n", translations);
  if (!rom_reload) {
    fprintf(f, "romreload %s\n", rom_reset_fn ? "off" : "on (the ROM reset handler was not found)");
  }
  if (oom) {
    fprintf(f, "error out of memory recording cuts or mark hits\n");
  }
  fclose(f);
  if (buf) {
    qemu_plugin_outs(buf);
    free(buf);
  }
}

static void on_exit_cb(qemu_plugin_id_t id, void *udata)
{
  (void)id;
  (void)udata;
  report();
}

/* Semihosting SYS_EXIT and stop=N end QEMU through exit(); the report is written on that path too. */
static void on_process_exit(void) { report(); }

/* One count: decimal (or 0x hex) digits, strictly above the previous one. */
static int add_cut(const char *s, const char **rest)
{
  char *end;
  uint64_t v;
  if (*s < '0' || *s > '9') {
    return -1;
  }
  v = strtoull(s, &end, 0);
  if (end == s || v == 0 || (cuts.n > 0 && v <= cuts.v[cuts.n - 1])) {
    return -1;
  }
  if (vec_push(&cuts, v) != 0) {
    return -2;
  }
  *rest = end;
  return 0;
}

static int parse_cuts(const char *s)
{
  while (*s) {
    if (add_cut(s, &s) != 0) {
      return -1;
    }
    if (*s == ':') {
      s++;
      if (!*s) {
        return -1;
      }
    } else if (*s) {
      return -1;
    }
  }
  return 0;
}

/* One count per line; returns 0, or the 1-based number of the first bad line (-1: cannot open). */
static long parse_cuts_file(const char *path)
{
  FILE *f = fopen(path, "r");
  char line[64];
  long lineno = 0;
  if (!f) {
    return -1;
  }
  while (fgets(line, sizeof line, f)) {
    const char *rest;
    size_t l = strlen(line);
    lineno++;
    if (l == sizeof line - 1 && line[l - 1] != '\n') {
      fclose(f);
      return lineno;
    }
    while (l > 0 && (line[l - 1] == '\n' || line[l - 1] == '\r' || line[l - 1] == ' ')) {
      line[--l] = '\0';
    }
    if (add_cut(line, &rest) != 0 || *rest != '\0') {
      fclose(f);
      return lineno;
    }
  }
  fclose(f);
  return 0;
}

/* writesfile=: 0 if every line is "COUNT ADDR SIZE VALUE" (COUNT ascending, SIZE 1/2/4, VALUE fits),
 * else the bad line's number (-1: unreadable) */
static long parse_writes_file(const char *path)
{
  FILE *f = fopen(path, "r");
  char line[128];
  long lineno = 0;
  if (!f) {
    return -1;
  }
  while (fgets(line, sizeof line, f)) {
    unsigned long long c, a, sz, v;
    char extra;
    lineno++;
    if (sscanf(line, "%llu %llx %llu %llu %c", &c, &a, &sz, &v, &extra) != 4 ||
        (sz != 1 && sz != 2 && sz != 4) || (sz < 8 && v >> (8 * sz)) ||
        (wr_count.n && c < wr_count.v[wr_count.n - 1]) || vec_push(&wr_count, c) != 0 ||
        vec_push(&wr_addr, a) != 0 || vec_push(&wr_size, sz) != 0 || vec_push(&wr_value, v) != 0) {
      fclose(f);
      return lineno;
    }
  }
  fclose(f);
  return 0;
}

static int parse_ids(const char *s)
{
  record_all = 0;
  if (strcmp(s, "none") == 0) {
    return 0;
  }
  while (*s) {
    char *end;
    long v = strtol(s, &end, 10);
    if (end == s || v < -1 || v >= BL_MAX_TABLE) {
      return -1;
    }
    id_recorded[v < 0 ? BL_MAX_TABLE : v] = 1;
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
      if (*end != '\0' || table_n == 0 || table_n > BL_MAX_TABLE || table_stride == 0) {
        fprintf(stderr, "bl_insn: marktable= wants ADDR:N:STRIDE (N <= %d), got '%s'\n", BL_MAX_TABLE, a + 10);
        return -1;
      }
    } else if (strncmp(a, "markids=", 8) == 0) {
      if (parse_ids(a + 8) != 0) {
        fprintf(stderr, "bl_insn: markids= wants 'none' or mark ids (-1..%d) separated by ':', got '%s'\n",
                BL_MAX_TABLE - 1, a + 8);
        return -1;
      }
    } else if (strncmp(a, "cuts=", 5) == 0) {
      if (parse_cuts(a + 5) != 0) {
        fprintf(stderr, "bl_insn: cuts= wants positive, strictly ascending counts separated by ':', got '%s'\n",
                a + 5);
        return -1;
      }
    } else if (strncmp(a, "cutsfile=", 9) == 0) {
      long bad = parse_cuts_file(a + 9);
      if (bad < 0) {
        fprintf(stderr, "bl_insn: cutsfile=%s cannot be read\n", a + 9);
        return -1;
      }
      if (bad > 0) {
        fprintf(stderr,
                "bl_insn: cutsfile=%s line %ld: want one positive count per line, strictly ascending\n",
                a + 9, bad);
        return -1;
      }
    } else if (strncmp(a, "writesfile=", 11) == 0) {
      long bad = parse_writes_file(a + 11);
      if (bad != 0) {
        fprintf(stderr, "bl_insn: writesfile=%s %s%ld: want lines 'COUNT ADDR SIZE VALUE' (COUNT ascending, "
                        "SIZE 1/2/4, VALUE fits SIZE)\n", a + 11, bad < 0 ? "cannot be read" : "line ", bad < 0 ? 0L : bad);
        return -1;
      }
      if (cpu_physical_memory_rw == NULL) {
        fprintf(stderr, "bl_insn: this qemu-system-arm does not export cpu_physical_memory_rw; writesfile= "
                        "needs Debian's QEMU 7.2 build\n");
        return -1;
      }
    } else if (strncmp(a, "trace=", 6) == 0) {
      char *end;
      trace_lo = strtoull(a + 6, &end, 0) & ~(uint64_t)1;
      trace_hi = *end == ':' ? strtoull(end + 1, &end, 0) : 0;
      if (*end != '\0' || trace_hi <= trace_lo) {
        fprintf(stderr, "bl_insn: trace= wants LO:HI with LO < HI, got '%s'\n", a + 6);
        return -1;
      }
      have_trace = 1;
    } else if (strncmp(a, "callcuts=", 9) == 0) {
      const char *q = a + 9;
      while (*q) {
        char *end;
        uint64_t sk = strtoull(q, &end, 10), k;
        if (end == q || *end != '/' || sk == 0) {
          break;
        }
        q = end + 1;
        k = strtoull(q, &end, 10);
        if (end == q || k == 0 || vec_push(&ccut_s, sk) != 0 || vec_push(&ccut_k, k) != 0) {
          break;
        }
        q = *end == ':' ? end + 1 : end;
        if (*end != ':' && *end != '\0') {
          break;
        }
      }
      if (*q != '\0' || ccut_s.n == 0) {
        fprintf(stderr, "bl_insn: callcuts= wants CALLS/INSN pairs (both >= 1) separated by ':', got '%s'\n",
                a + 9);
        return -1;
      }
    } else if (strncmp(a, "cutsend=", 8) == 0) {
      char *end;
      cuts_end_id = strtoll(a + 8, &end, 10);
      if (end == a + 8 || *end != '\0' || cuts_end_id < 0 || cuts_end_id >= BL_MAX_TABLE) {
        fprintf(stderr, "bl_insn: cutsend= wants a mark id 0..%d, got '%s'\n", BL_MAX_TABLE - 1, a + 8);
        return -1;
      }
    } else if (strcmp(a, "romreload=off") == 0) {
      rom_reload = 0;
    } else if (strcmp(a, "romreload=on") == 0) {
      rom_reload = 1;
    } else if (strncmp(a, "stop=", 5) == 0) {
      char *end;
      stop_at = strtoull(a + 5, &end, 0);
      if (a[5] < '0' || a[5] > '9' || *end != '\0') {
        fprintf(stderr, "bl_insn: stop= wants an instruction count, got '%s'\n", a + 5);
        return -1;
      }
      have_stop = 1;
    } else {
      fprintf(stderr, "bl_insn: unknown argument '%s' (known: out=, mark=, marktable=, markids=, cuts=, "
                      "cutsfile=, writesfile=, stop=, trace=, callcuts=, cutsend=, romreload=)\n", a);
      return -1;
    }
  }
  if (ccut_s.n > 0 && !have_trace) {
    fprintf(stderr, "bl_insn: callcuts= needs trace= (the function)\n");
    return -1;
  }
  if ((cuts.n > 0 || ccut_s.n > 0) && qemu_system_reset_request == NULL) {
    fprintf(stderr, "bl_insn: this qemu-system-arm does not export qemu_system_reset_request; power cuts "
                    "need Debian's QEMU 7.2 build\n");
    return -1;
  }
  if (!rom_reload) {
    rom_reset_fn = rom_reset_handler();
  }
  qemu_plugin_register_vcpu_tb_trans_cb(id, on_tb_trans);
  qemu_plugin_register_atexit_cb(id, on_exit_cb, NULL);
  atexit(on_process_exit);
  return 0;
}
