/* batteryless LEA driver for the MSP430FR5994: the four DSPLib calls the `lea` kernels use
 * (../../../dsplib/DSPLib.h), issued as LEA commands through the LEA's register interface.
 *
 * Written for this project from TI's published descriptions, nothing copied:
 *  - registers (base 0x0A80, 32-bit registers written as two 16-bit words): LEACNF0 0x04, LEACNF1 0x08
 *    (bit 0 LEABUSY), LEACNF2 0x0C (LEA stack pointer), LEAMB 0x10 / LEAMT 0x14 (LEA RAM bounds),
 *    LEAPMCTL 0x40 (bit 0 LEACMDEN), LEAPMS1 0x48 (parameter block), LEAPMS0 0x4C (first operand),
 *    LEAPMCB 0x50 (bits 9:2 command, bits 1:0 LEAITFLG), LEAIFG 0x78 (bit 0 command overflow, bit 2 out of
 *    range, bit 3 scalar data inconsistency, bit 4 command done; write 1 to clear) — TI's MSP430FR5994
 *    register description (device header / SVD);
 *  - command numbers (4 FFTCOMPLEXFIXEDSCALING, 21 MAC, 26 MACCOMPLEXMATRIX, 33/34 BITREVERSECOMPLEX
 *    EVEN/ODD) and parameter-block layouts, LEA addresses = byte address >> 2, the LEA stack in LEACNF2
 *    for parameter blocks, and the argument checks (even lengths, 4-byte alignment, complex FFT data aligned
 *    to 4N bytes, operands in LEA RAM) — TI's DSPLib LEA support header and API guide (DSPLib 1.30).
 *
 * Differences from TI's DSPLib: the CPU polls LEAIFG for the command-done flag instead of sleeping in LPM0
 * until the LEA interrupt (the MSP430 platform layer has no interrupt handlers; the wait costs CPU active
 * cycles, see docs/msp430sim.md); the inverse FFT is computed as swap(FFT(swap(x))) with swap exchanging
 * real and imaginary parts, which is the spec's inverse butterfly for butterfly with the forward twiddles'
 * negated imaginary part (docs/kernels.md: the spec saturates -(-32768) to 32767 at t = N/4, this route
 * uses the exact +1; docs/msp430sim.md says when that can differ). Statuses as ../../../dsplib/DSPLib.h. */
#include <stdint.h>

#include "../../../dsplib/DSPLib.h"
#include "../bl_ramfunc.h"

#define LEA_REG(off) (*(volatile uint16_t *)(0x0A80u + (off)))
#define LEACNF0 0x04u
#define LEACNF1 0x08u
#define LEACNF2 0x0Cu
#define LEAMB 0x10u
#define LEAMT 0x14u
#define LEAPMCTL 0x40u
#define LEAPMS1 0x48u
#define LEAPMS0 0x4Cu
#define LEAPMCB 0x50u
#define LEAIFG 0x78u

#define LEABUSY 0x0001u
#define LEACMDEN 0x0001u
#define LEAITFLG_DONE 0x0002u /* LEAITFLG = 2: "command with interrupt upon completion" (flag set) */
#define IFG_COVL 0x0001u
#define IFG_OOR 0x0004u
#define IFG_SDI 0x0008u
#define IFG_DONE 0x0010u

enum { CMD_FFT = 4, CMD_MAC = 21, CMD_CMAC = 26, CMD_BREV_EVEN = 33, CMD_BREV_ODD = 34 };

/* LEA word address of a pointer into LEA RAM (TI: MSP_LEA_CONVERT_ADDRESS). */
static uint16_t lea_addr(const void *p) { return (uint16_t)((uintptr_t)p >> 2); }

/* LEA RAM bounds, read from LEAMB / LEAMT once by lea_init (they are constants of the part). SRAM: a power
 * cut zeroes them with the rest of .bss at the next boot, so lea_init runs again after every reset. */
static uint16_t lea_lo, lea_hi;

/* TI's MSP_LEA_VALID_ADDRESS: inside [LEAMB, LEAMT) and aligned to n bytes. The whole operand must fit.
 * 16-bit arithmetic: LEA RAM lies below 64 KB (a 32-bit multiply or compare is a helper call here). */
static int lea_valid(const void *p, uint16_t bytes, uint16_t align)
{
  const uint16_t a = (uint16_t)(uintptr_t)p;
  return p != 0 && a >= lea_lo && a < lea_hi && bytes <= (uint16_t)(lea_hi - a) && (a & (uint16_t)(align - 1u)) == 0u;
}

/* Enable LEA once per boot. A part (or simulator) without LEA reads LEAMT <= LEAMB (mspdebug's simulator
 * reads 0): then nothing is issued and every call fails with MSP_LEA_INCORRECT_REVISION. */
static msp_status lea_init(void)
{
  if (lea_hi != 0u) {
    return MSP_SUCCESS;
  }
  if (LEA_REG(LEAMT) <= LEA_REG(LEAMB)) {
    return MSP_LEA_INCORRECT_REVISION;
  }
  LEA_REG(LEACNF0) = 0u;
  LEA_REG(LEACNF0 + 2u) = 0u;
  LEA_REG(LEACNF1) = 0u;
  LEA_REG(LEACNF1 + 2u) = 0u;
  LEA_REG(LEACNF2) = (uint16_t)(LEA_REG(LEAMT) >> 2); /* LEA stack starts at the top of LEA RAM */
  LEA_REG(LEACNF2 + 2u) = 0u;
  LEA_REG(LEAPMS0 + 2u) = 0u; /* operand addresses lie below 64 KB: the high words stay 0 (lea_go) */
  LEA_REG(LEAPMS1 + 2u) = 0u;
  LEA_REG(LEAPMCTL) = LEACMDEN;
  lea_lo = LEA_REG(LEAMB);
  lea_hi = LEA_REG(LEAMT);
  return MSP_SUCCESS;
}

/* Longest wait for a command, in polls (~8 cycles each): far beyond any command's duration (a 512-point
 * FFT is well under 20,000 cycles), so only a LEA that never answers ends it. */
#define LEA_MAX_POLLS 60000u
/* The one command sequence every call uses, in two halves. lea_block: reserve the parameter block of
 * `words` 32-bit words on the LEA stack (TI: msp_lea_allocMemory, below LEAMT) for the caller to fill.
 * lea_go: point LEAPMS0 at the first operand and LEAPMS1 at the block, start `cmd` with
 * "interrupt upon completion" (the done flag), poll for the flag, map the error flags. lea_release frees
 * the block (a block may serve several commands, bl_lea_cmac_many). */
static volatile uint16_t *lea_block(uint16_t words)
{
  LEA_REG(LEACNF2) = (uint16_t)(LEA_REG(LEACNF2) - words);
  return (volatile uint16_t *)((uintptr_t)LEA_REG(LEACNF2) << 2);
}

static void lea_release(uint16_t words) { LEA_REG(LEACNF2) = (uint16_t)(LEA_REG(LEACNF2) + words); }

/* Wait for the running command's done flag, clear the flags seen, map the error flags. */
static msp_status lea_wait(void)
{
  uint16_t ifg, polls = 0u;
  do {
    ifg = LEA_REG(LEAIFG);
  } while (!(ifg & IFG_DONE) && ++polls < LEA_MAX_POLLS);
  if (!(ifg & IFG_DONE)) return MSP_LEA_BUSY;
  LEA_REG(LEAIFG) = ifg;
  if (ifg & (IFG_COVL | IFG_OOR | IFG_SDI)) {
    if (ifg & IFG_COVL) return MSP_LEA_COMMAND_OVERFLOW;
    if (ifg & IFG_OOR) return MSP_LEA_OUT_OF_RANGE;
    return MSP_LEA_SCALAR_INCONSISTENCY;
  }
  return MSP_SUCCESS;
}

/* Start `cmd` on first operand (LEA address) a0 with the parameter block at LEA address pb, then wait.
 * No busy test and no flag clearing before the start: every command of this driver waits for its done
 * flag and clears the flags it saw (lea_wait), so LEA is idle with LEAIFG clear here; a command started
 * while one runs would still be caught (LEACOVLIFG). The PMS high words were set once (lea_init). */
static inline msp_status lea_start(uint16_t cmd, uint16_t a0, uint16_t pb)
{
  LEA_REG(LEAPMS0) = a0;
  LEA_REG(LEAPMS1) = pb;
  LEA_REG(LEAPMCB) = (uint16_t)((uint16_t)(cmd << 2) | LEAITFLG_DONE);
  return lea_wait();
}

static msp_status lea_go(uint16_t cmd, const void *src, const volatile uint16_t *blk)
{
  return lea_start(cmd, lea_addr(src), lea_addr((const void *)blk));
}

/* msp_mac_q15 and msp_cmplx_mac_q15: one set-up for both. TI's argument checks (even length, operands and
 * result 4-byte aligned in LEA RAM), then MAC {vectorSize, input2, output, reserved} or MACCOMPLEXMATRIX
 * {vectorSize, input2, output, input1Offset = 1, input2Offset = 1, reserved}. */
static msp_status mac_any(uint16_t cmd, uint16_t length, const _q15 *a, const _q15 *b, _iq31 *r)
{
  const uint16_t cplx = cmd == CMD_CMAC, words = cplx ? 3u : 2u;
  uint16_t bytes;
  volatile uint16_t *blk;
  msp_status st = lea_init();
  if (st != MSP_SUCCESS) return st;
  if ((length & 1u) || length > 0x0FFFu) return MSP_SIZE_ERROR;
  bytes = (uint16_t)(cplx ? length << 2 : length << 1);
  if (!lea_valid(a, bytes, 4u) || !lea_valid(b, bytes, 4u) || !lea_valid(r, cplx ? 8u : 4u, 4u)) {
    return MSP_LEA_INVALID_ADDRESS;
  }
  blk = lea_block(words);
  blk[0] = length;
  blk[1] = lea_addr(b);
  blk[2] = lea_addr(r);
  blk[3] = cplx;
  if (cplx) {
    blk[4] = 1u;
    blk[5] = 0u;
  }
  st = lea_go(cmd, a, blk);
  lea_release(words);
  return st;
}

/* bl_lea_cmac_many's argument checks (msp_cmplx_mac_q15's on the whole extent) and parameter block, out of
 * its loop. Returns the block (3 words reserved on the LEA stack, released by the caller) or 0 with *st
 * set. */
static volatile uint16_t *cmac_prep(uint16_t length, const _q15 *srcA, const _q15 *srcB, uint16_t step,
                                    uint16_t count, _iq31 *result, uint16_t offset, msp_status *st)
{
  uint16_t span;
  volatile uint16_t *blk;
  *st = lea_init();
  if (*st != MSP_SUCCESS) return 0;
  if ((length & 1u) || length > 0x0FFFu || count == 0u || count > 0x0FFFu || (step & 1u) || offset == 0u ||
      offset > 0x0FFFu) {
    *st = MSP_SIZE_ERROR;
    return 0;
  }
  /* bytes from srcA to the end of the last command's last element (16-bit: LEA RAM is 4 KB; wider
   * requests fail the checks) */
  span = (uint16_t)((uint16_t)((count - 1u) * step) * 2u + (uint16_t)((uint16_t)((length - 1u) * offset) + 1u) * 4u);
  if (!lea_valid(srcA, span, 4u) || !lea_valid(srcB, span, 4u) || !lea_valid(result, (uint16_t)(count << 3), 4u)) {
    *st = MSP_LEA_INVALID_ADDRESS;
    return 0;
  }
  blk = lea_block(3u);
  blk[0] = length;
  blk[1] = lea_addr(srcB);
  blk[2] = lea_addr(result);
  blk[3] = offset;
  blk[4] = offset;
  blk[5] = 0u;
  return blk;
}

/* The status of a command loop that stopped early on flags `ifg`: the done flag never came, or an error. */
static msp_status cmac_stopped(uint16_t ifg)
{
  if (!(ifg & IFG_DONE)) return MSP_LEA_BUSY;
  if (ifg & IFG_COVL) return MSP_LEA_COMMAND_OVERFLOW;
  if (ifg & IFG_OOR) return MSP_LEA_OUT_OF_RANGE;
  return MSP_LEA_SCALAR_INCONSISTENCY;
}

/* Not TI's (DSPLib.h): `count` complex MACs of `length` elements each, the i-th on srcA + i * step and
 * srcB + i * step (int16 offsets) into result + 2 * i, consecutive elements `offset` complex values apart
 * (MACCOMPLEXMATRIX's input1Offset / input2Offset): one parameter block, of which only the second operand
 * and the result address change between the commands. Same checks as msp_cmplx_mac_q15 on the whole
 * extent. */
msp_status bl_lea_cmac_many(uint16_t length, const _q15 *srcA, const _q15 *srcB, uint16_t step, uint16_t count,
                            _iq31 *result, uint16_t offset)
{
  msp_status st;
  volatile uint16_t *blk = cmac_prep(length, srcA, srcB, step, count, result, offset, &st);
  if (blk == 0) return st;
  { /* LEA addresses stepped directly: step int16 = step / 2 LEA words (step is even), a result 2 words.
     * One assembly loop per command: the block's second operand and result, LEAPMS0, LEAPMS1, LEAPMCB
     * (the command with "interrupt upon completion"), then poll LEAIFG for the done flag (at most
     * LEA_MAX_POLLS polls), write back the flags seen to clear them, stop on an error flag. The same
     * register sequence as lea_start / lea_wait, ~40 CPU cycles a command instead of ~90. */
    const uint16_t su = (uint16_t)(step >> 1), pb = lea_addr((const void *)blk);
    uint16_t a = lea_addr(srcA), b = lea_addr(srcB), r = lea_addr(result), n = count, ifg = 0u, polls;
    __asm__ volatile("1:\n\tmov %[b], 2(%[blk])\n\tmov %[r], 4(%[blk])\n\t"
                     "mov %[a], &0x0ACC\n\tmov %[pb], &0x0AC8\n\tmov %[cmd], &0x0AD0\n\t"
                     "mov %[maxp], %[polls]\n"
                     "2:\n\tmov &0x0AF8, %[ifg]\n\tbit #0x10, %[ifg]\n\tjnz 3f\n\tdec %[polls]\n\tjnz 2b\n\t"
                     "jmp 4f\n"
                     "3:\n\tmov %[ifg], &0x0AF8\n\tbit #0x0D, %[ifg]\n\tjnz 4f\n\t"
                     "add %[su], %[a]\n\tadd %[su], %[b]\n\tadd #2, %[r]\n\tdec %[n]\n\tjnz 1b\n"
                     "4:"
                     : [a] "+r"(a), [b] "+r"(b), [r] "+r"(r), [n] "+r"(n), [ifg] "+r"(ifg), [polls] "=&r"(polls)
                     : [blk] "r"(blk), [pb] "r"(pb), [su] "r"(su),
                       [cmd] "i"((CMD_CMAC << 2) | LEAITFLG_DONE), [maxp] "i"(LEA_MAX_POLLS)
                     : "memory");
    if (n != 0u) st = cmac_stopped(ifg);
  }
  lea_release(3u);
  return st;
}

/* One IQ31 MAC result part at @rp+ requantised into @out+ (the kernels' rq_iq31: u = r + half; saturate
 * when u's high word reaches p or falls below -p; else the high word of u * 2^n, n >= 1). Local label 6;
 * per expansion L0 (the store) and the out-of-line saturations L1 (to INT16_MAX) and L2 (to INT16_MIN),
 * which jump back to L0. A part that may have saturated (high word 0x7FFF or 0x8000 before the rounding
 * half is added: 0x7FFF, 0x8000 or 0x8001 after) always takes L1 or L2 (p <= 2^14): only they test it.
 * s = 15 (n = 0, half = 2^15: the result is u's high word itself, no shift, no saturation) runs with
 * p = -32768, so every part takes L1, where that p selects the s = 15 store (local label 17): the high
 * word, flagged when it is 0x7FFF, 0x8000 or 0x8001 (0x7FFF also from 0x7FFE plus the carry: a needless
 * exact row, never a wrong one). The common s <= 14 path is unchanged; before, an s = 15 layer left this
 * loop for bl_lea_cmac_many and the per-bin exact requantisation: +6.6 k MCLK on 3 of 4 fully trained
 * digits MLPs (benchmarks/block_sweep.py). */
#define BL_RQ_PART(L0, L1, L2)                                                                                      \
  "mov @%[rp]+, %[lo]\n\tmov @%[rp]+, %[hi]\n\t"                                                              \
  "add @%[q], %[lo]\n\taddc #0, %[hi]\n\t"                                                                     \
  "cmp %[p], %[hi]\n\tjge " L1 "f\n\t"                                                                         \
  "mov %[hi], %[t]\n\tadd %[p], %[t]\n\tjn " L2 "f\n\t"                                                        \
  "mov %[n], %[c]\n"                                                                                           \
  "6:\n\tadd %[lo], %[lo]\n\taddc %[hi], %[hi]\n\tdec %[c]\n\tjnz 6b\n"                                      \
  L0 ":\n\tmov %[hi], 0(%[out])\n\tadd #2, %[out]\n\t"
#define BL_RQ_MAX(L0, L1)                                                                                      \
  L1 ":\n\ttst %[p]\n\tjn 17f\n\t"                                                                  \
  "cmp #0x7FFF, %[hi]\n\tjne 7f\n\tmov #1, 6(%[q])\n7:\n\tmov #0x7FFF, %[hi]\n\tjmp " L0 "b\n"                  \
  "17:\n\tmov %[hi], %[t]\n\tsub #0x7FFF, %[t]\n\tcmp #3, %[t]\n\tjhs " L0 "b\n\tmov #1, 6(%[q])\n\tjmp " L0 "b\n"
#define BL_RQ_MIN(L0, L2) L2 ":\n\tcmp #0x8002, %[hi]\n\tjhs 7f\n\tmov #1, 6(%[q])\n7:\n\tmov #0x8000, %[hi]\n\tjmp " L0 "b\n"

/* Not TI's (DSPLib.h): bl_lea_cmac_many (offset, step and checks as there) with each result requantised
 * to int16 while the next command runs, prepared once for many calls that differ only in the second
 * operand (a layer's block rows: bl_lea_cmac_rq_prepare checks everything else, bl_lea_cmac_rq_run checks
 * srcB against the prepared range). The run: command i + 1 is started as soon as command i is done, and the
 * CPU converts result i (re, im) into out[2i], out[2i + 1] meanwhile, instead of polling through the LEA's
 * busy time (the LEA reads its operands and writes result i + 1 while the CPU reads result i: different
 * LEA-RAM words). The conversion: the kernels' rq_iq31 with half = 2^s, n = 15 - s, p = 2^s (1 <= s <=
 * 15, p unused at s = 15; linear.c); *maybe_sat = 1 when any part's high word is 0x7FFF or 0x8000 (it may
 * have saturated: the caller recomputes the row exactly), else 0. The parameter block is the driver's own in LEA
 * RAM, written whole by every run (LEA RAM is lost at a power cut; the prepared struct lives with its
 * caller, in .bss, lost at the same time). */
DSPLIB_DATA(cmacq_blk, 4)
static uint16_t cmacq_blk[6];

msp_status bl_lea_cmac_rq_prepare(bl_lea_cmac_rq_t *c, uint16_t length, const _q15 *srcA, uint16_t step,
                                  uint16_t count, _iq31 *result, uint16_t offset, uint16_t half, uint16_t n,
                                  int16_t p)
{
  msp_status st;
  uint16_t span;
  c->count = 0u; /* not prepared until every check passed */
  st = lea_init();
  if (st != MSP_SUCCESS) return st;
  if ((n == 0u ? half != 0x8000u : (n > 14u || p < 1 || p > 0x4000)) || (length & 1u) || length > 0x0FFFu || count == 0u ||
      count > 0x0FFFu || (step & 1u) || offset == 0u || offset > 0x0FFFu) {
    return MSP_SIZE_ERROR;
  }
  span = (uint16_t)((uint16_t)((count - 1u) * step) * 2u + (uint16_t)((uint16_t)((length - 1u) * offset) + 1u) * 4u);
  if (!lea_valid(srcA, span, 4u) || !lea_valid(result, (uint16_t)(count << 3), 4u) || span > lea_hi - lea_lo) {
    return MSP_LEA_INVALID_ADDRESS;
  }
  c->half = half;
  c->n = n;
  c->p = n == 0u ? (int16_t)INT16_MIN : p; /* s = 15: every part to BL_RQ_MAX's s = 15 store */
  c->sat = 0u;
  c->su = (uint16_t)(step >> 1);
  c->pb = lea_addr(cmacq_blk);
  c->a = lea_addr(srcA);
  c->length = length;
  c->offset = offset;
  c->r = lea_addr(result);
  c->rp = result;
  c->b_lo = lea_lo;                        /* srcB in [b_lo, b_hi], 4-byte aligned: lea_valid(srcB, span, 4) */
  c->b_hi = (uint16_t)(lea_hi - span);
  c->count = count;
  return MSP_SUCCESS;
}

BL_LEA_RAMFUNC(bl_lea_cmac_rq_run)
msp_status bl_lea_cmac_rq_run(bl_lea_cmac_rq_t *c, const _q15 *srcB, int16_t *out, uint16_t *maybe_sat)
{
  const uint16_t b = (uint16_t)(uintptr_t)srcB;
  if (c->count == 0u) return MSP_SIZE_ERROR; /* not prepared */
  if (srcB == 0 || b < c->b_lo || b > c->b_hi || (b & 3u)) return MSP_LEA_INVALID_ADDRESS;
  cmacq_blk[0] = c->length;
  cmacq_blk[1] = (uint16_t)(b >> 2);
  cmacq_blk[2] = c->r;
  cmacq_blk[3] = c->offset;
  cmacq_blk[4] = c->offset;
  cmacq_blk[5] = 0u;
  c->sat = 0u;
  {
    const int32_t *rp = c->rp;
    uint16_t *blk = cmacq_blk;
    uint16_t a = c->a, left = c->count, t = 0u, lo, hi, cnt;
    const uint16_t n = c->n;
    const int16_t p = c->p;
    /* start command 0; then per command: poll its done flag, clear the flags, stop on an error; start the
     * next one (its operand and result addresses stepped in the block: LEA is idle here); convert this
     * one's result. left: commands not yet completed. The struct's half at 0, flag at 6, step at 8 and
     * parameter block address at 10 (DSPLib.h). */
    __asm__ volatile("mov %[a], &0x0ACC\n\tmov 10(%[q]), &0x0AC8\n\tmov %[cmd], &0x0AD0\n"
                     "1:\n\tmov %[maxp], %[c]\n"
                     "2:\n\tmov &0x0AF8, %[t]\n\tbit #0x10, %[t]\n\tjnz 3f\n\tdec %[c]\n\tjnz 2b\n\tjmp 19f\n"
                     "3:\n\tmov %[t], &0x0AF8\n\tbit #0x0D, %[t]\n\tjnz 19f\n\t"
                     "dec %[left]\n\tjz 4f\n\t"
                     "add 8(%[q]), %[a]\n\tadd 8(%[q]), 2(%[blk])\n\tadd #2, 4(%[blk])\n\t"
                     "mov %[a], &0x0ACC\n\tmov 10(%[q]), &0x0AC8\n\tmov %[cmd], &0x0AD0\n"
                     "4:\n\t" BL_RQ_PART("15", "11", "12") BL_RQ_PART("16", "13", "14")
                     "tst %[left]\n\tjnz 1b\n\tjmp 19f\n"
                     BL_RQ_MAX("15", "11") BL_RQ_MIN("15", "12") BL_RQ_MAX("16", "13") BL_RQ_MIN("16", "14")
                     "19:"
                     : [a] "+r"(a), [left] "+r"(left), [t] "+r"(t), [c] "=&r"(cnt), [lo] "=&r"(lo), [hi] "=&r"(hi),
                       [rp] "+r"(rp), [out] "+r"(out)
                     : [blk] "r"(blk), [q] "r"(c), [p] "r"(p), [n] "r"(n), [cmd] "i"((CMD_CMAC << 2) | LEAITFLG_DONE),
                       [maxp] "i"(LEA_MAX_POLLS)
                     : "memory");
    if (left != 0u) return cmac_stopped(t);
  }
  *maybe_sat = c->sat;
  return MSP_SUCCESS;
}
#undef BL_RQ_MAX
#undef BL_RQ_MIN
#undef BL_RQ_PART

/* Not TI's (DSPLib.h): copy n int16 from src (FRAM, SRAM or LEA RAM) to dst with DMA channel 0 as one
 * block transfer triggered by software (SLAU367 chapter 11: DMA0TSEL = 0 / DMAREQ, DMADT = 1 block,
 * source and destination incremented, word to word). The CPU is halted while it runs: 2 MCLK cycles per
 * word instead of a CPU copy loop's ~8-19. Registers: DMACTL0 0x0500, DMA0CTL 0x0510, DMA0SA 0x0512
 * (20 bits), DMA0DA 0x0516, DMA0SZ 0x051A (SLAU367 §11.3, base address SLASE54D). */
#define DMA_REG(off) (*(volatile uint16_t *)(0x0500u + (off)))
#define DMACTL0 0x00u
#define DMA0CTL 0x10u
#define DMA0SA 0x12u
#define DMA0DA 0x16u
#define DMA0SZ 0x1Au
#define DMA_BLOCK_WORD_INC 0x1F11u /* DMADT 1 | DMADSTINCR 3 | DMASRCINCR 3 | DMAEN | DMAREQ */

#define DMA_BLOCK_WORD_FILL 0x1C11u /* the same with the source address unchanged (DMASRCINCR 0) */

static void dma_block(int16_t *dst, const int16_t *src, uint16_t n, uint16_t ctl)
{
  if (n == 0u) return;
  DMA_REG(DMACTL0) = 0u; /* DMA0TSEL = 0: DMAREQ triggers channel 0 */
  DMA_REG(DMA0SA) = (uint16_t)(uintptr_t)src;
  DMA_REG(DMA0SA + 2u) = 0u;
  DMA_REG(DMA0DA) = (uint16_t)(uintptr_t)dst;
  DMA_REG(DMA0DA + 2u) = 0u;
  DMA_REG(DMA0SZ) = n;
  DMA_REG(DMA0CTL) = ctl; /* returns when the block is done (CPU halted meanwhile) */
}

void bl_lea_dma_copy16(int16_t *dst, const int16_t *src, uint16_t n) { dma_block(dst, src, n, DMA_BLOCK_WORD_INC); }

/* n copies of `value` (from a fixed source word) */
void bl_lea_dma_fill16(int16_t *dst, int16_t value, uint16_t n)
{
  static int16_t word; /* SRAM: the DMA reads it n times */
  word = value;
  dma_block(dst, &word, n, DMA_BLOCK_WORD_FILL);
}

/* Not TI's (DSPLib.h): a prepared real MAC for many commands on the same operands and result — a direct
 * path's rows, whose input and weight vectors are restaged in the same LEA-RAM areas for every row.
 * bl_lea_mac_begin checks the operands once (as msp_mac_q15 would for max_len elements) and fills a
 * parameter block; bl_lea_mac_next(length) sets only the length and starts the command; bl_lea_mac_end
 * frees the block. ~100 CPU cycles per command instead of ~270 through msp_mac_q15. */
static volatile uint16_t *mac_blk;
static uint16_t mac_max;
static const _q15 *mac_a;

msp_status bl_lea_mac_begin(const _q15 *a, const _q15 *b, _iq31 *r, uint16_t max_len)
{
  msp_status st = lea_init();
  if (st != MSP_SUCCESS) return st;
  if (mac_blk != 0 || max_len == 0u || max_len > 0x0FFFu) return MSP_SIZE_ERROR;
  if (!lea_valid(a, (uint16_t)(max_len << 1), 4u) || !lea_valid(b, (uint16_t)(max_len << 1), 4u) ||
      !lea_valid(r, 4u, 4u)) {
    return MSP_LEA_INVALID_ADDRESS;
  }
  mac_blk = lea_block(2u);
  mac_blk[1] = lea_addr(b);
  mac_blk[2] = lea_addr(r);
  mac_blk[3] = 0u;
  mac_max = max_len;
  mac_a = a;
  return MSP_SUCCESS;
}

msp_status bl_lea_mac_next(uint16_t length)
{
  if (mac_blk == 0) return MSP_LEA_BUSY;
  if ((length & 1u) || length > mac_max) return MSP_SIZE_ERROR;
  mac_blk[0] = length;
  return lea_go(CMD_MAC, mac_a, mac_blk);
}

void bl_lea_mac_end(void)
{
  if (mac_blk != 0) {
    lea_release(2u);
    mac_blk = 0;
  }
}

/* Not TI's (DSPLib.h): real MACs of one length whose two operands change from command to command (the conv
 * direct path's resident route: one input patch against every resident weight vector).
 * bl_lea_mac_ab_prepare checks the result address and the (even) length and writes the driver's own
 * parameter block in LEA RAM {length, input2, output, 0}; bl_lea_mac_ab_begin checks both operands (inside
 * LEA RAM for `length` elements, 4-byte aligned), sets input2 and starts the command without waiting: the
 * CPU works on anything but the operands and the result meanwhile, then bl_lea_done waits (the driver's
 * invariant: LEA idle with LEAIFG clear when a command starts). The block lives in LEA RAM and the prepared
 * state in .bss: a power cut loses both together, and every kernel call prepares again. Independent of
 * bl_lea_mac_begin's block. */
DSPLIB_DATA(macab_blk, 4)
static uint16_t macab_blk[4];
static uint16_t macab_top; /* highest valid operand byte address; 0: not prepared */
static uint16_t macab_pb;  /* the block's LEA address */

msp_status bl_lea_mac_ab_prepare(_iq31 *r, uint16_t length)
{
  msp_status st = lea_init();
  macab_top = 0u;
  if (st != MSP_SUCCESS) return st;
  if (length == 0u || (length & 1u) || length > 0x0FFFu || (uint16_t)(length << 1) > (uint16_t)(lea_hi - lea_lo)) {
    return MSP_SIZE_ERROR;
  }
  if (!lea_valid(r, 4u, 4u)) return MSP_LEA_INVALID_ADDRESS;
  macab_blk[0] = length;
  macab_blk[2] = lea_addr(r);
  macab_blk[3] = 0u;
  macab_pb = lea_addr(macab_blk);
  macab_top = (uint16_t)(lea_hi - (uint16_t)(length << 1));
  return MSP_SUCCESS;
}

msp_status bl_lea_mac_ab_begin(const _q15 *a, const _q15 *b)
{
  const uint16_t ua = (uint16_t)(uintptr_t)a, ub = (uint16_t)(uintptr_t)b, top = macab_top;
  if (ua < lea_lo || ub < lea_lo || ua > top || ub > top || ((ua | ub) & 3u)) {
    return top == 0u ? MSP_LEA_BUSY : MSP_LEA_INVALID_ADDRESS;
  }
  macab_blk[1] = (uint16_t)(ub >> 2);
  LEA_REG(LEAPMS0) = (uint16_t)(ua >> 2);
  LEA_REG(LEAPMS1) = macab_pb;
  LEA_REG(LEAPMCB) = (uint16_t)((uint16_t)(CMD_MAC << 2) | LEAITFLG_DONE);
  return MSP_SUCCESS;
}

/* Not TI's (DSPLib.h): one operand (a conv patch) against `count` prepared vectors, each result
 * requantised to int16 while the next MAC runs (the real-MAC analogue of bl_lea_cmac_rq_run), for MACs of
 * the length bl_lea_mac_ab_prepare set. Records rec[3 j .. 3 j + 2] = {LEA address of vector j, low and high
 * word of 2 b_j + 2^s} (b_j the channel's bias, |b_j| < 2^28); result j = MAC j (count int32 in LEA RAM, kept
 * for the caller); out[j * ostep bytes] = the kernels' rq_iq31(result j + 2 b_j) (shift s, 1 <= s <= 15).
 * A result outside |r| < 2^30 (it may have saturated, or 2 (sum + b) + 2^s could overflow) sets *flag and
 * its output is left to the caller (which recomputes the call's outputs from the results). prepare checks
 * the operand, every vector and the result area once; run trusts them (the records are the caller's and
 * unchanged between the two). */
msp_status bl_lea_mac_rq_prepare(bl_lea_mac_rq_t *q, const _q15 *a, const uint16_t *rec, uint16_t count,
                                 _iq31 *result, uint16_t ostep, int16_t s)
{
  const uint16_t ua = (uint16_t)(uintptr_t)a, top = macab_top;
  uint16_t j;
  q->count = 0u;
  if (top == 0u) return MSP_LEA_BUSY;
  if (s < 1 || s > 15 || count == 0u || count > 0x0FFFu) return MSP_SIZE_ERROR;
  if (ua < lea_lo || ua > top || (ua & 3u) || !lea_valid(result, (uint16_t)(count << 2), 4u)) {
    return MSP_LEA_INVALID_ADDRESS;
  }
  for (j = 0u; j < count; j++) {
    const uint16_t b = rec[3u * j];
    if (b < (uint16_t)(lea_lo >> 2) || b > (uint16_t)(top >> 2)) return MSP_LEA_INVALID_ADDRESS;
  }
  q->a = (uint16_t)(ua >> 2);
  q->pb = macab_pb;
  q->ostep = ostep;
  q->n = (uint16_t)(15 - s);
  q->p = s <= 14 ? (int16_t)(1 << s) : 0;
  q->flag = 0u;
  q->r = lea_addr(result);
  q->rec = rec;
  q->rp = result;
  q->count = count;
  return MSP_SUCCESS;
}

msp_status bl_lea_mac_rq_run(bl_lea_mac_rq_t *q, int16_t *out)
{
  if (q->count == 0u) return MSP_SIZE_ERROR; /* not prepared */
  q->flag = 0u;
  macab_blk[2] = q->r;
  {
    const uint16_t *rec = q->rec;
    const int32_t *rp = q->rp;
    uint16_t *blk = macab_blk;
    uint16_t left = q->count, t = 0u, c, lo, hi;
    /* start MAC 0; per MAC: poll its done flag (at most LEA_MAX_POLLS polls), clear the flags, stop on an
     * error; start the next (its vector and result addresses in the block: LEA is idle here); convert this
     * one's result: r + (2 b + 2^s) from the record, then as rq_iq31 (n = 0: the high word). The struct's a
     * at 0, pb 2, ostep 4, n 6, p 8, flag 10 (DSPLib.h). */
    __asm__ volatile("mov @%[rec]+, %[t]\n\tmov %[t], 2(%[blk])\n\tmov 0(%[q]), &0x0ACC\n\tmov 2(%[q]), &0x0AC8\n\tmov %[cmd], &0x0AD0\n"
                     "1:\n\tmov %[maxp], %[c]\n"
                     "2:\n\tmov &0x0AF8, %[t]\n\tbit #0x10, %[t]\n\tjnz 3f\n\tdec %[c]\n\tjnz 2b\n\tjmp 19f\n"
                     "3:\n\tmov %[t], &0x0AF8\n\tbit #0x0D, %[t]\n\tjnz 19f\n\t"
                     "dec %[left]\n\tjz 4f\n\t"
                     "mov 4(%[rec]), 2(%[blk])\n\tadd #1, 4(%[blk])\n\t"
                     "mov 0(%[q]), &0x0ACC\n\tmov 2(%[q]), &0x0AC8\n\tmov %[cmd], &0x0AD0\n"
                     "4:\n\tmov @%[rp]+, %[lo]\n\tmov @%[rp]+, %[hi]\n\t"
                     "mov %[hi], %[t]\n\tadd #0x4000, %[t]\n\tjn 13f\n\t"
                     "add @%[rec]+, %[lo]\n\taddc @%[rec]+, %[hi]\n\tadd #2, %[rec]\n\t"
                     "mov 6(%[q]), %[c]\n\ttst %[c]\n\tjz 5f\n\t"
                     "cmp 8(%[q]), %[hi]\n\tjge 11f\n\t"
                     "mov %[hi], %[t]\n\tadd 8(%[q]), %[t]\n\tjn 12f\n"
                     "6:\n\tadd %[lo], %[lo]\n\taddc %[hi], %[hi]\n\tdec %[c]\n\tjnz 6b\n"
                     "5:\n\tmov %[hi], 0(%[out])\n"
                     "7:\n\tadd 4(%[q]), %[out]\n\t"
                     "tst %[left]\n\tjnz 1b\n\tjmp 19f\n"
                     "11:\n\tmov #0x7FFF, %[hi]\n\tjmp 5b\n"
                     "12:\n\tmov #0x8000, %[hi]\n\tjmp 5b\n"
                     "13:\n\tmov #1, 10(%[q])\n\tadd #6, %[rec]\n\tjmp 7b\n"
                     "19:"
                     : [left] "+r"(left), [t] "+r"(t), [c] "=&r"(c), [lo] "=&r"(lo), [hi] "=&r"(hi), [rp] "+r"(rp),
                       [out] "+r"(out), [rec] "+r"(rec)
                     : [blk] "r"(blk), [q] "r"(q), [cmd] "i"((CMD_MAC << 2) | LEAITFLG_DONE), [maxp] "i"(LEA_MAX_POLLS)
                     : "memory");
    macab_blk[2] = q->r; /* bl_lea_mac_ab_begin's result address again */
    if (left != 0u) return cmac_stopped(t);
  }
  return MSP_SUCCESS;
}

msp_status msp_mac_q15(const msp_mac_q15_params *params, const _q15 *srcA, const _q15 *srcB, _iq31 *result)
{
  if (params == 0) return MSP_SIZE_ERROR;
  return mac_any(CMD_MAC, params->length, srcA, srcB, result);
}

msp_status msp_cmplx_mac_q15(const msp_cmplx_mac_q15_params *params, const _q15 *srcA, const _q15 *srcB,
                             _iq31 *result)
{
  if (params == 0) return MSP_SIZE_ERROR;
  return mac_any(CMD_CMAC, params->length, srcA, srcB, result);
}

/* Bit reversal then the fixed-scaling FFT, both on LEA. */
static msp_status lea_fft(const msp_cmplx_fft_q15_params *params, int16_t *src)
{
  uint16_t n, lg = 0u, p, root = 1u;
  volatile uint16_t *blk;
  msp_status st = MSP_SUCCESS;
  if (params == 0 || src == 0) return MSP_LEA_INVALID_ADDRESS;
  n = params->length;
  if (n < 16u || n > 512u || (n & (uint16_t)(n - 1u)) != 0u) return MSP_SIZE_ERROR;
  st = lea_init();
  if (st != MSP_SUCCESS) return st;
  if (!lea_valid(src, (uint16_t)(4u * n), (uint16_t)(4u * n))) return MSP_LEA_INVALID_ADDRESS;
  /* log2 n and 2^floor(lg / 2) by doubling: a variable shift is a loop or helper call on the MSP430 */
  for (p = 1u; p < n; p = (uint16_t)(p << 1)) {
    lg++;
    if ((lg & 1u) == 0u) root = (uint16_t)(root << 1);
  }
  blk = lea_block(1u); /* one block for both commands: {sqrtVectorSize, -}, then {vectorSizeBy2, log2Size} */
  if (params->bitReverse) {
    blk[0] = root; /* sqrt(N) (even log2) or sqrt(N/2) (odd) */
    blk[1] = 0u;
    st = lea_go((lg & 1u) ? CMD_BREV_ODD : CMD_BREV_EVEN, src, blk);
  }
  if (st == MSP_SUCCESS) {
    blk[0] = (uint16_t)(n / 2u);
    blk[1] = lg;
    st = lea_go(CMD_FFT, src, blk);
  }
  lea_release(1u);
  return st;
}

/* Not TI's (DSPLib.h): the FFT command alone on data the caller already placed in bit-reversed order (TI's
 * msp_cmplx_fft_fixed_q15 with bitReverse = false), its parameter block {n/2, log2 n} prepared once per n in
 * LEA RAM. The block and the n it holds are lost together on a reset (LEA RAM / .bss), so the first call
 * after one prepares it again. */
DSPLIB_DATA(fftq_blk, 4)
static uint16_t fftq_blk[2];
static uint16_t fftq_n, fftq_bytes; /* n prepared (0: none) and 4n, the data's size and alignment */
/* The last two buffers found valid for n (0: none): the FFT path alternates between two (its input
 * transforms) or reuses one (its block rows), so the LEA-RAM bounds and alignment test runs once per buffer
 * and n, not once a command (~10 of the ~75 cycles a start cost). */
static const int16_t *fftq_ok0, *fftq_ok1;

/* bl_lea_fft_nobrev_begin: its checks, then the command started without waiting: the caller may work on
 * the CPU (on anything but this buffer) while LEA transforms, then must call bl_lea_done before any other
 * LEA command (the driver's invariant: LEA idle with LEAIFG clear when a command starts). Hot code
 * (bl_ramfunc.h): the FFT path runs it once per input block and block row (29 commands an MLP inference),
 * ~580 FRAM wait states an inference from FRAM. */
BL_LEA_RAMFUNC(bl_lea_fft_nobrev_begin)
msp_status bl_lea_fft_nobrev_begin(int16_t *src, uint16_t n)
{
  if (n != fftq_n) {
    uint16_t lg = 0u, p;
    const msp_status st = lea_init();
    if (st != MSP_SUCCESS) return st;
    if (n < 16u || n > 512u || (n & (uint16_t)(n - 1u)) != 0u) return MSP_SIZE_ERROR;
    for (p = 1u; p < n; p = (uint16_t)(p << 1)) lg++;
    fftq_blk[0] = (uint16_t)(n >> 1);
    fftq_blk[1] = lg;
    fftq_n = n;
    fftq_bytes = (uint16_t)(n << 2);
    fftq_ok0 = 0;
    fftq_ok1 = 0;
  }
  if (src != fftq_ok0 && src != fftq_ok1) {
    if (!lea_valid(src, fftq_bytes, fftq_bytes)) return MSP_LEA_INVALID_ADDRESS;
    fftq_ok1 = fftq_ok0;
    fftq_ok0 = src;
  }
  LEA_REG(LEAPMS0) = lea_addr(src);
  LEA_REG(LEAPMS1) = lea_addr(fftq_blk);
  LEA_REG(LEAPMCB) = (uint16_t)((uint16_t)(CMD_FFT << 2) | LEAITFLG_DONE);
  return MSP_SUCCESS;
}

/* The end of a command started by bl_lea_fft_nobrev_begin: wait for its done flag, clear the flags, map
 * the error flags (lea_wait). */
BL_LEA_RAMFUNC(bl_lea_done)
msp_status bl_lea_done(void) { return lea_wait(); }

msp_status bl_lea_fft_nobrev(int16_t *src, uint16_t n)
{
  const msp_status st = bl_lea_fft_nobrev_begin(src, n);
  return st != MSP_SUCCESS ? st : bl_lea_done();
}

msp_status msp_cmplx_fft_fixed_q15(const msp_cmplx_fft_q15_params *params, int16_t *src)
{
  return lea_fft(params, src);
}

static void swap_re_im(int16_t *z, uint16_t n)
{
  uint16_t i;
  for (i = 0u; i < n; i++) {
    int16_t t = z[2u * i];
    z[2u * i] = z[2u * i + 1u];
    z[2u * i + 1u] = t;
  }
}

msp_status msp_cmplx_ifft_fixed_q15(const msp_cmplx_fft_q15_params *params, int16_t *src)
{
  msp_status st;
  if (params == 0 || src == 0) return MSP_LEA_INVALID_ADDRESS;
  if (params->length < 16u || params->length > 512u) return MSP_SIZE_ERROR;
  st = lea_init();
  if (st != MSP_SUCCESS) return st;
  if (!lea_valid(src, (uint16_t)(4u * params->length), (uint16_t)(4u * params->length))) {
    return MSP_LEA_INVALID_ADDRESS;
  }
  swap_re_im(src, params->length);
  st = lea_fft(params, src);
  swap_re_im(src, params->length);
  return st;
}
