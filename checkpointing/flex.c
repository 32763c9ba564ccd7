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
#if defined(__MSP430__)
#include "bl_msp430.h" /* BL_CRC32* where the board has the CRC32 module */
#endif

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

/* CRC-32, reflected polynomial 0xEDB88320, init and final xor 0xFFFFFFFF; a byte per step (256-entry
 * table in the code region: 1 KB, about half the instructions per byte of the 16-entry nibble table on
 * both targets — the commit and the recovery each run it over 12 bytes). */
static const uint32_t crc_byte[256] = {
  0x00000000ul, 0x77073096ul, 0xEE0E612Cul, 0x990951BAul, 0x076DC419ul, 0x706AF48Ful, 0xE963A535ul, 0x9E6495A3ul,
  0x0EDB8832ul, 0x79DCB8A4ul, 0xE0D5E91Eul, 0x97D2D988ul, 0x09B64C2Bul, 0x7EB17CBDul, 0xE7B82D07ul, 0x90BF1D91ul,
  0x1DB71064ul, 0x6AB020F2ul, 0xF3B97148ul, 0x84BE41DEul, 0x1ADAD47Dul, 0x6DDDE4EBul, 0xF4D4B551ul, 0x83D385C7ul,
  0x136C9856ul, 0x646BA8C0ul, 0xFD62F97Aul, 0x8A65C9ECul, 0x14015C4Ful, 0x63066CD9ul, 0xFA0F3D63ul, 0x8D080DF5ul,
  0x3B6E20C8ul, 0x4C69105Eul, 0xD56041E4ul, 0xA2677172ul, 0x3C03E4D1ul, 0x4B04D447ul, 0xD20D85FDul, 0xA50AB56Bul,
  0x35B5A8FAul, 0x42B2986Cul, 0xDBBBC9D6ul, 0xACBCF940ul, 0x32D86CE3ul, 0x45DF5C75ul, 0xDCD60DCFul, 0xABD13D59ul,
  0x26D930ACul, 0x51DE003Aul, 0xC8D75180ul, 0xBFD06116ul, 0x21B4F4B5ul, 0x56B3C423ul, 0xCFBA9599ul, 0xB8BDA50Ful,
  0x2802B89Eul, 0x5F058808ul, 0xC60CD9B2ul, 0xB10BE924ul, 0x2F6F7C87ul, 0x58684C11ul, 0xC1611DABul, 0xB6662D3Dul,
  0x76DC4190ul, 0x01DB7106ul, 0x98D220BCul, 0xEFD5102Aul, 0x71B18589ul, 0x06B6B51Ful, 0x9FBFE4A5ul, 0xE8B8D433ul,
  0x7807C9A2ul, 0x0F00F934ul, 0x9609A88Eul, 0xE10E9818ul, 0x7F6A0DBBul, 0x086D3D2Dul, 0x91646C97ul, 0xE6635C01ul,
  0x6B6B51F4ul, 0x1C6C6162ul, 0x856530D8ul, 0xF262004Eul, 0x6C0695EDul, 0x1B01A57Bul, 0x8208F4C1ul, 0xF50FC457ul,
  0x65B0D9C6ul, 0x12B7E950ul, 0x8BBEB8EAul, 0xFCB9887Cul, 0x62DD1DDFul, 0x15DA2D49ul, 0x8CD37CF3ul, 0xFBD44C65ul,
  0x4DB26158ul, 0x3AB551CEul, 0xA3BC0074ul, 0xD4BB30E2ul, 0x4ADFA541ul, 0x3DD895D7ul, 0xA4D1C46Dul, 0xD3D6F4FBul,
  0x4369E96Aul, 0x346ED9FCul, 0xAD678846ul, 0xDA60B8D0ul, 0x44042D73ul, 0x33031DE5ul, 0xAA0A4C5Ful, 0xDD0D7CC9ul,
  0x5005713Cul, 0x270241AAul, 0xBE0B1010ul, 0xC90C2086ul, 0x5768B525ul, 0x206F85B3ul, 0xB966D409ul, 0xCE61E49Ful,
  0x5EDEF90Eul, 0x29D9C998ul, 0xB0D09822ul, 0xC7D7A8B4ul, 0x59B33D17ul, 0x2EB40D81ul, 0xB7BD5C3Bul, 0xC0BA6CADul,
  0xEDB88320ul, 0x9ABFB3B6ul, 0x03B6E20Cul, 0x74B1D29Aul, 0xEAD54739ul, 0x9DD277AFul, 0x04DB2615ul, 0x73DC1683ul,
  0xE3630B12ul, 0x94643B84ul, 0x0D6D6A3Eul, 0x7A6A5AA8ul, 0xE40ECF0Bul, 0x9309FF9Dul, 0x0A00AE27ul, 0x7D079EB1ul,
  0xF00F9344ul, 0x8708A3D2ul, 0x1E01F268ul, 0x6906C2FEul, 0xF762575Dul, 0x806567CBul, 0x196C3671ul, 0x6E6B06E7ul,
  0xFED41B76ul, 0x89D32BE0ul, 0x10DA7A5Aul, 0x67DD4ACCul, 0xF9B9DF6Ful, 0x8EBEEFF9ul, 0x17B7BE43ul, 0x60B08ED5ul,
  0xD6D6A3E8ul, 0xA1D1937Eul, 0x38D8C2C4ul, 0x4FDFF252ul, 0xD1BB67F1ul, 0xA6BC5767ul, 0x3FB506DDul, 0x48B2364Bul,
  0xD80D2BDAul, 0xAF0A1B4Cul, 0x36034AF6ul, 0x41047A60ul, 0xDF60EFC3ul, 0xA867DF55ul, 0x316E8EEFul, 0x4669BE79ul,
  0xCB61B38Cul, 0xBC66831Aul, 0x256FD2A0ul, 0x5268E236ul, 0xCC0C7795ul, 0xBB0B4703ul, 0x220216B9ul, 0x5505262Ful,
  0xC5BA3BBEul, 0xB2BD0B28ul, 0x2BB45A92ul, 0x5CB36A04ul, 0xC2D7FFA7ul, 0xB5D0CF31ul, 0x2CD99E8Bul, 0x5BDEAE1Dul,
  0x9B64C2B0ul, 0xEC63F226ul, 0x756AA39Cul, 0x026D930Aul, 0x9C0906A9ul, 0xEB0E363Ful, 0x72076785ul, 0x05005713ul,
  0x95BF4A82ul, 0xE2B87A14ul, 0x7BB12BAEul, 0x0CB61B38ul, 0x92D28E9Bul, 0xE5D5BE0Dul, 0x7CDCEFB7ul, 0x0BDBDF21ul,
  0x86D3D2D4ul, 0xF1D4E242ul, 0x68DDB3F8ul, 0x1FDA836Eul, 0x81BE16CDul, 0xF6B9265Bul, 0x6FB077E1ul, 0x18B74777ul,
  0x88085AE6ul, 0xFF0F6A70ul, 0x66063BCAul, 0x11010B5Cul, 0x8F659EFFul, 0xF862AE69ul, 0x616BFFD3ul, 0x166CCF45ul,
  0xA00AE278ul, 0xD70DD2EEul, 0x4E048354ul, 0x3903B3C2ul, 0xA7672661ul, 0xD06016F7ul, 0x4969474Dul, 0x3E6E77DBul,
  0xAED16A4Aul, 0xD9D65ADCul, 0x40DF0B66ul, 0x37D83BF0ul, 0xA9BCAE53ul, 0xDEBB9EC5ul, 0x47B2CF7Ful, 0x30B5FFE9ul,
  0xBDBDF21Cul, 0xCABAC28Aul, 0x53B39330ul, 0x24B4A3A6ul, 0xBAD03605ul, 0xCDD70693ul, 0x54DE5729ul, 0x23D967BFul,
  0xB3667A2Eul, 0xC4614AB8ul, 0x5D681B02ul, 0x2A6F2B94ul, 0xB40BBE37ul, 0xC30C8EA1ul, 0x5A05DF1Bul, 0x2D02EF8Dul,
};

uint32_t bl_flex_crc32(const void *data, size_t n)
{
  const volatile uint8_t *p = (const volatile uint8_t *)data;
  uint32_t crc = 0xFFFFFFFFul;
  size_t i;
  for (i = 0; i < n; i++) {
    crc = crc_byte[(uint8_t)(crc ^ p[i])] ^ (crc >> 8);
  }
  return crc ^ 0xFFFFFFFFul;
}

/* The record's CRC (the same value as bl_flex_crc32 over its first 12 bytes, which are little-endian on
 * every target) a 32-bit word at a time from the field values: three loads instead of twelve byte loads,
 * and the table step per byte without a load — the commit and every recovery run it. */
/* always inlined: the commit and the recovery are each one function, so the harnesses' exact sweeps over a
 * function's instructions (sweeps.py) cover the CRC computation too */
static inline __attribute__((always_inline)) uint32_t crc_word(uint32_t crc, uint32_t w)
{
  crc ^= w;
  crc = crc_byte[crc & 0xFFu] ^ (crc >> 8);
  crc = crc_byte[crc & 0xFFu] ^ (crc >> 8);
  crc = crc_byte[crc & 0xFFu] ^ (crc >> 8);
  return crc_byte[crc & 0xFFu] ^ (crc >> 8);
}

/* EVE images (flex.h): the record's fourth word {mode, reserved} is under the CRC too */
#if BL_EVE_MODES > 1
#define RECORD_MODE_WORD(r) ((uint32_t)(r)->mode | ((uint32_t)(r)->reserved << 16))
#else
#define RECORD_MODE_WORD(r) 0u
#endif

/* The MSP430FR5994's CRC32 module computes the same CRC-32 (SLAU367 "CRC32 Module"; bl_msp430.h): six word
 * writes and two reads instead of ~200 instructions of table steps on the 16-bit CPU, in the commit and in
 * every resumed boot's recovery. Used only if the probe at the start of every recovery (a known word, its
 * CRC-32 from zlib) matches: mspdebug's simulator has no such module, a chip without it reads something else,
 * and a misread bit order would fail the probe too — then the software path runs, with the same result. */
#if defined(__MSP430__) && defined(BL_BOARD_CRC32_BASE)
#define CRC_HW 1
static uint8_t crc_hw; /* RAM: 1 after a successful probe in this boot */
static void crc_hw_probe(void)
{
  BL_CRC32INIRESW0 = 0xFFFFu;
  BL_CRC32INIRESW1 = 0xFFFFu;
  BL_CRC32DIW0 = BL_CRC32_PROBE_WORD;
  crc_hw = (uint8_t)(BL_CRC32RESRW1 == BL_CRC32_PROBE_LO && BL_CRC32RESRW0 == BL_CRC32_PROBE_HI);
}
#else
#define CRC_HW 0
#endif

static inline __attribute__((always_inline)) uint32_t record_crc_of(uint32_t version, uint32_t inference,
                                                                    uint16_t next_task, uint16_t num_tasks,
                                                                    uint32_t mode_word)
{
#if CRC_HW
  if (crc_hw) {
    BL_CRC32INIRESW0 = 0xFFFFu;
    BL_CRC32INIRESW1 = 0xFFFFu;
    BL_CRC32DIW0 = (uint16_t)version;
    BL_CRC32DIW0 = (uint16_t)(version >> 16);
    BL_CRC32DIW0 = (uint16_t)inference;
    BL_CRC32DIW0 = (uint16_t)(inference >> 16);
    BL_CRC32DIW0 = next_task;
    BL_CRC32DIW0 = num_tasks;
#if BL_EVE_MODES > 1
    BL_CRC32DIW0 = (uint16_t)mode_word;
    BL_CRC32DIW0 = (uint16_t)(mode_word >> 16);
#endif
    return ~((uint32_t)BL_CRC32RESRW1 | ((uint32_t)BL_CRC32RESRW0 << 16));
  }
#endif
  uint32_t crc = crc_word(0xFFFFFFFFul, version);
  crc = crc_word(crc, inference);
  crc = crc_word(crc, (uint32_t)next_task | ((uint32_t)num_tasks << 16));
#if BL_EVE_MODES > 1
  crc = crc_word(crc, mode_word);
#else
  (void)mode_word;
#endif
  return crc ^ 0xFFFFFFFFul;
}

__attribute__((unused)) static uint32_t record_crc(const volatile bl_flex_record *r) /* unused: BROKEN 2, 6 */
{
  return record_crc_of(r->version, r->inference, r->next_task, r->num_tasks, RECORD_MODE_WORD(r));
}

bl_flex_recovery bl_flex_recover(uint16_t num_tasks, bl_flex_state *st)
{
  uint16_t active = bl_flex.active;
  const volatile bl_flex_record *r;
  uint8_t slot;
#if CRC_HW
  crc_hw_probe(); /* every boot: the commits of this boot use what it finds too */
#endif
  st->kind = BL_FLEX_CORRUPT;
  st->next_task = 0u;
  st->inference = 0u;
  st->version = 0u;
  st->slot = 1u; /* so that the first commit writes slot 0 */
  st->mode = 0u;
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
  if (record_crc(r) != r->crc || r->num_tasks != num_tasks || r->next_task > num_tasks) {
    return BL_FLEX_CORRUPT;
  }
#endif
  st->kind = BL_FLEX_RESUME;
  st->next_task = r->next_task;
  st->inference = r->inference;
  st->version = r->version;
  st->slot = slot;
#if BL_EVE_MODES > 1
  st->mode = r->mode;
#endif
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
#if BL_EVE_MODES > 1
  r.mode = st->mode;
  r.reserved = 0u;
#endif
  r.crc = record_crc_of(r.version, r.inference, r.next_task, r.num_tasks, RECORD_MODE_WORD(&r));
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
#if BL_EVE_MODES > 1
  dst->mode = r.mode;
  dst->reserved = r.reserved;
  WORD_WRITTEN();
#endif
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
