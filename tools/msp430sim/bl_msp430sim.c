/* batteryless MSP430FR5994 simulator: the MSP430X CPU, the MPY32, the FRAM controller's wait states and
 * cache, MCLK cycle counting and power cuts. Built as a shared library and driven from Python through
 * ctypes (host/batteryless/firmware/msp430sim.py), cached by source hash like the QEMU plugin.
 *
 * Written for this project from TI's MSP430FR58xx/59xx/68xx/69xx family user's guide (SLAU367): CPUX
 * chapter (addressing modes, instruction encodings incl. extension words, address instructions,
 * PUSHM/POPM, status bits, instruction cycle tables), MPY32 chapter (register map and operation), FRAM
 * controller chapter (NWAITS, cache), and the FR5994 datasheet SLASE54D (memory map). Timing sources and
 * assumptions are listed in one place: TIMING below. Nothing is copied from other simulators.
 *
 * Memory: one flat 1 MB byte array. Peripherals (0x0000-0x0FFF) are plain registers except the MPY32
 * (0x04C0-0x04EF), FRCTL0 (0x0140), the ADC12_B / REF_A subset of the EVE supply hook (see ADC below) and
 * the mark register (board.toml [emulator].mark_register), whose writes are logged with their MCLK cycle. A power cut keeps FRAM (info 0x1800-0x19FF and main FRAM
 * 0x4000-0x43FFF) and loses registers, SRAM (0x1C00-0x3BFF, incl. the LEA RAM), peripheral state and the
 * FRAM cache; SRAM is filled with a deterministic pseudo-random pattern, as real SRAM is not zero. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#define BL_API __attribute__((visibility("default")))

#define MEM_SIZE 0x100000u
#define ADDR_MASK 0xFFFFFu

enum { PC = 0, SP = 1, SR = 2, CG2 = 3 };
enum { F_C = 0x0001, F_Z = 0x0002, F_N = 0x0004, F_GIE = 0x0008, F_CPUOFF = 0x0010, F_V = 0x0100 };

/* Why bl_sim_run returned. */
enum {
  STOP_LIMIT = 0,   /* cycle or instruction limit reached */
  STOP_PC = 1,      /* PC reached stop_pc */
  STOP_HALT = 2,    /* CPUOFF with interrupts disabled: the CPU sleeps forever */
  STOP_ILLEGAL = 3, /* an opcode this CPU does not have */
  STOP_VACANT = 4,  /* fetch outside FRAM/SRAM (vacant memory) */
};

/* ---- TIMING -----------------------------------------------------------------------------------------
 * CPU cycles per instruction, from the MSP430X CPU cycle tables of SLAU367 §4.5.1.5 (the same tables are
 * in SLAU208 for the F5xx CPUX), indexed by addressing-mode class:
 *   source class: 0 = Rn or a constant-generator value, 1 = @Rn, 2 = @Rn+ or #N, 3 = x(Rn), EDE, &EDE
 *   destination class (format I): 0 = Rm, 1 = PC, 2 = x(Rm), EDE, &EDE
 * Format I (double operand): MOV, BIT and CMP to a memory destination take one cycle less (table note).
 * Format II: RRA/RRC/SWPB/SXT 1,3,3,4; PUSH 3,3,3,4; CALL 4,4,4,5 with CALL &EDE 6. RETI 5. Jumps 2.
 * Extension word (MSP430X instructions with a prefix): the cycles of the plain instruction + 1 for the
 * extension word, + 1 per extra memory word of a 20-bit (.A) memory operand, and n - 1 more for a repeated
 * register instruction (SLAU367: "the repeat count adds one cycle per repetition").
 * Address instructions (SLAU367 table "Address instructions, cycles"): MOVA/ADDA/SUBA/CMPA Rs,Rd 1;
 * #imm20,Rd 2; MOVA @Rs,Rd and @Rs+,Rd 3; &abs20,Rd and x(Rs),Rd 4; Rs,&abs20 and Rs,x(Rd) 4; with
 * Rd = PC two more (RETA = MOVA @SP+,PC: 4... listed as 5 with the refill). CALLA 5 (register,
 * indexed, indirect), 6 (&abs20, EDE), 5 (#imm20). PUSHM/POPM: 2 + n (.W) or 2 + 2n (.A). RRCM/RRAM/
 * RLAM/RRUM #n: n cycles.
 * FRAM: every word the CPU reads from FRAM (instruction fetch or data) goes through the FRAM controller's
 * read cache; a miss stalls MCLK by FRCTL0.NWAITS cycles (SLAU367 FRAM controller: "wait states are
 * only required when there is a cache miss"). ASSUMED organisation (the user's guide describes a small
 * 2-way set-associative cache of 64-bit lines but not every detail): 2 sets x 2 ways of 8-byte lines,
 * LRU; a miss fills the whole line. FRAM writes: ASSUMED one wait state each at NWAITS >= 1 (writes pass
 * the cache; the guide gives no write-stall figure) and they update a cached line. NWAITS comes from the
 * firmware's own FRCTL0 write (0 after reset: before the clock set-up the CPU runs at 1 MHz-capable DCO
 * reset frequency, so no stall). SRAM and peripherals: no wait states.
 * MPY32: results are read back without extra delay (the compiler helpers read RES* right after writing
 * OP2; the guide says a 16x16 result is ready for the next instruction).
 * -------------------------------------------------------------------------------------------------- */
static const uint8_t FMT1_CYCLES[4][3] = {{1, 2, 4}, {2, 3, 5}, {2, 3, 5}, {3, 4, 6}};
static const uint8_t SHIFT_CYCLES[4] = {1, 3, 3, 4};
static const uint8_t PUSH_CYCLES[4] = {3, 3, 3, 4};
static const uint8_t CALL_CYCLES[4] = {4, 4, 4, 5};
/* The original MSP430 CPU's tables (SLAU144 §3.4.4, e.g. MSP430x2xx), selectable with bl_sim_set_timing
 * so that cycle counts can be compared with simulators that model that CPU (mspdebug 0.22's "sim"). */
static const uint8_t FMT1_CYCLES_430[4][3] = {{1, 2, 4}, {2, 2, 5}, {2, 3, 5}, {3, 3, 6}};
static const uint8_t SHIFT_CYCLES_430[4] = {1, 3, 3, 4};
static const uint8_t PUSH_CYCLES_430[4] = {3, 4, 4, 5};
static const uint8_t CALL_CYCLES_430[4] = {4, 4, 5, 5};

#define LEA_NCMD 80
#define CACHE_SETS 2
#define CACHE_WAYS 2

typedef struct {
  uint16_t op1_lo, op1_hi; /* operand 1 */
  uint16_t op2_lo;         /* OP2L (32-bit operand 2, low word) */
  uint16_t res[4];         /* RES0..RES3 */
  uint16_t sumext;
  uint16_t ctl0;      /* MPY32CTL0 */
  uint8_t mode;       /* 0 MPY, 1 MPYS, 2 MAC, 3 MACS */
  uint8_t op1_32;     /* operand 1 was written as 32 bits */
} mpy32_t;

typedef struct {
  uint32_t r[16];
  uint64_t cycles, insns;
  uint64_t fram_reads, fram_misses, fram_writes, sram_accesses;
  uint64_t cg_src[4];        /* constant-generator source operands executed, by As (diagnostics) */
  uint32_t stop_pc;
  int32_t stop_reason;
  uint32_t mark_addr;
  uint32_t nmarks, cap_marks;
  uint16_t *mark_val;
  uint64_t *mark_cycle;
  uint64_t *mark_insn;
  uint32_t resets;
  uint32_t nwaits;           /* from FRCTL0 */
  int32_t fram_timing;       /* 0: model no FRAM wait states (compare with simulators that have none) */
  int32_t classic;           /* 1: the original MSP430 CPU's cycle tables instead of the MSP430X's */
  uint32_t lea_scale_q8;     /* LEA command durations x this / 256 (256: the ASSUMED timings as they are) */
  uint32_t cache_tag[CACHE_SETS][CACHE_WAYS];
  uint8_t cache_valid[CACHE_SETS][CACHE_WAYS];
  uint8_t cache_lru[CACHE_SETS]; /* way to evict next */
  mpy32_t mpy;
  /* LEA (see the LEA section below) */
  uint16_t lea[64];          /* register file 0x0A80-0x0AFF as 16-bit words (32-bit registers, low first) */
  int32_t lea_busy;
  uint64_t lea_done_at;      /* MCLK cycle at which the running command completes */
  uint64_t lea_started_at;
  uint32_t lea_cmd, lea_s0, lea_s1;
  uint64_t lea_busy_cycles;  /* MCLK cycles with a command running (diagnostics, energy) */
  uint64_t lea_count[LEA_NCMD];   /* commands completed, by command number */
  uint64_t lea_elems[LEA_NCMD];   /* their summed vector lengths (FFT: points), for per-element energy */
  uint64_t *lea_log;         /* instruction count at each command start (for cuts while LEA is busy) */
  uint32_t nlea_log, cap_lea_log;
  uint64_t dma_transfers;    /* DMA byte/word transfers done (diagnostics, docs/msp430sim.md "DMA") */
  uint64_t dma_cycles;       /* MCLK cycles the DMA held the CPU */
  uint32_t dma_sa[6], dma_da[6], dma_left[6], dma_sz0[6]; /* a channel's internal address/size copies (single mode) */
  /* the running transfer: the CPU is halted while units remain; one unit per simulator step (a cycle limit
   * or power cut can fall between units, as on the chip) */
  uint32_t dma_run_ch, dma_run_left, dma_run_sa, dma_run_da, dma_run_ctl;
  int32_t dma_running;
  uint64_t *profile;         /* optional: MCLK cycles per instruction address (word index, lower 64 KB) */
  uint32_t sram_seed;
  uint32_t last_illegal;     /* opcode and PC of the last illegal instruction (diagnostics) */
  uint32_t last_pc;
  uint32_t supply_mv;         /* AVCC the ADC12_B model converts (host-set, bl_sim_set_supply_mv) */
  uint8_t mem[MEM_SIZE];
} sim_t;

/* ---- memory map -------------------------------------------------------------------------------------- */

static inline int is_fram(uint32_t a)
{
  return (a >= 0x4000u && a < 0x44000u) || (a >= 0x1800u && a < 0x1A00u);
}

static inline int is_sram(uint32_t a) { return a >= 0x1C00u && a < 0x3C00u; }

#define MPY_BASE 0x04C0u
#define MPY_END 0x04F0u
#define FRCTL0_ADDR 0x0140u
#define LEA_BASE 0x0A80u
#define DMA_BASE 0x0500u /* SLASE54D peripheral file map: DMA general control 0x0500, channel n 0x0510 + 0x10 n */
#define DMA_CHANNELS 6u

/* FRAM controller read cache: returns the stall cycles of one read of the word at a. */
static inline uint32_t fram_read_stall(sim_t *s, uint32_t a)
{
  uint32_t line = a >> 3, set = line % CACHE_SETS, w;
  s->fram_reads++;
  for (w = 0; w < CACHE_WAYS; w++) {
    if (s->cache_valid[set][w] && s->cache_tag[set][w] == line) {
      s->cache_lru[set] = (uint8_t)(w ^ 1u);
      return 0;
    }
  }
  w = s->cache_lru[set];
  s->cache_tag[set][w] = line;
  s->cache_valid[set][w] = 1;
  s->cache_lru[set] = (uint8_t)(w ^ 1u);
  s->fram_misses++;
  return s->fram_timing ? s->nwaits : 0u;
}

static uint16_t periph_read(sim_t *s, uint32_t a);
static void periph_write(sim_t *s, uint32_t a, uint16_t v, int byte);

static inline uint16_t rd16(sim_t *s, uint32_t a)
{
  a &= ADDR_MASK & ~1u;
  if (a < 0x1000u) {
    return periph_read(s, a);
  }
  if (is_fram(a)) {
    s->cycles += fram_read_stall(s, a);
  }
  return (uint16_t)(s->mem[a] | (s->mem[a + 1] << 8));
}

static inline uint8_t rd8(sim_t *s, uint32_t a)
{
  a &= ADDR_MASK;
  if (a < 0x1000u) {
    uint16_t w = periph_read(s, a & ~1u);
    return (uint8_t)((a & 1u) ? w >> 8 : w);
  }
  if (is_fram(a)) {
    s->cycles += fram_read_stall(s, a);
  }
  return s->mem[a];
}

static inline void fram_write_note(sim_t *s, uint32_t a)
{
  s->fram_writes++;
  if (s->fram_timing && s->nwaits) {
    s->cycles += 1;
  }
  (void)a; /* the cache holds data by address, and mem[] is the data: a cached line stays coherent */
}

static inline void wr16(sim_t *s, uint32_t a, uint16_t v)
{
  a &= ADDR_MASK & ~1u;
  if (a < 0x1000u) {
    periph_write(s, a, v, 0);
    return;
  }
  if (is_fram(a)) {
    fram_write_note(s, a);
  }
  s->mem[a] = (uint8_t)v;
  s->mem[a + 1] = (uint8_t)(v >> 8);
}

static inline void wr8(sim_t *s, uint32_t a, uint8_t v)
{
  a &= ADDR_MASK;
  if (a < 0x1000u) {
    periph_write(s, a, v, 1);
    return;
  }
  if (is_fram(a)) {
    fram_write_note(s, a);
  }
  s->mem[a] = v;
}

static inline uint32_t rd20(sim_t *s, uint32_t a)
{
  return ((uint32_t)rd16(s, a) | ((uint32_t)rd16(s, a + 2) << 16)) & ADDR_MASK;
}

static inline void wr20(sim_t *s, uint32_t a, uint32_t v)
{
  wr16(s, a, (uint16_t)v);
  wr16(s, a + 2, (uint16_t)((v >> 16) & 0xFu));
}

/* ---- MPY32 (SLAU367 chapter "32-Bit Hardware Multiplier") --------------------------------------------
 * Word offsets from 0x04C0: 00 MPY, 02 MPYS, 04 MAC, 06 MACS, 08 OP2, 0A RESLO, 0C RESHI, 0E SUMEXT,
 * 10 MPY32L, 12 MPY32H, 14 MPYS32L, 16 MPYS32H, 18 MAC32L, 1A MAC32H, 1C MACS32L, 1E MACS32H, 20 OP2L,
 * 22 OP2H, 24 RES0, 26 RES1, 28 RES2, 2A RES3, 2C MPY32CTL0. Writing an operand-1 register selects the
 * operation; writing OP2 (16-bit) or OP2H (after OP2L, 32-bit) starts it. MPY/MPYS 16x16 write RES0/RES1
 * (RESLO/RESHI); 32-bit operations write RES0..RES3. MAC/MACS accumulate into the result registers.
 * SUMEXT: MPY 0; MPYS sign of the result (0000/FFFF); MAC carry (0/1); MACS sign extension of the result.
 * Byte writes to an operand register are sign-extended for the signed operations (MPYS_B, MACS_B) and
 * zero-extended otherwise. Not modelled: fractional (MPYFRAC) and saturation (MPYSAT) modes, the
 * delayed-write option (MPYDLYWRTEN); nothing in this project sets them. */

static void mpy_compute(sim_t *s, uint32_t op2, int op2_32)
{
  mpy32_t *m = &s->mpy;
  int sign = (m->mode & 1u) != 0;
  int acc = (m->mode & 2u) != 0;
  uint32_t op1 = (uint32_t)m->op1_lo | (m->op1_32 ? (uint32_t)m->op1_hi << 16 : 0u);
  int wide = m->op1_32 || op2_32;
  int64_t a, b;
  uint64_t prod, old, sum;
  if (sign) {
    a = m->op1_32 ? (int64_t)(int32_t)op1 : (int64_t)(int16_t)op1;
    b = op2_32 ? (int64_t)(int32_t)op2 : (int64_t)(int16_t)op2;
  } else {
    a = (int64_t)op1;
    b = (int64_t)op2;
  }
  prod = (uint64_t)(a * b);
  if (!wide) {
    /* 16x16: the 32-bit result lives in RES0/RES1 (RESLO/RESHI). */
    uint32_t p32 = (uint32_t)prod;
    if (acc) {
      uint32_t o = (uint32_t)m->res[0] | ((uint32_t)m->res[1] << 16);
      uint64_t sum32 = (uint64_t)o + p32;
      uint32_t r = (uint32_t)sum32;
      m->res[0] = (uint16_t)r;
      m->res[1] = (uint16_t)(r >> 16);
      if (sign) {
        m->sumext = (r & 0x80000000u) ? 0xFFFFu : 0u;
      } else {
        m->sumext = (uint16_t)((sum32 >> 32) & 1u);
      }
      m->ctl0 = (uint16_t)((m->ctl0 & ~1u) | (uint16_t)((sum32 >> 32) & 1u)); /* MPYC */
    } else {
      m->res[0] = (uint16_t)p32;
      m->res[1] = (uint16_t)(p32 >> 16);
      m->sumext = (sign && (p32 & 0x80000000u)) ? 0xFFFFu : 0u;
      m->ctl0 = (uint16_t)(m->ctl0 & ~1u);
    }
    return;
  }
  if (acc) {
    old = (uint64_t)m->res[0] | ((uint64_t)m->res[1] << 16) | ((uint64_t)m->res[2] << 32) |
          ((uint64_t)m->res[3] << 48);
    sum = old + prod;
    if (sign) {
      m->sumext = (sum >> 63) ? 0xFFFFu : 0u;
    } else {
      m->sumext = sum < old ? 1u : 0u;
    }
    m->ctl0 = (uint16_t)((m->ctl0 & ~1u) | (sum < old ? 1u : 0u));
  } else {
    sum = prod;
    m->sumext = (sign && (sum >> 63)) ? 0xFFFFu : 0u;
    m->ctl0 = (uint16_t)(m->ctl0 & ~1u);
  }
  m->res[0] = (uint16_t)sum;
  m->res[1] = (uint16_t)(sum >> 16);
  m->res[2] = (uint16_t)(sum >> 32);
  m->res[3] = (uint16_t)(sum >> 48);
}

static void mpy_write(sim_t *s, uint32_t off, uint16_t v, int byte)
{
  mpy32_t *m = &s->mpy;
  if (off < 0x08u || (off >= 0x10u && off < 0x20u)) {
    /* operand 1: 00-06 16-bit (MPY, MPYS, MAC, MACS); 10-1E 32-bit low/high pairs */
    uint8_t mode = (uint8_t)(off < 0x08u ? off >> 1 : (off - 0x10u) >> 2);
    if (byte) {
      v = (mode & 1u) ? (uint16_t)(int16_t)(int8_t)v : (uint16_t)(v & 0xFFu);
    }
    m->mode = mode;
    if (off < 0x08u) {
      m->op1_lo = v;
      m->op1_32 = 0;
    } else if (((off - 0x10u) & 2u) == 0u) {
      m->op1_lo = v;
      m->op1_32 = 0; /* until the high word arrives */
    } else {
      m->op1_hi = v;
      m->op1_32 = 1;
    }
    return;
  }
  switch (off) {
  case 0x08: /* OP2: start a 16-bit operand-2 multiply */
    if (byte) {
      v = (m->mode & 1u) ? (uint16_t)(int16_t)(int8_t)v : (uint16_t)(v & 0xFFu);
    }
    mpy_compute(s, v, 0);
    break;
  case 0x20:
    m->op2_lo = v;
    break;
  case 0x22:
    mpy_compute(s, (uint32_t)m->op2_lo | ((uint32_t)v << 16), 1);
    break;
  case 0x0A: m->res[0] = v; break;
  case 0x0C: m->res[1] = v; break;
  case 0x24: m->res[0] = v; break;
  case 0x26: m->res[1] = v; break;
  case 0x28: m->res[2] = v; break;
  case 0x2A: m->res[3] = v; break;
  case 0x2C: m->ctl0 = v; break;
  default: break; /* SUMEXT is read-only */
  }
}

static uint16_t mpy_read(sim_t *s, uint32_t off)
{
  mpy32_t *m = &s->mpy;
  switch (off) {
  case 0x00: case 0x02: case 0x04: case 0x06: return m->op1_lo;
  case 0x0A: case 0x24: return m->res[0];
  case 0x0C: case 0x26: return m->res[1];
  case 0x0E: return m->sumext;
  case 0x10: case 0x14: case 0x18: case 0x1C: return m->op1_lo;
  case 0x12: case 0x16: case 0x1A: case 0x1E: return m->op1_hi;
  case 0x20: return m->op2_lo;
  case 0x28: return m->res[2];
  case 0x2A: return m->res[3];
  case 0x2C: return m->ctl0;
  default: return 0;
  }
}

static void mark_log(sim_t *s, uint16_t v)
{
  if (s->nmarks == s->cap_marks) {
    uint32_t cap = s->cap_marks ? s->cap_marks * 2u : 256u;
    uint16_t *nv = realloc(s->mark_val, cap * sizeof *nv);
    uint64_t *nc = realloc(s->mark_cycle, cap * sizeof *nc);
    uint64_t *ni = realloc(s->mark_insn, cap * sizeof *ni);
    if (nv) s->mark_val = nv;
    if (nc) s->mark_cycle = nc;
    if (ni) s->mark_insn = ni;
    if (!nv || !nc || !ni) {
      return; /* out of memory: the mark is dropped, the run goes on */
    }
    s->cap_marks = cap;
  }
  s->mark_val[s->nmarks] = v;
  s->mark_cycle[s->nmarks] = s->cycles;
  s->mark_insn[s->nmarks] = s->insns;
  s->nmarks++;
}

static uint16_t lea_read(sim_t *s, uint32_t off);
static void lea_write(sim_t *s, uint32_t off, uint16_t v);
static void dma_control_written(sim_t *s, uint32_t ch);

/* ---- ADC ---------------------------------------------------------------------------------------------
 * The subset of ADC12_B and REF_A that firmware/platform/msp430/eve_supply_adc.c uses to read the supply
 * (SLAU367P chapters ADC12_B and REF_A; addresses as board.toml [supply_adc], which cites its sources):
 * a single-channel conversion starts when ADC12CTL0 is written with ADC12ON, ADC12ENC and ADC12SC set; the
 * memory x = ADC12CTL3.ADC12CSTARTADD gets the result, ADC12IFGR0 bit x is set, ADC12SC reads back 0; reading
 * ADC12MEMx clears its flag. Input: AVCC/2 on channel 31 with ADC12CTL3.ADC12BATMAP (exactly half:
 * the datasheet's divider tolerance is +-2.5 %), every other channel 0 V. Reference (ADC12MCTLx.ADC12VRSEL):
 * 0 = AVCC, 1 = REF_A's level (REFCTL0.REFVSEL 1.2 / 2.0 / 2.5 V) if REFON, else 0. code = floor(Vin *
 * 4096 / Vref), at most 4095, 12-bit only. ASSUMED: the conversion takes no MCLK cycles (sampling and
 * conversion run on MODOSC in parallel with the CPU's polling loop, which is what the firmware pays) and
 * REFCTL0 reports REFGENRDY/REFBGRDY as soon as REFON is set (no settling time). AVCC is host-set. */
#define ADC12_BASE 0x0800u
#define REFCTL0_ADDR 0x01B0u

static void adc_convert(sim_t *s)
{
  uint16_t ctl3 = (uint16_t)(s->mem[ADC12_BASE + 6u] | (s->mem[ADC12_BASE + 7u] << 8));
  uint32_t x = ctl3 & 0x1Fu, mctl = ADC12_BASE + 0x20u + 2u * x, mem = ADC12_BASE + 0x60u + 2u * x;
  uint16_t mc = (uint16_t)(s->mem[mctl] | (s->mem[mctl + 1u] << 8));
  uint16_t ref = (uint16_t)(s->mem[REFCTL0_ADDR] | (s->mem[REFCTL0_ADDR + 1u] << 8));
  static const uint32_t ref_mv[4] = {1200u, 2000u, 2500u, 2500u};
  uint32_t vin = ((mc & 0x1Fu) == 31u && (ctl3 & 0x0040u)) ? s->supply_mv / 2u : 0u;
  uint32_t vsel = (mc >> 8) & 0xFu, vref = 0u, code = 0u, ifg;
  if (vsel == 0u) {
    vref = s->supply_mv;
  } else if (vsel == 1u && (ref & 1u)) {
    vref = ref_mv[(ref >> 4) & 3u];
  }
  if (vref) {
    code = (uint32_t)(((uint64_t)vin * 4096u) / vref);
    code = code > 4095u ? 4095u : code;
  }
  s->mem[mem] = (uint8_t)code;
  s->mem[mem + 1u] = (uint8_t)(code >> 8);
  ifg = (uint32_t)(s->mem[ADC12_BASE + 0x0Cu] | (s->mem[ADC12_BASE + 0x0Du] << 8)) | (1u << (x & 15u));
  if (x < 16u) {
    s->mem[ADC12_BASE + 0x0Cu] = (uint8_t)ifg;
    s->mem[ADC12_BASE + 0x0Du] = (uint8_t)(ifg >> 8);
  }
  s->mem[ADC12_BASE] &= (uint8_t)~1u; /* ADC12SC resets when the conversion is done */
}

#include "crc32.c" /* the CRC32 module (CRC-32 part), its own file */

static uint16_t periph_read(sim_t *s, uint32_t a)
{
  if (a >= ADC12_BASE + 0x60u && a < ADC12_BASE + 0x80u) { /* ADC12MEM0..15: a read clears the flag */
    uint32_t bit = (a - ADC12_BASE - 0x60u) / 2u;
    uint16_t ifg = (uint16_t)(s->mem[ADC12_BASE + 0x0Cu] | (s->mem[ADC12_BASE + 0x0Du] << 8));
    ifg = (uint16_t)(ifg & ~(1u << bit));
    s->mem[ADC12_BASE + 0x0Cu] = (uint8_t)ifg;
    s->mem[ADC12_BASE + 0x0Du] = (uint8_t)(ifg >> 8);
  }
  if (a == REFCTL0_ADDR) { /* REFGENRDY (bit 12) and REFBGRDY (bit 13) follow REFON at once */
    uint16_t r = (uint16_t)((s->mem[a] | (s->mem[a + 1] << 8)) & ~0x3000u);
    return (uint16_t)(r | ((r & 1u) ? 0x3000u : 0u));
  }
  if (a >= MPY_BASE && a < MPY_END) {
    return mpy_read(s, a - MPY_BASE);
  }
  if (a >= LEA_BASE && a < LEA_BASE + 0x80u) {
    return lea_read(s, a - LEA_BASE);
  }
  return (uint16_t)(s->mem[a] | (s->mem[a + 1] << 8));
}

static void periph_write(sim_t *s, uint32_t a, uint16_t v, int byte)
{
  uint32_t w = a & ~1u;
  if (w >= MPY_BASE && w < MPY_END) {
    mpy_write(s, w - MPY_BASE, v, byte);
    return;
  }
  if (w >= LEA_BASE && w < LEA_BASE + 0x80u) {
    uint16_t old = lea_read(s, w - LEA_BASE);
    lea_write(s, w - LEA_BASE, byte ? (uint16_t)((a & 1u) ? (old & 0x00FFu) | (uint16_t)(v << 8)
                                                         : (old & 0xFF00u) | (v & 0xFFu))
                                     : v);
    return;
  }
  if (byte) {
    s->mem[a] = (uint8_t)v;
  } else {
    s->mem[a] = (uint8_t)v;
    s->mem[a + 1] = (uint8_t)(v >> 8);
  }
  if (w == FRCTL0_ADDR && !byte && (v & 0xFF00u) == 0xA500u) {
    s->nwaits = (v >> 4) & 7u; /* FRCTL0.NWAITS, bits 6:4, written with the FRCTLPW password */
    s->mem[w + 1] = 0x96;      /* the password reads back as 0x96 */
  }
  if (s->mark_addr && w == s->mark_addr) {
    mark_log(s, (uint16_t)(s->mem[w] | (s->mem[w + 1] << 8)));
  }
  if (w >= CRC32_BASE && w < CRC32_END) {
    crc32_written(s, a, v, byte);
  }
  if (w == ADC12_BASE && (s->mem[w] & 0x13u) == 0x13u) { /* ADC12ON | ADC12ENC | ADC12SC */
    adc_convert(s);
  }
  if (w >= DMA_BASE + 0x10u && w < DMA_BASE + 0x10u * (DMA_CHANNELS + 1u) && (w & 0xFu) == 0u) {
    dma_control_written(s, (w - DMA_BASE) / 0x10u - 1u);
  }
}

/* ---- DMA controller (SLAU367 chapter 11 "DMA Controller"; register map SLAU367 §11.3, base address from
 * SLASE54D) -------------------------------------------------------------------------------------------------
 * Registers: DMACTL0..4 at 0x0500 (DMACTL0 bits 4:0 DMA0TSEL, 12:8 DMA1TSEL; DMACTL1 channels 2/3, DMACTL2
 * channels 4/5), channel n at 0x0510 + 0x10 n: DMAxCTL +0, DMAxSA +2 (20-bit, two words), DMAxDA +6,
 * DMAxSZ +0xA. DMAxCTL: bit 0 DMAREQ, 1 DMAABORT, 2 DMAIE, 3 DMAIFG, 4 DMAEN, 5 DMALEVEL, 6 DMASRCBYTE,
 * 7 DMADSTBYTE, 9:8 DMASRCINCR, 11:10 DMADSTINCR (00/01 unchanged, 10 decrement, 11 increment), 14:12 DMADT.
 * Modelled: what the lea driver uses and nothing else — trigger 0 (DMAREQ, software), transfer modes
 * single (DMADT 0) and block / burst-block (DMADT 1, 2, 3; burst-block interleaves CPU cycles on the chip, here
 * it runs like a block), word/byte on either side (byte -> word clears the high byte, word -> byte moves
 * the low byte: SLAU367 §11.2.2), all four address modes. A block transfer halts the CPU until it is done
 * (§11.2.2.2): it starts when DMAREQ is set with DMAEN and then moves one unit per simulator step instead of
 * an instruction (dma_step), so cycle limits and power cuts fall between units; at the end DMAEN is cleared,
 * DMAIFG set and DMAxSZ reloaded; DMAxSA/DMAxDA are not changed (the controller steps internal copies).
 * Other triggers (peripherals) never fire; no DMA interrupt (our images run with GIE off).
 * TIMING (§11.2.7 "DMA Transfer Cycle Time"): one or two MCLK cycles to synchronise before a single transfer
 * or a whole block (we charge 2), two MCLK cycles per byte/word transfer, one cycle of wait after the
 * transfer (charged once per trigger). ASSUMED: a DMA read of FRAM goes through the FRAM controller's
 * cache like a CPU read (a miss stalls NWAITS cycles) and a DMA write to FRAM costs the CPU write stall; the
 * guide gives no figure for DMA accesses to FRAM. A power cut mid-block leaves a partial copy, as on the
 * chip. */
static void dma_control_written(sim_t *s, uint32_t ch)
{
  uint32_t base = DMA_BASE + 0x10u + 0x10u * ch;
  uint16_t ctl = (uint16_t)(s->mem[base] | (s->mem[base + 1] << 8));
  uint32_t tsel_reg = DMA_BASE + 2u * (ch / 2u), tsel;
  uint32_t sa, da, sz, mode;
  if (!(ctl & 0x0010u) || !(ctl & 0x0001u) || s->dma_running) {
    return;
  }
  tsel = (ch & 1u) ? s->mem[tsel_reg + 1] : s->mem[tsel_reg];
  ctl = (uint16_t)(ctl & ~0x0001u); /* DMAREQ resets itself */
  s->mem[base] = (uint8_t)ctl;
  if ((tsel & 0x1Fu) != 0u) { /* another trigger: not modelled, the request is only cleared */
    return;
  }
  sa = ((uint32_t)(s->mem[base + 2] | (s->mem[base + 3] << 8)) | ((uint32_t)(s->mem[base + 4] & 0xFu) << 16));
  da = ((uint32_t)(s->mem[base + 6] | (s->mem[base + 7] << 8)) | ((uint32_t)(s->mem[base + 8] & 0xFu) << 16));
  sz = (uint32_t)(s->mem[base + 10] | (s->mem[base + 11] << 8));
  mode = (ctl >> 12) & 7u;
  if (mode > 3u) { /* repeated modes: not modelled */
    return;
  }
  if (mode == 0u) { /* single transfer: the internal copies step from trigger to trigger */
    if (s->dma_left[ch] == 0u) {
      s->dma_left[ch] = s->dma_sz0[ch] = sz;
    } else {
      sa = s->dma_sa[ch];
      da = s->dma_da[ch];
    }
  }
  s->cycles += 2u; /* synchronisation */
  s->dma_cycles += 2u;
  s->dma_running = 1;
  s->dma_run_ch = ch;
  s->dma_run_left = sz == 0u ? 0u : (mode == 0u ? 1u : sz); /* single transfer: one unit per trigger */
  s->dma_run_sa = sa;
  s->dma_run_da = da;
  s->dma_run_ctl = ctl;
}

/* One step of the running transfer: the next unit (2 MCLK cycles + FRAM stalls), or, after the last, the
 * wait cycle and the channel's end state. */
static void dma_step(sim_t *s)
{
  uint32_t ch = s->dma_run_ch, base = DMA_BASE + 0x10u + 0x10u * ch, ctl = s->dma_run_ctl;
  uint32_t mode = (ctl >> 12) & 7u, sb = (ctl >> 6) & 1u, db = (ctl >> 7) & 1u, si = (ctl >> 8) & 3u;
  uint32_t di = (ctl >> 10) & 3u;
  uint64_t c0 = s->cycles;
  if (s->dma_run_left != 0u) {
    uint32_t sa = s->dma_run_sa, da = s->dma_run_da;
    uint16_t v = sb ? rd8(s, sa) : rd16(s, sa);
    if (db) {
      wr8(s, da, (uint8_t)v); /* word -> byte: the low byte */
    } else {
      wr16(s, da, sb ? (uint16_t)(v & 0xFFu) : v); /* byte -> word: high byte cleared */
    }
    s->cycles += 2u;
    if (si >= 2u) sa = (sa + (si == 3u ? 1u : (uint32_t)-1) * (sb ? 1u : 2u)) & ADDR_MASK;
    if (di >= 2u) da = (da + (di == 3u ? 1u : (uint32_t)-1) * (db ? 1u : 2u)) & ADDR_MASK;
    s->dma_run_sa = sa;
    s->dma_run_da = da;
    s->dma_run_left -= 1u;
    s->dma_transfers += 1u;
    s->dma_cycles += s->cycles - c0;
    return;
  }
  if (mode == 0u && s->dma_left[ch] > 1u) { /* single transfer: DMAxSZ counts down, stays enabled */
    s->dma_left[ch] -= 1u;
    s->dma_sa[ch] = s->dma_run_sa;
    s->dma_da[ch] = s->dma_run_da;
    s->mem[base + 10] = (uint8_t)s->dma_left[ch];
    s->mem[base + 11] = (uint8_t)(s->dma_left[ch] >> 8);
  } else { /* done: DMAEN cleared, DMAIFG set, DMAxSZ reloaded (a single-mode channel from its first size) */
    if (mode == 0u) {
      s->mem[base + 10] = (uint8_t)s->dma_sz0[ch];
      s->mem[base + 11] = (uint8_t)(s->dma_sz0[ch] >> 8);
      s->dma_left[ch] = 0u;
    }
    ctl = (uint16_t)((s->mem[base] | (s->mem[base + 1] << 8)) & ~0x0011u) | 0x0008u;
    s->mem[base] = (uint8_t)ctl;
    s->mem[base + 1] = (uint8_t)(ctl >> 8);
  }
  s->cycles += 1u; /* wait after the transfer */
  s->dma_cycles += 1u;
  s->dma_running = 0;
}

/* ---- reset ------------------------------------------------------------------------------------------- */

static uint32_t xorshift(uint32_t *st)
{
  uint32_t x = *st;
  x ^= x << 13;
  x ^= x >> 17;
  x ^= x << 5;
  *st = x;
  return x;
}

/* Power-on reset: registers, peripherals, SRAM and the FRAM cache are lost; FRAM keeps its contents. */
static void power_on(sim_t *s)
{
  uint32_t a, st = 0x9E3779B9u ^ (s->sram_seed + s->resets * 0x85EBCA6Bu);
  memset(s->r, 0, sizeof s->r);
  memset(s->mem, 0, 0x1000u); /* peripheral registers to their (modelled) reset value 0 */
  for (a = 0x1C00u; a < 0x3C00u; a += 4u) {
    uint32_t v = xorshift(&st);
    memcpy(&s->mem[a], &v, 4);
  }
  memset(&s->mpy, 0, sizeof s->mpy);
  memset(s->lea, 0, sizeof s->lea);
  memset(s->dma_left, 0, sizeof s->dma_left);
  s->dma_running = 0; /* a transfer running at the cut stops where it is */
  s->lea_busy = 0; /* a command running at the cut is lost with LEA RAM */
  memset(s->cache_valid, 0, sizeof s->cache_valid);
  memset(s->cache_lru, 0, sizeof s->cache_lru);
  s->nwaits = 0;
  s->r[PC] = (uint32_t)(s->mem[0xFFFE] | (s->mem[0xFFFF] << 8));
  s->stop_reason = STOP_LIMIT;
}

/* ---- CPU --------------------------------------------------------------------------------------------- */

static inline uint16_t fetch(sim_t *s)
{
  uint16_t w = rd16(s, s->r[PC]);
  s->r[PC] = (s->r[PC] + 2u) & ADDR_MASK;
  return w;
}

/* An operand: a register, a constant, or a memory address. */
typedef struct {
  int is_reg;
  int is_const;
  int reg;
  uint32_t addr;
  uint32_t cval;
} opnd_t;

/* width: 8, 16 or 20 bits */
static inline uint32_t wmask(int width) { return width == 8 ? 0xFFu : width == 16 ? 0xFFFFu : ADDR_MASK; }
static inline uint32_t wmsb(int width) { return width == 8 ? 0x80u : width == 16 ? 0x8000u : 0x80000u; }

static inline uint32_t opnd_read(sim_t *s, const opnd_t *o, int width)
{
  if (o->is_const) {
    return o->cval & wmask(width);
  }
  if (o->is_reg) {
    return s->r[o->reg] & wmask(width);
  }
  return width == 8 ? rd8(s, o->addr) : width == 16 ? rd16(s, o->addr) : rd20(s, o->addr);
}

static inline void reg_write(sim_t *s, int reg, uint32_t v, int width)
{
  if (reg == CG2) {
    return;
  }
  v &= wmask(width); /* .B and .W clear the upper register bits (SLAU367: register mode) */
  if (reg == PC || reg == SP) {
    v &= ~1u;
  }
  s->r[reg] = v;
}

static inline void opnd_write(sim_t *s, const opnd_t *o, uint32_t v, int width)
{
  if (o->is_const) {
    return;
  }
  if (o->is_reg) {
    reg_write(s, o->reg, v, width);
    return;
  }
  if (width == 8) {
    wr8(s, o->addr, (uint8_t)v);
  } else if (width == 16) {
    wr16(s, o->addr, (uint16_t)v);
  } else {
    wr20(s, o->addr, v);
  }
}

/* Indexed address: in the lower 64 KB a plain instruction wraps to 16 bits (SLAU367 "Indexed mode in
 * lower 64 KB"); a base above 64 KB, or an extended instruction, gives a 20-bit sum. */
static inline uint32_t index_addr(uint32_t base, uint32_t x, int ext)
{
  if (ext) {
    return (base + x) & ADDR_MASK;
  }
  if (base < 0x10000u) {
    return (base + (uint32_t)(int32_t)(int16_t)x) & 0xFFFFu;
  }
  return (base + (uint32_t)(int32_t)(int16_t)x) & ADDR_MASK;
}

/* Decode a source operand (as, reg). ext_hi: bits 19:16 of an index/immediate/absolute word from the
 * extension word (-1 without one). Returns the timing class (see TIMING). */
static int decode_src(sim_t *s, int as, int reg, int width, int ext_hi, opnd_t *o)
{
  int ext = ext_hi >= 0;
  uint32_t hi = ext ? (uint32_t)ext_hi << 16 : 0u;
  memset(o, 0, sizeof *o);
  if (reg == CG2) {
    static const uint32_t k[4] = {0u, 1u, 2u, 0xFFFFFFFFu};
    s->cg_src[as]++;
    o->is_const = 1;
    o->cval = k[as];
    return 0;
  }
  if (reg == SR && as >= 2) {
    s->cg_src[as]++;
    o->is_const = 1;
    o->cval = as == 2 ? 4u : 8u;
    return 0;
  }
  switch (as) {
  case 0:
    o->is_reg = 1;
    o->reg = reg;
    return 0;
  case 1: {
    uint32_t xa = s->r[PC];
    uint32_t x = fetch(s);
    if (ext) {
      x = (x | hi) & ADDR_MASK;
      if (x & 0x80000u) {
        x |= 0xFFF00000u; /* sign-extend the 20-bit index */
      }
    }
    if (reg == SR) {
      o->addr = ext ? (x & ADDR_MASK) : x & 0xFFFFu; /* absolute &EDE */
    } else if (reg == PC) {
      o->addr = index_addr(xa, x, ext); /* symbolic: relative to the index word */
    } else {
      o->addr = index_addr(s->r[reg], x, ext);
    }
    return 3;
  }
  case 2:
    o->addr = s->r[reg];
    return 1;
  default:
    if (reg == PC) {
      uint32_t v = fetch(s);
      o->is_const = 1;
      o->cval = ext ? (v | hi) : v;
      return 2;
    }
    o->addr = s->r[reg];
    {
      uint32_t inc = width == 8 ? 1u : width == 16 ? 2u : 4u;
      if (reg == SP && inc == 1u) {
        inc = 2u;
      }
      s->r[reg] = (s->r[reg] + inc) & ADDR_MASK;
    }
    return 2;
  }
}

static void set_flags(sim_t *s, uint32_t r, int c, int v, int width)
{
  uint32_t sr = s->r[SR] & ~(uint32_t)(F_N | F_Z | F_C | F_V);
  if ((r & wmask(width)) == 0u) sr |= F_Z;
  if (r & wmsb(width)) sr |= F_N;
  if (c) sr |= F_C;
  if (v) sr |= F_V;
  s->r[SR] = sr;
}

/* Add with carry in; sets flags; returns the masked result. */
static uint32_t alu_add(sim_t *s, uint32_t d, uint32_t src, uint32_t cin, int width)
{
  uint32_t m = wmask(width), msb = wmsb(width);
  uint64_t full = (uint64_t)(d & m) + (src & m) + cin;
  uint32_t r = (uint32_t)full & m;
  int c = (full >> (width)) & 1u;
  int v = ((~(d ^ src) & (d ^ r)) & msb) != 0u;
  set_flags(s, r, c, v, width);
  return r;
}

static uint32_t alu_dadd(sim_t *s, uint32_t d, uint32_t src, int width)
{
  uint32_t r = 0, c = s->r[SR] & F_C ? 1u : 0u;
  int nib = width / 4, i;
  for (i = 0; i < nib; i++) {
    uint32_t t = ((d >> (4 * i)) & 0xFu) + ((src >> (4 * i)) & 0xFu) + c;
    c = t > 9u;
    if (c) t -= 10u;
    r |= (t & 0xFu) << (4 * i);
  }
  {
    uint32_t sr = s->r[SR] & ~(uint32_t)(F_N | F_Z | F_C);
    if ((r & wmask(width)) == 0u) sr |= F_Z;
    if (r & wmsb(width)) sr |= F_N;
    if (c) sr |= F_C;
    s->r[SR] = sr; /* V undefined: left unchanged */
  }
  return r;
}

/* Execute one format-I operation; returns 1 if the destination is written. */
static int exec_fmt1(sim_t *s, int op, uint32_t src, uint32_t d, int width, int zc, uint32_t *out)
{
  uint32_t m = wmask(width), msb = wmsb(width);
  uint32_t cin = (s->r[SR] & F_C) && !zc ? 1u : 0u;
  uint32_t r;
  switch (op) {
  case 0x4: *out = src & m; return 1;
  case 0x5: *out = alu_add(s, d, src, 0u, width); return 1;
  case 0x6: *out = alu_add(s, d, src, cin, width); return 1;
  case 0x7: *out = alu_add(s, d, ~src & m, cin, width); return 1;
  case 0x8: *out = alu_add(s, d, ~src & m, 1u, width); return 1;
  case 0x9: (void)alu_add(s, d, ~src & m, 1u, width); return 0;
  case 0xA: *out = alu_dadd(s, d, src, width); return 1;
  case 0xB:
    r = src & d & m;
    set_flags(s, r, r != 0u, 0, width);
    return 0;
  case 0xC: *out = d & ~src & m; return 1;
  case 0xD: *out = (d | src) & m; return 1;
  case 0xE:
    r = (d ^ src) & m;
    set_flags(s, r, r != 0u, (src & msb) && (d & msb), width);
    *out = r;
    return 1;
  default:
    r = src & d & m;
    set_flags(s, r, r != 0u, 0, width);
    *out = r;
    return 1;
  }
}

/* ext: the extension word or 0. */
static int step_fmt1(sim_t *s, uint16_t w, uint16_t ext)
{
  int op = w >> 12, sreg = (w >> 8) & 15, ad = (w >> 7) & 1, bw = (w >> 6) & 1, as = (w >> 4) & 3;
  int dreg = w & 15, width = bw ? 8 : 16, rept = 1, zc = 0, i, cyc;
  int ext_src = -1, ext_dst = -1;
  opnd_t so, d;
  uint32_t sv, dv, out = 0;
  if (ext) {
    int al = (ext >> 6) & 1;
    width = al ? (bw ? 8 : 16) : (bw ? 20 : -1);
    if (width < 0) {
      return -1;
    }
    if (as == 0 && ad == 0) {
      rept = (ext & 0x80u) ? (int)(s->r[ext & 15] & 15u) + 1 : (ext & 15) + 1;
      zc = (ext >> 8) & 1;
    } else {
      ext_src = (ext >> 7) & 15;
      ext_dst = ext & 15;
    }
  }
  cyc = decode_src(s, as, sreg, width, ext_src, &so);
  /* destination */
  memset(&d, 0, sizeof d);
  if (ad == 0) {
    d.is_reg = 1;
    d.reg = dreg;
  } else {
    uint32_t xa = s->r[PC];
    uint32_t x = fetch(s);
    int e = ext_dst >= 0;
    if (e) {
      x = (x | ((uint32_t)ext_dst << 16)) & ADDR_MASK;
      if (x & 0x80000u) x |= 0xFFF00000u;
    }
    if (dreg == SR) {
      d.addr = e ? x & ADDR_MASK : x & 0xFFFFu;
    } else if (dreg == PC) {
      d.addr = index_addr(xa, x, e);
    } else {
      d.addr = index_addr(s->r[dreg], x, e);
    }
  }
  {
    int dcls = ad ? 2 : (dreg == PC ? 1 : 0);
    int c = s->classic ? FMT1_CYCLES_430[cyc][dcls] : FMT1_CYCLES[cyc][dcls];
    if (!s->classic && dcls == 2 && (op == 0x4 || op == 0x9 || op == 0xB)) {
      c -= 1;
    }
    if (ext) {
      c += 1;
      if (width == 20) {
        if (!so.is_reg && !so.is_const) c += 1;
        if (ad) c += (op == 0x4 || op == 0x9 || op == 0xB) ? 1 : 2;
      }
      c += rept - 1;
    }
    s->cycles += (uint64_t)c;
  }
  for (i = 0; i < rept; i++) {
    sv = opnd_read(s, &so, width);
    dv = op == 0x4 ? 0u : opnd_read(s, &d, width);
    if (exec_fmt1(s, op, sv, dv, width, zc, &out)) {
      opnd_write(s, &d, out, width);
    }
  }
  return 0;
}

static int step_fmt2(sim_t *s, uint16_t w, uint16_t ext)
{
  int op = (w >> 7) & 7, bw = (w >> 6) & 1, as = (w >> 4) & 3, reg = w & 15;
  int width = bw ? 8 : 16, rept = 1, zc = 0, i, cls, c;
  int ext_src = -1;
  opnd_t o;
  if (op == 6) {
    if (w != 0x1300u) {
      return -1;
    }
    /* RETI: SR from the stack (its bits 15:12 are PC 19:16 on the MSP430X), then PC */
    {
      uint16_t srw = rd16(s, s->r[SP]);
      s->r[SP] = (s->r[SP] + 2u) & ADDR_MASK;
      s->r[PC] = ((uint32_t)rd16(s, s->r[SP]) | ((uint32_t)(srw & 0xF000u) << 4)) & ADDR_MASK;
      s->r[SP] = (s->r[SP] + 2u) & ADDR_MASK;
      s->r[SR] = srw & 0x0FFFu;
      s->cycles += 5u;
      return 0;
    }
  }
  if (ext) {
    int al = (ext >> 6) & 1;
    width = al ? (bw ? 8 : 16) : (bw ? 20 : -1);
    if (width < 0 || op == 5) {
      return -1;
    }
    if (as == 0) {
      rept = (ext & 0x80u) ? (int)(s->r[ext & 15] & 15u) + 1 : (ext & 15) + 1;
      zc = (ext >> 8) & 1;
    } else {
      ext_src = ext & 15; /* format II: bits 3:0 carry the operand's address bits 19:16 */
    }
  }
  if ((op == 1 || op == 3) && width == 8) {
    return -1; /* SWPB.B and SXT.B do not exist */
  }
  cls = decode_src(s, as, reg, width, ext_src, &o);
  if (o.is_const && op < 4) {
    return -1; /* RRC #N etc.: not an instruction */
  }
  if (s->classic) {
    c = op == 4 ? PUSH_CYCLES_430[cls] : op == 5 ? CALL_CYCLES_430[cls] : SHIFT_CYCLES_430[cls];
    if (op == 4 && o.is_const && as == 3 && reg == PC) {
      c = 4; /* PUSH #N */
    }
  } else {
    c = op == 4 ? PUSH_CYCLES[cls] : op == 5 ? CALL_CYCLES[cls] : SHIFT_CYCLES[cls];
  }
  if (!s->classic && op == 5 && as == 1 && reg == SR) {
    c = 6; /* CALL &EDE */
  }
  if (ext) {
    c += 1 + (rept - 1);
    if (width == 20 && !o.is_reg && !o.is_const) c += op < 4 ? 2 : 1;
    if (width == 20 && op == 4) c += 1;
  }
  s->cycles += (uint64_t)c;
  for (i = 0; i < rept; i++) {
    uint32_t v = opnd_read(s, &o, width), r, m = wmask(width), msb = wmsb(width);
    (void)m;
    uint32_t cin = (s->r[SR] & F_C) && !zc ? 1u : 0u;
    switch (op) {
    case 0: /* RRC */
      r = (v >> 1) | (cin ? msb : 0u);
      set_flags(s, r, v & 1u, 0, width);
      opnd_write(s, &o, r, width);
      break;
    case 1: /* SWPB (.A: swaps the low word's bytes and keeps bits 19:16) */
      r = (v & ~0xFFFFu) | ((v >> 8) & 0xFFu) | ((v & 0xFFu) << 8);
      opnd_write(s, &o, r, width);
      break;
    case 2: /* RRA */
      r = (v >> 1) | (v & msb);
      set_flags(s, r, v & 1u, 0, width);
      opnd_write(s, &o, r, width);
      break;
    case 3: /* SXT: bit 7 into bits 15:8; in register mode into bits 19:8 (SLAU367 SXT) */
      r = (v & 0x80u) ? (v | 0xFFF00u) : (v & 0xFFu);
      set_flags(s, r, (r & m) != 0u, 0, width);
      if (o.is_reg) {
        if (o.reg != CG2) s->r[o.reg] = r & ADDR_MASK;
      } else {
        opnd_write(s, &o, r, width);
      }
      break;
    case 4: /* PUSH */
      if (width == 20) {
        s->r[SP] = (s->r[SP] - 4u) & ADDR_MASK;
        wr20(s, s->r[SP], v);
      } else {
        s->r[SP] = (s->r[SP] - 2u) & ADDR_MASK;
        if (width == 8) {
          wr8(s, s->r[SP], (uint8_t)v);
        } else {
          wr16(s, s->r[SP], (uint16_t)v);
        }
      }
      break;
    default: /* CALL: pushes the 16-bit return address, jumps within the lower 64 KB */
      s->r[SP] = (s->r[SP] - 2u) & ADDR_MASK;
      wr16(s, s->r[SP], (uint16_t)s->r[PC]);
      s->r[PC] = v & 0xFFFEu;
      break;
    }
  }
  return 0;
}

/* Address instructions 0x0000-0x0FFF: MOVA/CMPA/ADDA/SUBA and RRCM/RRAM/RLAM/RRUM (SLAU367 MSP430X
 * instruction encodings). */
static int step_addr(sim_t *s, uint16_t w)
{
  int src = (w >> 8) & 15, op = (w >> 4) & 15, dst = w & 15;
  uint32_t v, a, x;
  switch (op) {
  case 0x0: /* MOVA @Rsrc, Rdst */
    v = rd20(s, s->r[src]);
    s->cycles += dst == PC ? 5u : 3u;
    s->r[dst] = dst == PC ? v & ~1u : v;
    return 0;
  case 0x1: /* MOVA @Rsrc+, Rdst (RETA = MOVA @SP+, PC) */
    v = rd20(s, s->r[src]);
    s->r[src] = (s->r[src] + 4u) & ADDR_MASK;
    s->cycles += dst == PC ? 5u : 3u;
    s->r[dst] = dst == PC ? v & ~1u : v;
    return 0;
  case 0x2: /* MOVA &abs20, Rdst */
    a = ((uint32_t)src << 16) | fetch(s);
    v = rd20(s, a);
    s->cycles += dst == PC ? 6u : 4u;
    s->r[dst] = dst == PC ? v & ~1u : v;
    return 0;
  case 0x3: /* MOVA z16(Rsrc), Rdst */
    x = fetch(s);
    a = (s->r[src] + (uint32_t)(int32_t)(int16_t)x) & ADDR_MASK;
    v = rd20(s, a);
    s->cycles += dst == PC ? 6u : 4u;
    s->r[dst] = dst == PC ? v & ~1u : v;
    return 0;
  case 0x4:
  case 0x5: { /* RRCM/RRAM/RLAM/RRUM #n, Rdst; bit 4: 1 = .W, 0 = .A */
    int n = ((w >> 10) & 3) + 1, kind = (w >> 8) & 3, width = (w & 0x10u) ? 16 : 20, i;
    uint32_t m = wmask(width), msb = wmsb(width), r = s->r[dst] & m, c = (s->r[SR] & F_C) ? 1u : 0u;
    for (i = 0; i < n; i++) {
      uint32_t lsb = r & 1u, top = r & msb;
      switch (kind) {
      case 0: r = (r >> 1) | (c ? msb : 0u); c = lsb; break;   /* RRCM */
      case 1: r = (r >> 1) | top; c = lsb; break;              /* RRAM */
      case 2: c = top ? 1u : 0u; r = (r << 1) & m; break;      /* RLAM */
      default: r = r >> 1; c = lsb; break;                     /* RRUM */
      }
    }
    set_flags(s, r, (int)c, 0, width);
    reg_write(s, dst, r, width);
    s->cycles += (uint64_t)n;
    return 0;
  }
  case 0x6: /* MOVA Rsrc, &abs20 */
    a = ((uint32_t)dst << 16) | fetch(s);
    wr20(s, a, s->r[src]);
    s->cycles += 4u;
    return 0;
  case 0x7: /* MOVA Rsrc, z16(Rdst) */
    x = fetch(s);
    a = (s->r[dst] + (uint32_t)(int32_t)(int16_t)x) & ADDR_MASK;
    wr20(s, a, s->r[src]);
    s->cycles += 4u;
    return 0;
  case 0x8: case 0x9: case 0xA: case 0xB: /* MOVA/CMPA/ADDA/SUBA #imm20, Rdst */
  case 0xC: case 0xD: case 0xE: case 0xF: { /* ... Rsrc, Rdst */
    int imm = op < 0xC, kind = op & 3;
    uint32_t sv = imm ? ((((uint32_t)src << 16) | fetch(s)) & ADDR_MASK) : s->r[src] & ADDR_MASK;
    uint32_t dv = s->r[dst] & ADDR_MASK, r;
    s->cycles += (uint64_t)((imm ? 2 : 1) + (dst == PC ? 2 : 0));
    if (kind == 0) {
      r = sv;
    } else if (kind == 2) {
      r = alu_add(s, dv, sv, 0u, 20);
    } else {
      r = alu_add(s, dv, ~sv & ADDR_MASK, 1u, 20);
    }
    if (kind != 1) {
      s->r[dst] = dst == PC ? r & ~1u : (dst == CG2 ? 0u : r);
    }
    return 0;
  }
  default:
    return -1;
  }
}

/* 0x1340-0x13FF CALLA; 0x1400-0x17FF PUSHM/POPM. */
static int step_calla_pushm(sim_t *s, uint16_t w)
{
  if (w < 0x1400u) {
    int mode = (w >> 4) & 15, reg = w & 15;
    uint32_t target;
    int c = 5;
    switch (mode) {
    case 0x4: target = s->r[reg]; break;                                   /* CALLA Rdst */
    case 0x5: {                                                            /* CALLA z16(Rdst) */
      uint32_t x = fetch(s);
      target = rd20(s, (s->r[reg] + (uint32_t)(int32_t)(int16_t)x) & ADDR_MASK);
      break;
    }
    case 0x6: target = rd20(s, s->r[reg]); break;                          /* CALLA @Rdst */
    case 0x7:                                                              /* CALLA @Rdst+ */
      target = rd20(s, s->r[reg]);
      s->r[reg] = (s->r[reg] + 4u) & ADDR_MASK;
      break;
    case 0x8: target = rd20(s, ((uint32_t)reg << 16) | fetch(s)); c = 6; break; /* &abs20 */
    case 0x9: {                                                            /* CALLA EDE (x(PC)) */
      uint32_t xa = s->r[PC];
      uint32_t x = ((uint32_t)reg << 16) | fetch(s);
      if (x & 0x80000u) x |= 0xFFF00000u;
      target = rd20(s, (xa + x) & ADDR_MASK);
      c = 6;
      break;
    }
    case 0xB: target = ((uint32_t)reg << 16) | fetch(s); break;           /* CALLA #imm20 */
    default: return -1;
    }
    /* push the 20-bit return address: high word first (at SP+2), low word at SP */
    s->r[SP] = (s->r[SP] - 4u) & ADDR_MASK;
    wr20(s, s->r[SP], s->r[PC]);
    s->r[PC] = target & ADDR_MASK & ~1u;
    s->cycles += (uint64_t)c;
    return 0;
  }
  {
    int pop = (w & 0x0200u) != 0, aw = (w & 0x0100u) != 0; /* aw: 1 = .W, 0 = .A */
    int n = ((w >> 4) & 15) + 1, reg = w & 15, i;
    if (!pop) {
      for (i = 0; i < n; i++) { /* PUSHM #n, Rdst: pushes Rdst, Rdst-1, ..., Rdst-n+1 */
        int r = (reg - i) & 15;
        if (aw) {
          s->r[SP] = (s->r[SP] - 2u) & ADDR_MASK;
          wr16(s, s->r[SP], (uint16_t)s->r[r]);
        } else {
          s->r[SP] = (s->r[SP] - 4u) & ADDR_MASK;
          wr20(s, s->r[SP], s->r[r]);
        }
      }
    } else {
      for (i = 0; i < n; i++) { /* POPM #n, Rdst: the field holds Rdst-n+1, the first register popped */
        int r = (reg + i) & 15;
        uint32_t v;
        if (aw) {
          v = rd16(s, s->r[SP]);
          s->r[SP] = (s->r[SP] + 2u) & ADDR_MASK;
        } else {
          v = rd20(s, s->r[SP]);
          s->r[SP] = (s->r[SP] + 4u) & ADDR_MASK;
        }
        if (r != CG2) s->r[r] = (r == PC || r == SP) ? v & ~1u : v;
      }
    }
    s->cycles += (uint64_t)(2 + (aw ? n : 2 * n));
    return 0;
  }
}

static int step_jump(sim_t *s, uint16_t w)
{
  uint32_t sr = s->r[SR];
  int take;
  int n = (sr & F_N) != 0, v = (sr & F_V) != 0;
  switch ((w >> 10) & 7) {
  case 0: take = !(sr & F_Z); break;
  case 1: take = (sr & F_Z) != 0; break;
  case 2: take = !(sr & F_C); break;
  case 3: take = (sr & F_C) != 0; break;
  case 4: take = n; break;
  case 5: take = n == v; break;
  case 6: take = n != v; break;
  default: take = 1; break;
  }
  if (take) {
    int32_t off = (int32_t)(w & 0x3FFu);
    if (off & 0x200) off -= 0x400;
    s->r[PC] = (s->r[PC] + (uint32_t)(off * 2)) & ADDR_MASK;
  }
  s->cycles += 2u;
  return 0;
}

/* ---- LEA (Low Energy Accelerator) ---------------------------------------------------------------------
 * Register interface (32-bit registers at 0x0A80, accessed as two 16-bit words, low word first; offsets
 * and bit fields from TI's MSP430FR5994 register description as published in its SVD/device header):
 *   0x04 LEACNF0, 0x08 LEACNF1 (bit 0 LEABUSY, bits 7:4 LEAMODE, bit 22 LEACFLTC command fault),
 *   0x0C LEACNF2 (LEA stack pointer, LEA word address), 0x10 LEAMB / 0x14 LEAMT (LEA RAM bottom / top,
 *   byte addresses, read-only: 0x2C00 / 0x3C00), 0x40 LEAPMCTL (bit 0 LEACMDEN), 0x44 LEAPMDST,
 *   0x48 LEAPMS1 (parameter block), 0x4C LEAPMS0 (first operand), 0x50 LEAPMCB (bits 1:0 LEAITFLG, bits 9:2
 *   command number), 0x70 LEAIFGSET, 0x74 LEAIE, 0x78 LEAIFG (bit 0 LEACOVLIFG command overflow, bit 2
 *   LEAOORIFG out of range, bit 3 LEASDIIFG scalar data inconsistency, bit 4 LEAPMCMDIFG command done;
 *   write 1 to clear), 0x7C LEAIV.
 * LEA addresses are 32-bit word addresses: byte address >> 2 (TI DSPLib MSP_LEA_CONVERT_ADDRESS).
 * Commands executed (numbers from the same register description; parameter blocks as laid out in TI's
 * DSPLib LEA support header, DSPLib_lea.h, u16 fields in this order):
 *    4 FFTCOMPLEXFIXEDSCALING  PMS0 data (N complex Q15, in place); block {vectorSizeBy2, log2Size}
 *   21 MAC                     PMS0 srcA; block {vectorSize, input2, output, reserved} -> int32 at output
 *   26 MACCOMPLEXMATRIX        PMS0 srcA; block {vectorSize, input2, output, input1Offset, input2Offset, -}
 *   33 BITREVERSECOMPLEXEVEN   PMS0 data (N = s*s complex Q15, in place); block {sqrtVectorSize, -}
 *   34 BITREVERSECOMPLEXODD    PMS0 data (N = 2*s*s); block {sqrtVectorSize, -}
 * ARITHMETIC — the one place where this emulator states what TI leaves undocumented: the FFT butterfly,
 * its rounding and saturation and the twiddle ROM are the project's numeric spec (docs/numeric-spec.md,
 * "Fixed-point FFT"), executed by the very code of the DSPLib software model (firmware/dsplib/model/,
 * included below: one implementation for the host model and this LEA); the MACs return
 * sat32(2 * sum(a*b)) (Q15 x Q15 -> IQ31, as DSPLib's C fallback); complex MAC the same per part.
 * Checks (documented LEA error flags; which flag for which violation is our assumption): an operand or
 * parameter block outside LEA RAM, or FFT/bit-reversal data not aligned to 4N bytes (TI's
 * MSP_ALIGN_CMPLX_FFT_Q15) -> LEAOORIFG and nothing is written; an odd MAC length or an FFT length that is
 * not a power of two in 16..512 -> LEASDIIFG; a command while busy -> LEACOVLIFG; an unknown command ->
 * LEACNF1.LEACFLTC. Every command ends with LEAPMCMDIFG set, LEABUSY cleared.
 * TIMING (ASSUMED; TI's per-command cycle tables, SLAA698B, were not retrievable here): a command
 * occupies LEA for LEA_CYCLES(cmd, n) MCLK cycles after the LEAPMCB write; its results appear, and
 * LEAPMCMDIFG is set, when that many cycles have passed. The CPU runs on meanwhile (our driver polls).
 *   FFT 40 + 3 * (N/2) * log2 N; MAC 24 + n/2 (two Q15 products per cycle on the 32-bit datapath);
 *   complex MAC 24 + 2n; bit reversal 16 + N. */
#include "../../firmware/dsplib/model/msp_model_lea.c"
#include "../../firmware/dsplib/model/msp_model_rom.c"
#include "../../firmware/dsplib/model/msp_transform.c"

enum {
  LEA_CNF1 = 0x08, LEA_CNF2 = 0x0C, LEA_MB = 0x10, LEA_MT = 0x14, LEA_PMCTL = 0x40, LEA_PMS1 = 0x48,
  LEA_PMS0 = 0x4C, LEA_PMCB = 0x50, LEA_IFGSET = 0x70, LEA_IE = 0x74, LEA_IFG = 0x78, LEA_IV = 0x7C,
};
enum { IFG_COVL = 0x01, IFG_OOR = 0x04, IFG_SDI = 0x08, IFG_DONE = 0x10 };
enum { CMD_FFT = 4, CMD_MAC = 21, CMD_CMAC = 26, CMD_BREV_EVEN = 33, CMD_BREV_ODD = 34 };
#define LEA_RAM_LO 0x2C00u
#define LEA_RAM_HI 0x3C00u
#define LEA_CFLTC 0x0040u /* LEACNF1 bit 22 = bit 6 of the high word */

static uint16_t lea_read(sim_t *s, uint32_t off)
{
  switch (off) {
  case LEA_CNF1: return (uint16_t)((s->lea_busy ? 1u : 0u) | ((s->lea_busy ? 4u : 1u) << 4));
  case LEA_MB: return (uint16_t)LEA_RAM_LO;
  case LEA_MT: return (uint16_t)LEA_RAM_HI;
  case LEA_IFGSET: return s->lea[LEA_IFG / 2];
  default: return s->lea[off / 2];
  }
}

static inline uint16_t lea_rd16(sim_t *s, uint32_t a) { return (uint16_t)(s->mem[a] | (s->mem[a + 1] << 8)); }

static int lea_in_ram(uint32_t a, uint32_t bytes, uint32_t align)
{
  return a >= LEA_RAM_LO && a + bytes <= LEA_RAM_HI && bytes <= LEA_RAM_HI - LEA_RAM_LO && a % align == 0u;
}

/* Length of a command's work (for timing and energy): MAC elements, FFT points. 0 = malformed. */
static uint32_t lea_length(sim_t *s, uint32_t cmd, uint32_t blk)
{
  uint32_t v;
  if (!lea_in_ram(blk, 4u, 4u)) return 0;
  v = lea_rd16(s, blk);
  switch (cmd) {
  case CMD_FFT: return 2u * v;
  case CMD_MAC: case CMD_CMAC: return v;
  case CMD_BREV_EVEN: return v * v;
  case CMD_BREV_ODD: return 2u * v * v;
  default: return 0;
  }
}

static uint64_t lea_cycles_assumed(uint32_t cmd, uint32_t n)
{
  uint32_t lg = 0;
  while ((1u << lg) < n && lg < 16u) lg++;
  switch (cmd) {
  case CMD_FFT: return 40u + 3u * (uint64_t)(n / 2u) * lg;
  case CMD_MAC: return 24u + n / 2u;
  case CMD_CMAC: return 24u + 2u * (uint64_t)n;
  case CMD_BREV_EVEN: case CMD_BREV_ODD: return 16u + n;
  default: return 8u;
  }
}

/* The ASSUMED durations scaled by bl_sim_set_lea_timing (a sensitivity knob: no TI figure is at hand, so the
 * benchmarks can show how a result moves if the real LEA is slower or faster); at least one cycle. */
static uint64_t lea_cycles(const sim_t *s, uint32_t cmd, uint32_t n)
{
  const uint64_t c = (lea_cycles_assumed(cmd, n) * s->lea_scale_q8 + 128u) >> 8;
  return c ? c : 1u;
}

static void lea_write(sim_t *s, uint32_t off, uint16_t v)
{
  switch (off) {
  case LEA_CNF1 + 2: /* LEACFLTC: write 1 to clear */
    s->lea[off / 2] = (uint16_t)(s->lea[off / 2] & ~(v & LEA_CFLTC));
    return;
  case LEA_MB: case LEA_MB + 2: case LEA_MT: case LEA_MT + 2: case LEA_IV: case LEA_IV + 2:
    return; /* read-only */
  case LEA_IFGSET:
    s->lea[LEA_IFG / 2] |= (uint16_t)(v & 0x1Fu);
    return;
  case LEA_IFG:
    s->lea[LEA_IFG / 2] = (uint16_t)(s->lea[LEA_IFG / 2] & ~v);
    return;
  case LEA_PMCB: {
    s->lea[off / 2] = v;
    if (!(s->lea[LEA_PMCTL / 2] & 1u)) {
      return; /* LEACMDEN = 0: writes to LEAPMCB do not trigger (register description) */
    }
    if (s->lea_busy) {
      s->lea[LEA_IFG / 2] |= IFG_COVL;
      return;
    }
    s->lea_cmd = (v >> 2) & 0xFFu;
    s->lea_s0 = (uint32_t)s->lea[LEA_PMS0 / 2] << 2;
    s->lea_s1 = (uint32_t)s->lea[LEA_PMS1 / 2] << 2;
    s->lea_busy = 1;
    s->lea_started_at = s->cycles;
    if (s->nlea_log == s->cap_lea_log && s->cap_lea_log < (1u << 22)) {
      uint32_t cap = s->cap_lea_log ? 2u * s->cap_lea_log : 1024u;
      uint64_t *nl = realloc(s->lea_log, cap * sizeof *nl);
      if (nl) {
        s->lea_log = nl;
        s->cap_lea_log = cap;
      }
    }
    if (s->nlea_log < s->cap_lea_log) s->lea_log[s->nlea_log++] = s->insns;
    s->lea_done_at = s->cycles + lea_cycles(s, s->lea_cmd, lea_length(s, s->lea_cmd, s->lea_s1));
    return;
  }
  default:
    s->lea[off / 2] = v;
    return;
  }
}

static int32_t lea_sat32_twice(int64_t sum)
{
  int64_t v = 2 * sum;
  return v > INT32_MAX ? INT32_MAX : v < INT32_MIN ? INT32_MIN : (int32_t)v;
}

static void lea_wr32(sim_t *s, uint32_t a, int32_t v)
{
  uint32_t u = (uint32_t)v;
  s->mem[a] = (uint8_t)u;
  s->mem[a + 1] = (uint8_t)(u >> 8);
  s->mem[a + 2] = (uint8_t)(u >> 16);
  s->mem[a + 3] = (uint8_t)(u >> 24);
}

/* Execute the running command on memory; returns the IFG error bits. */
static uint16_t lea_execute(sim_t *s, uint32_t cmd, uint32_t a0, uint32_t blk)
{
  static int16_t z[2u * MSP_MODEL_FFT_MAX];
  uint32_t n = lea_length(s, cmd, blk), i;
  if (!lea_in_ram(blk, cmd == CMD_MAC ? 8u : cmd == CMD_CMAC ? 12u : 4u, 4u)) {
    return IFG_OOR; /* the parameter block itself must be in LEA RAM */
  }
  if (cmd == CMD_MAC || cmd == CMD_CMAC) {
    uint32_t b = (uint32_t)lea_rd16(s, blk + 2) << 2, out = (uint32_t)lea_rd16(s, blk + 4) << 2;
    uint32_t esz = cmd == CMD_MAC ? 2u : 4u;
    uint32_t sa = 1, sb = 1;
    int64_t re = 0, im = 0;
    if (n & 1u) return IFG_SDI;
    if (cmd == CMD_CMAC) {
      sa = lea_rd16(s, blk + 6);
      sb = lea_rd16(s, blk + 8);
      if (sa == 0u || sb == 0u) return IFG_SDI;
    }
    if (!lea_in_ram(a0, n ? ((n - 1u) * sa + 1u) * esz : 0u, 4u) ||
        !lea_in_ram(b, n ? ((n - 1u) * sb + 1u) * esz : 0u, 4u) || !lea_in_ram(out, esz == 2u ? 4u : 8u, 4u)) {
      return IFG_OOR;
    }
    for (i = 0; i < n; i++) {
      uint32_t pa = a0 + i * sa * esz, pb = b + i * sb * esz;
      int32_t ar = (int16_t)lea_rd16(s, pa), br = (int16_t)lea_rd16(s, pb);
      if (cmd == CMD_MAC) {
        re += (int64_t)ar * br;
      } else {
        int32_t ai = (int16_t)lea_rd16(s, pa + 2), bi = (int16_t)lea_rd16(s, pb + 2);
        re += (int64_t)ar * br - (int64_t)ai * bi;
        im += (int64_t)ar * bi + (int64_t)ai * br;
      }
    }
    lea_wr32(s, out, lea_sat32_twice(re));
    if (cmd == CMD_CMAC) lea_wr32(s, out + 4, lea_sat32_twice(im));
    return 0;
  }
  if (cmd == CMD_FFT || cmd == CMD_BREV_EVEN || cmd == CMD_BREV_ODD) {
    if (cmd == CMD_FFT && n != (1u << lea_rd16(s, blk + 2))) return IFG_SDI;
    if (n < MSP_MODEL_FFT_MIN || n > MSP_MODEL_FFT_MAX || (n & (n - 1u)) != 0u) return IFG_SDI;
    if (!lea_in_ram(a0, 4u * n, 4u * n)) return IFG_OOR;
    for (i = 0; i < 2u * n; i++) z[i] = (int16_t)lea_rd16(s, a0 + 2u * i);
    if (cmd == CMD_FFT) {
      stages(z, (uint16_t)n, 0);
    } else {
      bit_reverse(z, (uint16_t)n);
    }
    for (i = 0; i < 2u * n; i++) {
      s->mem[a0 + 2u * i] = (uint8_t)z[i];
      s->mem[a0 + 2u * i + 1u] = (uint8_t)((uint16_t)z[i] >> 8);
    }
    return 0;
  }
  s->lea[LEA_CNF1 / 2 + 1] |= LEA_CFLTC;
  return 0;
}

static void lea_complete(sim_t *s)
{
  uint16_t err = lea_execute(s, s->lea_cmd, s->lea_s0, s->lea_s1);
  if (s->lea_cmd < LEA_NCMD) {
    s->lea_count[s->lea_cmd]++;
    s->lea_elems[s->lea_cmd] += lea_length(s, s->lea_cmd, s->lea_s1);
  }
  s->lea_busy_cycles += s->lea_done_at - s->lea_started_at;
  s->lea[LEA_IFG / 2] |= (uint16_t)(err | IFG_DONE);
  s->lea_busy = 0;
}

static int step_one(sim_t *s);

static int step(sim_t *s)
{
  uint64_t c0 = s->cycles;
  uint32_t pc = s->r[PC];
  int rc = step_one(s);
  if (s->profile && pc < 0x10000u) s->profile[pc >> 1] += s->cycles - c0;
  return rc;
}

static int step_one(sim_t *s)
{
  uint16_t w, ext = 0;
  int rc;
  s->last_pc = s->r[PC];
  if (s->lea_busy && s->cycles >= s->lea_done_at) {
    lea_complete(s);
  }
  if (s->dma_running) { /* the CPU is halted: the DMA moves one unit instead of an instruction */
    dma_step(s);
    return 0;
  }
  if (!is_fram(s->r[PC]) && !is_sram(s->r[PC])) {
    s->stop_reason = STOP_VACANT;
    return -1;
  }
  w = fetch(s);
  if (w >= 0x1800u && w < 0x2000u) {
    ext = w;
    w = fetch(s);
    if (w >= 0x4000u) {
      rc = step_fmt1(s, w, ext);
    } else if (w >= 0x1000u && w < 0x1300u) {
      rc = step_fmt2(s, w, ext);
    } else {
      rc = -1;
    }
  } else if (w >= 0x4000u) {
    rc = step_fmt1(s, w, 0);
  } else if (w >= 0x2000u) {
    rc = step_jump(s, w);
  } else if (w >= 0x1340u) {
    rc = step_calla_pushm(s, w);
  } else if (w >= 0x1000u) {
    rc = step_fmt2(s, w, 0);
  } else {
    rc = step_addr(s, w);
  }
  if (rc < 0) {
    s->last_illegal = ext ? ((uint32_t)ext << 16) | w : w;
    s->stop_reason = STOP_ILLEGAL;
    s->r[PC] = s->last_pc;
    return -1;
  }
  s->insns++;
  return 0;
}

/* ---- API (ctypes) ------------------------------------------------------------------------------------ */

BL_API sim_t *bl_sim_new(void)
{
  sim_t *s = calloc(1, sizeof *s);
  if (s) {
    s->fram_timing = 1;
    s->lea_scale_q8 = 256u;
    s->stop_pc = 0xFFFFFFFFu;
  }
  return s;
}

BL_API void bl_sim_free(sim_t *s)
{
  if (s) {
    free(s->mark_val);
    free(s->mark_cycle);
    free(s->mark_insn);
    free(s->lea_log);
    free(s->profile);
    free(s);
  }
}

/* Load bytes into memory (an ELF segment): no timing, no peripheral side effects. */
BL_API int bl_sim_load(sim_t *s, uint32_t addr, const uint8_t *data, uint32_t len)
{
  if (addr >= MEM_SIZE || len > MEM_SIZE - addr) {
    return -1;
  }
  memcpy(&s->mem[addr], data, len);
  return 0;
}

BL_API int bl_sim_read(sim_t *s, uint32_t addr, uint8_t *out, uint32_t len)
{
  if (addr >= MEM_SIZE || len > MEM_SIZE - addr) {
    return -1;
  }
  memcpy(out, &s->mem[addr], len);
  return 0;
}

BL_API void bl_sim_config(sim_t *s, uint32_t stop_pc, uint32_t mark_addr, int32_t fram_timing, uint32_t seed)
{
  s->stop_pc = stop_pc;
  s->mark_addr = mark_addr;
  s->fram_timing = fram_timing;
  s->sram_seed = seed;
}

/* Power on (the first boot) or power back on after a cut: see power_on. Counters keep counting. */
BL_API void bl_sim_set_timing(sim_t *s, int32_t classic) { s->classic = classic != 0; }

/* LEA command durations x q8 / 256 (sensitivity runs; 256 = as assumed, docs/msp430sim.md "LEA"). */
BL_API void bl_sim_set_lea_timing(sim_t *s, uint32_t q8) { s->lea_scale_q8 = q8 ? q8 : 1u; }

BL_API void bl_sim_power_on(sim_t *s)
{
  power_on(s);
}

/* A power cut: everything volatile is lost; the next bl_sim_power_on boots from the reset vector. */
BL_API void bl_sim_power_cut(sim_t *s)
{
  s->resets++;
  power_on(s);
}

/* Run until the cycle count reaches max_cycles or the instruction count max_insns (0 = no limit), the PC
 * reaches stop_pc, the CPU halts, or an illegal instruction. An instruction is never split: a limit is
 * reached at the end of the instruction that crosses it. Returns the stop reason. */
BL_API int32_t bl_sim_run(sim_t *s, uint64_t max_cycles, uint64_t max_insns)
{
  uint64_t cyc_lim = max_cycles ? max_cycles : UINT64_MAX;
  uint64_t ins_lim = max_insns ? max_insns : UINT64_MAX;
  s->stop_reason = STOP_LIMIT;
  while (s->cycles < cyc_lim && s->insns < ins_lim) {
    if (s->r[PC] == s->stop_pc && !s->dma_running) {
      s->stop_reason = STOP_PC;
      return STOP_PC;
    }
    if ((s->r[SR] & F_CPUOFF) && !(s->r[SR] & F_GIE) && !s->dma_running) {
      s->stop_reason = STOP_HALT;
      return STOP_HALT;
    }
    if (step(s) < 0) {
      return s->stop_reason;
    }
  }
  return STOP_LIMIT;
}

BL_API uint32_t bl_sim_reg(sim_t *s, int32_t i) { return s->r[i & 15]; }
BL_API void bl_sim_set_reg(sim_t *s, int32_t i, uint32_t v) { s->r[i & 15] = v & ADDR_MASK; }

/* counters: 0 cycles, 1 instructions, 2 FRAM reads, 3 FRAM read misses, 4 FRAM writes, 5 resets,
 * 6 marks, 7 last illegal opcode, 8 PC of the last instruction, 9 NWAITS in effect, 10-13 constant-
 * generator source operands executed with As = 0..3, 14 MCLK cycles with a LEA command running, 15 LEA busy
 * now, 16 DMA transfers, 17 MCLK cycles of DMA transfers, 100 + c / 200 + c: LEA commands number c completed / their summed lengths */
BL_API uint64_t bl_sim_counter(sim_t *s, int32_t which)
{
  switch (which) {
  case 0: return s->cycles;
  case 1: return s->insns;
  case 2: return s->fram_reads;
  case 3: return s->fram_misses;
  case 4: return s->fram_writes;
  case 5: return s->resets;
  case 6: return s->nmarks;
  case 7: return s->last_illegal;
  case 8: return s->last_pc;
  case 9: return s->nwaits;
  case 10: case 11: case 12: case 13: return s->cg_src[which - 10];
  case 14: return s->lea_busy_cycles;
  case 15: return (uint64_t)s->lea_busy;
  case 16: return s->dma_transfers;
  case 17: return s->dma_cycles;
  default:
    if (which >= 100 && which < 100 + LEA_NCMD) return s->lea_count[which - 100];
    if (which >= 200 && which < 200 + LEA_NCMD) return s->lea_elems[which - 200];
    return 0;
  }
}

BL_API void bl_sim_set_cycles(sim_t *s, uint64_t cycles, uint64_t insns)
{
  s->cycles = cycles;
  s->insns = insns;
}

/* Copy the logged marks (value, cycle, instruction count) from index `start`; returns how many. */
BL_API uint32_t bl_sim_marks(sim_t *s, uint32_t start, uint32_t n, uint16_t *val, uint64_t *cyc, uint64_t *ins)
{
  uint32_t i;
  if (start >= s->nmarks) {
    return 0;
  }
  if (n > s->nmarks - start) {
    n = s->nmarks - start;
  }
  for (i = 0; i < n; i++) {
    val[i] = s->mark_val[start + i];
    cyc[i] = s->mark_cycle[start + i];
    ins[i] = s->mark_insn[start + i];
  }
  return n;
}

BL_API void bl_sim_clear_marks(sim_t *s) { s->nmarks = 0; }

/* The supply voltage (AVCC) the ADC12_B model converts; kept across power cuts (the host's trace sets it). */
BL_API void bl_sim_set_supply_mv(sim_t *s, uint32_t mv) { s->supply_mv = mv; }

/* Cycle profile by instruction address: enable (allocates, zeroes) and copy out (32768 words). */
BL_API int32_t bl_sim_profile(sim_t *s, int32_t enable, uint64_t *out)
{
  if (enable && !s->profile) {
    s->profile = calloc(0x8000u, sizeof *s->profile);
    if (!s->profile) return -1;
  }
  if (out && s->profile) memcpy(out, s->profile, 0x8000u * sizeof *s->profile);
  return 0;
}

/* Instruction counts at which LEA commands started (the LEAPMCB write's instruction is counted after it
 * completes, so LEA is busy right after the count given). Returns how many were copied from `start`. */
BL_API uint32_t bl_sim_lea_starts(sim_t *s, uint32_t start, uint32_t n, uint64_t *out)
{
  uint32_t i;
  if (start >= s->nlea_log) return 0;
  if (n > s->nlea_log - start) n = s->nlea_log - start;
  for (i = 0; i < n; i++) out[i] = s->lea_log[start + i];
  return n;
}
