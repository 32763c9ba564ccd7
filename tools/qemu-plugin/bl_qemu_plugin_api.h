/* batteryless: the subset of QEMU's TCG plugin API (QEMU 7.2, QEMU_PLUGIN_VERSION 1) that the
 * instruction-count / power-cut plugin uses, declared by the project from the API's documented facts
 * (REFERENCE.md §1). Debian's qemu-system-arm supports -plugin but ships no plugin header. The
 * functions are resolved at load time against the qemu-system-arm executable. */
#ifndef BL_QEMU_PLUGIN_API_H
#define BL_QEMU_PLUGIN_API_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define BL_QEMU_PLUGIN_VERSION 1
#define BL_PLUGIN_EXPORT __attribute__((visibility("default")))

typedef uint64_t qemu_plugin_id_t;

/* Only the leading members are read (target name, API version range); the rest is left opaque. */
typedef struct qemu_info_t {
  const char *target_name;
  struct {
    int min;
    int cur;
  } version;
  bool system_emulation;
} qemu_info_t;

struct qemu_plugin_tb;
struct qemu_plugin_insn;

enum qemu_plugin_cb_flags {
  QEMU_PLUGIN_CB_NO_REGS = 0,
  QEMU_PLUGIN_CB_R_REGS = 1,
  QEMU_PLUGIN_CB_RW_REGS = 2,
};

enum qemu_plugin_op {
  QEMU_PLUGIN_INLINE_ADD_U64 = 0,
};

typedef void (*qemu_plugin_udata_cb_t)(qemu_plugin_id_t id, void *userdata);
typedef void (*qemu_plugin_vcpu_udata_cb_t)(unsigned int vcpu_index, void *userdata);
typedef void (*qemu_plugin_vcpu_tb_trans_cb_t)(qemu_plugin_id_t id, struct qemu_plugin_tb *tb);

void qemu_plugin_register_vcpu_tb_trans_cb(qemu_plugin_id_t id, qemu_plugin_vcpu_tb_trans_cb_t cb);
/* Called at the entry of every execution of the translation block (before its first instruction). */
void qemu_plugin_register_vcpu_tb_exec_cb(struct qemu_plugin_tb *tb, qemu_plugin_vcpu_udata_cb_t cb,
                                          enum qemu_plugin_cb_flags flags, void *userdata);
void qemu_plugin_register_vcpu_insn_exec_cb(struct qemu_plugin_insn *insn, qemu_plugin_vcpu_udata_cb_t cb,
                                            enum qemu_plugin_cb_flags flags, void *userdata);
void qemu_plugin_register_vcpu_insn_exec_inline(struct qemu_plugin_insn *insn, enum qemu_plugin_op op,
                                                void *ptr, uint64_t imm);
size_t qemu_plugin_tb_n_insns(const struct qemu_plugin_tb *tb);
struct qemu_plugin_insn *qemu_plugin_tb_get_insn(const struct qemu_plugin_tb *tb, size_t idx);
uint64_t qemu_plugin_insn_vaddr(const struct qemu_plugin_insn *insn);
void qemu_plugin_register_atexit_cb(qemu_plugin_id_t id, qemu_plugin_udata_cb_t cb, void *userdata);
void qemu_plugin_outs(const char *string);

/* QEMU-internal (softmmu/runstate.c), exported by Debian's 7.2 binary; cause 7 = SHUTDOWN_CAUSE_GUEST_RESET,
 * the path a guest SYSRESETREQ takes. Weak, so the plugin loads (and reports clearly) if it is missing. */
void qemu_system_reset_request(int reason) __attribute__((weak));
#define BL_SHUTDOWN_CAUSE_GUEST_RESET 7
/* QEMU-internal (hw/core/reset.c, hw/core/loader.c), exported by Debian's 7.2 binary: the legacy reset
 * handler list, and the function that registers the ROM-blob reset handler (romreload=off). */
typedef void (*bl_reset_handler)(void *opaque);
void qemu_register_reset(bl_reset_handler func, void *opaque) __attribute__((weak));
void qemu_unregister_reset(bl_reset_handler func, void *opaque) __attribute__((weak));
int rom_check_and_register_reset(void) __attribute__((weak));
/* QEMU-internal (softmmu/physmem.c), exported by Debian's 7.2 binary: write guest memory (writesfile=). */
void cpu_physical_memory_rw(uint64_t addr, void *buf, uint64_t len, _Bool is_write) __attribute__((weak));

#endif /* BL_QEMU_PLUGIN_API_H */
