/* FLEX: the intermittent-computing runtime's non-volatile state and commit protocol.
 *
 * Layout (one struct in the board's NVM section, BL_NVM):
 *   rec[0], rec[1]  two commit records {version, inference, next_task, num_tasks, crc32}; the CRC-32
 *                   covers the first 12 bytes of the record;
 *   active          one 16-bit word naming the committed record (BL_FLEX_SLOT0 / BL_FLEX_SLOT1, two
 *                   codes 16 bits apart so no bit flip turns one into the other); anything else = no
 *                   valid state;
 *   counters        statistics (boots, task executions, corrupt states seen); not part of the protocol.
 *
 * Commit (bl_flex_commit): write the whole record into the inactive slot (version + 1, CRC), then write
 * `active` — a single-word store is the commit point. A power failure before it leaves the old commit in
 * force; one after it, the new one.
 *
 * Recovery (bl_flex_recover) only reads. It accepts the record `active` names if its CRC matches, its
 * num_tasks equals this image's and next_task <= num_tasks; any other state (bad pointer, bad CRC,
 * impossible index) means "start the inference again from task 0 with the input reloaded", which is always
 * correct because every task rewrites its outputs in full. The older record is never used as a fallback:
 * tasks after it may already have overwritten its inputs.
 */
#ifndef BL_FLEX_H
#define BL_FLEX_H

#include <stddef.h>
#include <stdint.h>

#define BL_FLEX_SLOT0 0x3CA5u
#define BL_FLEX_SLOT1 0xC35Au
#define BL_FLEX_COUNTERS_MAGIC 0xF1E7C0DEul

/* Mark ids (bl_mark) the runtime and the flex app emit; QEMU sees them modulo 256. Task t: t % 239 + 1. */
#define BL_FLEX_MARK_BOOT 0xF0u
#define BL_FLEX_MARK_RECORD 0xF1u /* record written, pointer not yet flipped */
#define BL_FLEX_MARK_FLIP 0xF2u   /* pointer flipped: committed */
#define BL_FLEX_MARK_WORD 0xF3u   /* one word of a record written (BL_FLEX_MARK_WRITES builds) */
#define BL_FLEX_MARK_INPUT 0xF4u  /* input loaded into NVM */
#define BL_FLEX_MARK_DONE 0xF5u   /* all tasks done, before the output is printed */

/* Every mark of the runtime and the flex app goes through BL_FLEX_MARK. Continuous-inference builds
 * (BL_FLEX_CONTINUOUS=1, firmware/apps/flex/main.c) can switch marks off for one run on the targets
 * (bl_flex_marks_on = 0: the QEMU plugin records at most 4,096 mark hits, a long emulated trace makes far
 * more); the host always marks, because its harness cuts power at marks. Other builds call bl_mark
 * directly, so their instruction counts do not change. */
#ifndef BL_FLEX_CONTINUOUS
#define BL_FLEX_CONTINUOUS 0
#endif
#if BL_FLEX_CONTINUOUS && !defined(BL_PLATFORM_HOST)
extern uint8_t bl_flex_marks_on; /* RAM, 1 after every reset */
#define BL_FLEX_MARK(id)     \
  do {                       \
    if (bl_flex_marks_on) {  \
      bl_mark(id);           \
    }                        \
  } while (0)
#else
#define BL_FLEX_MARK(id) bl_mark(id)
#endif

/* Ordering before the commit point: every store of the record (and of the task's outputs) must reach
 * memory before the pointer store. The compiler barrier stops GCC/Clang from sinking earlier stores past
 * it (without relying on bl_mark() being an opaque call); on Cortex-M a DMB also orders them in the
 * memory system (a no-op on the M4's in-order bus, required by the architecture for other cores/buses). */
#if defined(__ARM_ARCH) && !defined(BL_PLATFORM_HOST)
#define BL_FLEX_BARRIER() __asm__ volatile("dmb" ::: "memory")
#else
#define BL_FLEX_BARRIER() __asm__ volatile("" ::: "memory")
#endif

/* EVE (docs/eve.md): an image whose model has several modes (BL_EVE_MODES > 1, set by the generated
 * model.cmake) commits the mode an inference runs in with its progress, so an inference resumed after a
 * power failure finishes in the mode it started in; the record then has 4 more bytes under the CRC. */
#ifndef BL_EVE_MODES
#define BL_EVE_MODES 1
#endif

typedef struct {
  uint32_t version;   /* 1, 2, 3, ... per commit */
  uint32_t inference; /* which inference this progress belongs to */
  uint16_t next_task; /* first task not yet committed; == num_tasks: inference finished */
  uint16_t num_tasks; /* of the image that wrote it */
#if BL_EVE_MODES > 1
  uint16_t mode;      /* EVE mode of the inference (chosen when it started) */
  uint16_t reserved;  /* 0 */
#endif
  uint32_t crc;       /* CRC-32 (IEEE 802.3) over the bytes above (12, or 16 with the EVE mode) */
} bl_flex_record;

typedef struct {
  bl_flex_record rec[2];
  volatile uint16_t active;
  uint16_t pad;
  uint32_t counters_magic;
  uint32_t boots;          /* every boot of the flex app */
  uint32_t task_runs;      /* task executions, including re-executions */
  uint32_t corrupt;        /* recoveries that found a corrupt / torn / impossible state */
  uint32_t fresh;          /* inferences started from task 0 (first boot, corrupt state, restart policy) */
  /* What the harnesses check besides the logits (statistics too, written outside the protocol):
   * `started` = t + 1 is stored before task t runs (0 before an inference's first task), so at the next
   * boot started - next_task is the number of tasks whose work a power failure threw away; `lost_max` is
   * the most over all boots (FLEX: <= 1, one atomic step); `unborn` counts boots that found no commit
   * at all but a non-erased state (a cut inside the very first commit, or garbage at first power-up),
   * which the harnesses count apart from `corrupt` (a committed state that fails its checks). */
  volatile uint16_t started;
  uint16_t lost_max;
  uint32_t unborn;
} bl_flex_nvm;

typedef enum {
  BL_FLEX_RESUME = 0,  /* a valid commit: continue at next_task */
  BL_FLEX_EMPTY = 1,   /* no state at all (erased / first power-up) */
  BL_FLEX_CORRUPT = 2, /* bad pointer, bad CRC, wrong task count or impossible next_task */
  BL_FLEX_UNBORN = 3,  /* no commit ever landed: `active` was never written, only the first record (version
                        * <= 1) may be (a cut inside the first commit) */
} bl_flex_recovery;

typedef struct {
  bl_flex_recovery kind;
  uint16_t next_task;
  uint32_t inference;
  uint32_t version;
  uint8_t slot; /* the committed slot (valid for RESUME) */
  uint16_t mode; /* EVE mode committed with the progress (0 without modes) */
} bl_flex_state;

extern bl_flex_nvm bl_flex; /* in BL_NVM (flex.c) */

uint32_t bl_flex_crc32(const void *data, size_t n);
/* Read-only: classify the NVM state for an image with num_tasks tasks. */
bl_flex_recovery bl_flex_recover(uint16_t num_tasks, bl_flex_state *st);
/* Commit {next_task, inference} as the new state (double-buffered record + single-word flip). */
void bl_flex_commit(bl_flex_state *st, uint16_t next_task, uint16_t num_tasks);
/* Statistics (not part of the protocol): initialised once, then counted. */
void bl_flex_counters_init(void);
/* After recovery: account the work the last power failure threw away (started - next_task, see above). */
void bl_flex_account_lost(const bl_flex_state *st);

/* Voltage monitor hook for the just-in-time policy: nonzero when the energy buffer is nearly empty.
 * Platform-specific; see flex.c for what is simulated. */
int bl_voltage_low(void);

#endif /* BL_FLEX_H */
