/* FLEX runtime: CRC-32, commit protocol and read-only recovery (see flex.h for the layout and the argument).
 *
 * Build-time switches:
 *   BL_FLEX_MARK_WRITES=1  bl_mark() after every word written to a record, so the host harness (which cuts
 *                          power at marks) can cut between any two NVM writes of the protocol: torn records.
 *   BL_FLEX_BROKEN=N       deliberately broken variants, so tests can show that the harnesses catch them
 *                          (1 early-advance and 5 commit-before-output are in the flex app):
 *                          2 trust-record: recovery trusts the record `active` names (no CRC, no bounds);
 *                          3 pointer-before-payload: the commit stores `active` first, then the record;
 *                          4 pointer-before-crc: the record without its CRC, `active`, then the CRC;
 *                          6 recovery-without-crc: recovery checks pointer and bounds but not the CRC.
 *   BL_FLEX_VLOW_PERIOD=N  simulated voltage monitor: bl_voltage_low() is true on every N-th call.
 */
#include "flex.h"

#include "bl_platform.h"

#ifndef BL_FLEX_MARK_WRITES
#define BL_FLEX_MARK_WRITES 0
#endif
#ifndef BL_FLEX_BROKEN
#define BL_FLEX_BROKEN 0
#endif
#ifndef BL_FLEX_VLOW_PERIOD
#define BL_FLEX_VLOW_PERIOD 0
#endif

BL_NVM bl_flex_nvm bl_flex;
#if BL_FLEX_CONTINUOUS && !defined(BL_PLATFORM_HOST)
uint8_t bl_flex_marks_on = 1u;
#endif

/* CRC-32, reflected polynomial 0xEDB88320, init and final xor 0xFFFFFFFF; four bits per step. */
static const uint32_t crc_nibble[16] = {
  0x00000000ul, 0x1DB71064ul, 0x3B6E20C8ul, 0x26D930ACul, 0x76DC4190ul, 0x6B6B51F4ul, 0x4DB26158ul, 0x5005713Cul,
  0xEDB88320ul, 0xF00F9344ul, 0xD6D6A3E8ul, 0xCB61B38Cul, 0x9B64C2B0ul, 0x86D3D2D4ul, 0xA00AE278ul, 0xBDBDF21Cul,
};

uint32_t bl_flex_crc32(const void *data, size_t n)
{
  const volatile uint8_t *p = (const volatile uint8_t *)data;
  uint32_t crc = 0xFFFFFFFFul;
  size_t i;
  for (i = 0; i < n; i++) {
    crc ^= p[i];
    crc = (crc >> 4) ^ crc_nibble[crc & 0xFu];
    crc = (crc >> 4) ^ crc_nibble[crc & 0xFu];
  }
  return crc ^ 0xFFFFFFFFul;
}

static uint32_t record_crc(const bl_flex_record *r) { return bl_flex_crc32(r, offsetof(bl_flex_record, crc)); }

bl_flex_recovery bl_flex_recover(uint16_t num_tasks, bl_flex_state *st)
{
  uint16_t active = bl_flex.active;
  const volatile bl_flex_record *r;
  uint8_t slot;
  st->kind = BL_FLEX_CORRUPT;
  st->next_task = 0u;
  st->inference = 0u;
  st->version = 0u;
  st->slot = 1u; /* so that the first commit writes slot 0 */
  if (active == BL_FLEX_SLOT0) {
    slot = 0u;
  } else if (active == BL_FLEX_SLOT1) {
    slot = 1u;
  } else {
#if BL_FLEX_BROKEN == 2
    slot = (uint8_t)(active & 1u);
#else
    /* No commit point was ever stored. Only the first commit writes record 0 with version 1 before
     * `active` exists: if that is all there is, a cut landed inside the first commit (UNBORN, expected);
     * anything else (a flipped pointer after commits, garbage) is CORRUPT. */
    if (active == 0u && bl_flex.rec[0].version == 0u && bl_flex.rec[1].version == 0u) {
      st->kind = BL_FLEX_EMPTY;
    } else if (bl_flex.rec[0].version <= 1u && bl_flex.rec[1].version == 0u) {
      st->kind = BL_FLEX_UNBORN;
    }
    return st->kind;
#endif
  }
  r = &bl_flex.rec[slot];
#if BL_FLEX_BROKEN == 2
  (void)num_tasks;
#elif BL_FLEX_BROKEN == 6
  if (r->num_tasks != num_tasks || r->next_task > num_tasks) { /* BROKEN: the CRC is not checked */
    return BL_FLEX_CORRUPT;
  }
#else
  if (record_crc((const bl_flex_record *)r) != r->crc || r->num_tasks != num_tasks || r->next_task > num_tasks) {
    return BL_FLEX_CORRUPT;
  }
#endif
  st->kind = BL_FLEX_RESUME;
  st->next_task = r->next_task;
  st->inference = r->inference;
  st->version = r->version;
  st->slot = slot;
  return BL_FLEX_RESUME;
}

#if BL_FLEX_MARK_WRITES
#define WORD_WRITTEN() BL_FLEX_MARK(BL_FLEX_MARK_WORD)
#else
#define WORD_WRITTEN() ((void)0)
#endif

void bl_flex_commit(bl_flex_state *st, uint16_t next_task, uint16_t num_tasks)
{
  bl_flex_record r;
  volatile bl_flex_record *dst;
  uint8_t slot = (uint8_t)(st->slot ^ 1u);
  r.version = st->version + 1u;
  r.inference = st->inference;
  r.next_task = next_task;
  r.num_tasks = num_tasks;
  r.crc = record_crc(&r);
  dst = &bl_flex.rec[slot];
#if BL_FLEX_BROKEN == 3
  bl_flex.active = slot ? BL_FLEX_SLOT1 : BL_FLEX_SLOT0; /* BROKEN: pointer before the payload */
  BL_FLEX_MARK(BL_FLEX_MARK_FLIP);
#endif
  /* field by field in memory order: a cut anywhere in here leaves a torn inactive record, never read */
  dst->version = r.version;
  WORD_WRITTEN();
  dst->inference = r.inference;
  WORD_WRITTEN();
  dst->next_task = r.next_task;
  dst->num_tasks = r.num_tasks;
  WORD_WRITTEN();
#if BL_FLEX_BROKEN == 4
  bl_flex.active = slot ? BL_FLEX_SLOT1 : BL_FLEX_SLOT0; /* BROKEN: pointer before the CRC */
  BL_FLEX_MARK(BL_FLEX_MARK_FLIP);
#endif
  dst->crc = r.crc;
  BL_FLEX_MARK(BL_FLEX_MARK_RECORD);
#if BL_FLEX_BROKEN != 3 && BL_FLEX_BROKEN != 4
  BL_FLEX_BARRIER(); /* every earlier store (record, task outputs) before the commit point */
  bl_flex.active = slot ? BL_FLEX_SLOT1 : BL_FLEX_SLOT0; /* the commit point: one 16-bit store */
  BL_FLEX_MARK(BL_FLEX_MARK_FLIP);
#endif
  st->slot = slot;
  st->version = r.version;
  st->next_task = next_task;
}

void bl_flex_counters_init(void)
{
  if (bl_flex.counters_magic != BL_FLEX_COUNTERS_MAGIC) {
    bl_flex.boots = 0u;
    bl_flex.task_runs = 0u;
    bl_flex.corrupt = 0u;
    bl_flex.fresh = 0u;
    bl_flex.started = 0u;
    bl_flex.lost_max = 0u;
    bl_flex.unborn = 0u;
    bl_flex.counters_magic = BL_FLEX_COUNTERS_MAGIC;
  }
}

void bl_flex_account_lost(const bl_flex_state *st)
{
  uint16_t started = bl_flex.started;
  uint16_t done = st->kind == BL_FLEX_RESUME ? st->next_task : 0u;
  if (started > done && (uint16_t)(started - done) > bl_flex.lost_max) {
    bl_flex.lost_max = (uint16_t)(started - done);
  }
}

/* Weak: a platform with a real monitor (e.g. an MSP430 comparator or ADC reading) defines its own. */
#if BL_FLEX_VLOW_PERIOD > 0
static uint32_t vlow_calls; /* RAM: the simulated monitor restarts with every boot */
__attribute__((weak)) int bl_voltage_low(void)
{
  vlow_calls++;
  return (vlow_calls % (uint32_t)BL_FLEX_VLOW_PERIOD) == 0u;
}
#else
/* No monitor modelled (hardware comparator hook not written yet): never low, so JIT commits only at the
 * layer ends it always commits at. */
__attribute__((weak)) int bl_voltage_low(void) { return 0; }
#endif
