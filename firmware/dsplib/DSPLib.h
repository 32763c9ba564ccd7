/* DSPLib.h — the part of TI's MSP DSP Library (DSPLib) API that the batteryless `lea` kernel backend uses.
 *
 * Written for this project from TI's published API description (MSP DSP Library user's guide / API
 * reference, MSP430Ware DSPLib 1.30: "Low Energy Accelerator (LEA)", "Transform", "Real Vectors",
 * "Complex Vectors"). Names, types, parameter structures and macros follow TI's spelling so that the
 * kernels compile unchanged against TI's library; the declarations, comments and status values are ours.
 * TI's DSPLib is not installable here: on the host board these calls are served by the software model in
 * firmware/dsplib/model/; in MSP430 images by our LEA driver, firmware/kernels/lea/msp430/bl_lea_driver.c.
 *
 * Semantics assumed (and implemented by the model) — see docs/kernels.md, "lea backend":
 *   msp_cmplx_fft_fixed_q15   in place, radix 2, bit reversal first when params->bitReverse, a 1/2 scaling
 *                             in every stage: y = fft(x) / N (TI: "y = fft(x) ./ N"). Documented by TI.
 *                             Butterfly rounding (twiddle product rounded half up at bit 15, (a +- T) >> 1
 *                             floor, saturation) is NOT documented by TI: the model follows our numeric
 *                             spec (docs/numeric-spec.md, "Fixed-point FFT").
 *   msp_cmplx_ifft_fixed_q15  the direct inverse with fixed scaling, y = ifft(x) (numpy's 1/N scale); the
 *                             exact inverse scaling/rounding on LEA is UNCONFIRMED (REFERENCE.md): the model
 *                             uses the spec's inverse (conjugate twiddles, 1/2 per stage).
 *   both FFTs                 length a power of two; the model accepts 16 .. 512 (TI's twiddle tables start
 *                             at 16; a 1024-point complex Q15 FFT needs all 4 KB of the FR5994's LEA RAM)
 *                             else MSP_SIZE_ERROR. Data in LEA RAM aligned to MSP_ALIGN_CMPLX_FFT_Q15(N)
 *                             = 4N bytes (TI's documented rule) else MSP_LEA_INVALID_ADDRESS.
 *                             params->twiddleTable is ignored (LEA reads its twiddles from ROM; TI: "when
 *                             using LEA this can be a NULL pointer").
 *   msp_mac_q15               *result = sum(srcA .* srcB) as IQ31, i.e. 2 * sum(a*b) (Q15 x Q15 = Q30,
 *                             shifted to Q31 as TI's C fallback does). Overflow beyond int32 is not
 *                             documented for LEA: the model saturates (TI's MPY32 path sets MPYSAT); the
 *                             kernels never reach it (they bound every call's sum, docs/kernels.md).
 *                             Length even (TI: "must be a multiple of two") else MSP_SIZE_ERROR; operands
 *                             4-byte aligned in LEA RAM else MSP_LEA_INVALID_ADDRESS.
 *   msp_cmplx_mac_q15         result[0] + i*result[1] = 2 * sum(srcA .* srcB) over complex (re, im) pairs,
 *                             each part saturated to int32 as msp_mac_q15; same length/alignment rules.
 */
#if defined(BL_DSPLIB_TI)
/* Built against TI's DSPLib (CMake -DDSPLIB_DIR): TI's header, and the project's switches set for it: its
 * inverse FFT is not the swap route the lea kernels can check (they run the ref inverse on the CPU), and
 * there is no batched complex MAC. */
#include <DSPLib.h>
#define MSP_IFFT_IS_SPEC 0
#define MSP_IFFT_SWAP_ROUTE 0
#define MSP_IFFT_SAFE_L1 0
#define MSP_IFFT_SAFE_MAG 0
#define MSP_HAVE_CMAC_MANY 0
#else
#ifndef DSPLIB_H
#define DSPLIB_H

#include <stdbool.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* ---- types (TI: DSPLib_types.h) ---------------------------------------------------------------------- */
typedef int16_t _q15;  /* signed Q15 fixed point */
typedef int32_t _iq31; /* signed Q31 fixed point */

typedef enum {
  MSP_SUCCESS = 0,                  /* the operation completed */
  MSP_SIZE_ERROR = 1,               /* a length is invalid (odd, not a power of two, out of range) */
  MSP_SHIFT_SIZE_ERROR = 2,         /* a shift is out of range (unused here) */
  MSP_TABLE_SIZE_ERROR = 3,         /* a twiddle table is too short (non-LEA C path; unused here) */
  MSP_LEA_BUSY = 4,                 /* LEA is in use */
  MSP_LEA_INVALID_ADDRESS = 5,      /* an operand is outside LEA RAM or not aligned as required */
  MSP_LEA_OUT_OF_RANGE = 6,         /* LEA reported an out-of-range access */
  MSP_LEA_SCALAR_INCONSISTENCY = 7, /* LEA reported inconsistent scalar data */
  MSP_LEA_COMMAND_OVERFLOW = 8,     /* LEA reported a command overflow */
  MSP_LEA_INCORRECT_REVISION = 9    /* the LEA revision is not supported */
} msp_status;

/* ---- support (TI: DSPLib_support.h) ------------------------------------------------------------------ */
#define CMPLX_INCREMENT (2)
#define CMPLX_REAL(ptr) ((ptr)[0])
#define CMPLX_IMAG(ptr) ((ptr)[1])

/* DSPLIB_DATA(var, align): place the declaration that follows in LEA RAM with `align`-byte alignment.
 * Used as TI shows it, on the line before the declaration:
 *     DSPLIB_DATA(buf, MSP_ALIGN_CMPLX_FFT_Q15(64))
 *     _q15 buf[2 * 64];
 * MSP430: section .lea, which the board's linker script (boards/<board>/linker.ld) places in the lea_ram
 * region generated from board.toml. Host: section bl_learam; the model treats exactly that section as LEA
 * RAM (the linker provides __start_bl_learam / __stop_bl_learam). */
#if defined(__MSP430__)
#define DSPLIB_LEA_SECTION ".lea"
#else
#define DSPLIB_LEA_SECTION "bl_learam"
#endif
#define DSPLIB_DATA(var, align) __attribute__((section(DSPLIB_LEA_SECTION), aligned(align)))

/* ---- transform (TI: DSPLib_transform.h) -------------------------------------------------------------- */
#define MSP_ALIGN_FFT_Q15(n) ((n) * 2)       /* real Q15 FFT: alignment 2n bytes */
#define MSP_ALIGN_CMPLX_FFT_Q15(n) ((n) * 4) /* complex Q15 FFT: alignment 4n bytes */

typedef struct msp_cmplx_fft_q15_params {
  uint16_t length;          /* number of complex samples, a power of two */
  bool bitReverse;          /* bit-reverse the input first (TI: mandatory unless the data already is) */
  const _q15 *twiddleTable; /* not used with LEA (may be NULL) */
} msp_cmplx_fft_q15_params;

msp_status msp_cmplx_fft_fixed_q15(const msp_cmplx_fft_q15_params *params, int16_t *src);
msp_status msp_cmplx_ifft_fixed_q15(const msp_cmplx_fft_q15_params *params, int16_t *src);

/* Not TI's: 1 when msp_cmplx_ifft_fixed_q15 is the numeric spec's inverse bit for bit (the host model). The
 * MSP430 LEA driver's inverse (a LEA forward FFT between real/imaginary swaps, LEA has no inverse command)
 * multiplies by exactly 1 at the t = N/4 butterflies where the spec uses 32767/32768. The two agree whenever
 * every component entering such a butterfly lies in [-16383, 16383]; with 1/2 scaling per stage no complex
 * magnitude grows beyond the input's largest plus about one LSB per stage, so the lea kernels use the driver's
 * inverse when every input has |re| + |im| <= MSP_IFFT_SAFE_L1 and the ref FFT on the CPU otherwise
 * (firmware/kernels/lea/fft_q15.c). */
#define MSP_IFFT_SAFE_L1 16320
#define MSP_IFFT_SAFE_MAG 16368 /* complex magnitude bound (firmware/kernels/lea/fft_q15.c, ifft_safe) */
#if defined(__MSP430__)
#define MSP_IFFT_IS_SPEC 0
#else
#define MSP_IFFT_IS_SPEC 1
#endif
#define MSP_IFFT_SWAP_ROUTE 1 /* our driver's inverse is swap(FFT(swap(x))): ifft_safe's bound holds for it */

/* ---- vectors (TI: DSPLib_vector.h) ------------------------------------------------------------------- */
typedef struct msp_mac_q15_params {
  uint16_t length; /* number of elements, a multiple of two */
} msp_mac_q15_params;

typedef struct msp_cmplx_mac_q15_params {
  uint16_t length; /* number of complex elements, a multiple of two */
} msp_cmplx_mac_q15_params;

msp_status msp_mac_q15(const msp_mac_q15_params *params, const _q15 *srcA, const _q15 *srcB, _iq31 *result);
msp_status msp_cmplx_mac_q15(const msp_cmplx_mac_q15_params *params, const _q15 *srcA, const _q15 *srcB,
                             _iq31 *result);

/* Not TI's: `count` complex MACs (msp_cmplx_mac_q15 semantics) of `length` elements each, the i-th on
 * srcA + i * step and srcB + i * step (int16 offsets) into result + 2 * i, consecutive elements `offset`
 * complex values apart (1: contiguous), with one LEA parameter block set up once (the per-command CPU cost
 * is most of a short MAC). And bl_lea_dma_copy16 / bl_lea_dma_fill16: n int16 copied (from FRAM too; LEA
 * cannot read FRAM) or set by the DMA controller; bl_lea_mac_begin / _next / _end: one real MAC's operands
 * checked and its parameter block filled once for many commands; bl_lea_mac_ab_prepare / _begin: real MACs of
 * one length on operands that change per command, started without waiting (bl_lea_done waits); bl_lea_fft_nobrev: the FFT command alone on
 * data already in bit-reversed order, its parameter block prepared once per length (_begin: started
 * without waiting, bl_lea_done waits; the CPU works meanwhile); bl_lea_cmac_rq_prepare / _run:
 * bl_lea_cmac_many with each result requantised to int16 by the CPU while the next command runs, checked
 * and prepared once for many runs that differ only in srcB (bl_lea_driver.c).
 * Provided by our MSP430 LEA driver only (MSP_HAVE_CMAC_MANY); elsewhere the lea kernels loop over
 * msp_cmplx_mac_q15 and copy on the CPU. */
#if defined(__MSP430__)
#define MSP_HAVE_CMAC_MANY 1
msp_status bl_lea_cmac_many(uint16_t length, const _q15 *srcA, const _q15 *srcB, uint16_t step, uint16_t count,
                            _iq31 *result, uint16_t offset);
/* bl_lea_cmac_rq_prepare / _run's prepared state (the run's assembly loop reads half, sat, su and pb at
 * byte offsets 0, 6, 8 and 10: keep the order). */
typedef struct {
  uint16_t half, n;
  int16_t p;
  uint16_t sat, su, pb;              /* saturation flag, operand step in LEA words, parameter block */
  uint16_t a, count, length, offset; /* srcA's LEA address, commands, elements, element offset */
  uint16_t r, b_lo, b_hi;            /* result's LEA address; srcB's valid range */
  const _iq31 *rp;                   /* result */
} bl_lea_cmac_rq_t;
msp_status bl_lea_cmac_rq_prepare(bl_lea_cmac_rq_t *c, uint16_t length, const _q15 *srcA, uint16_t step,
                                  uint16_t count, _iq31 *result, uint16_t offset, uint16_t half, uint16_t n,
                                  int16_t p);
msp_status bl_lea_cmac_rq_run(bl_lea_cmac_rq_t *c, const _q15 *srcB, int16_t *out, uint16_t *maybe_sat);
void bl_lea_dma_copy16(int16_t *dst, const int16_t *src, uint16_t n);
void bl_lea_dma_fill16(int16_t *dst, int16_t value, uint16_t n);
msp_status bl_lea_mac_begin(const _q15 *a, const _q15 *b, _iq31 *r, uint16_t max_len);
msp_status bl_lea_mac_next(uint16_t length);
void bl_lea_mac_end(void);
msp_status bl_lea_mac_ab_prepare(_iq31 *r, uint16_t length);
msp_status bl_lea_mac_ab_begin(const _q15 *a, const _q15 *b);
/* bl_lea_mac_rq_prepare / _run's prepared state (the run's assembly loop reads a, pb, ostep, n, p and
 * writes flag at byte offsets 0 .. 10: keep the order). */
typedef struct {
  uint16_t a, pb, ostep, n; /* operand's and parameter block's LEA addresses, output step (bytes), shifts */
  int16_t p;                /* saturation bound 2^s (s <= 14) */
  uint16_t flag;            /* set by a run when a result was outside the fast range */
  uint16_t r, count;        /* result's LEA address, commands */
  const uint16_t *rec;      /* per vector {LEA address, 2 b + 2^s low, high} */
  const _iq31 *rp;          /* results */
} bl_lea_mac_rq_t;
msp_status bl_lea_mac_rq_prepare(bl_lea_mac_rq_t *q, const _q15 *a, const uint16_t *rec, uint16_t count,
                                 _iq31 *result, uint16_t ostep, int16_t s);
msp_status bl_lea_mac_rq_run(bl_lea_mac_rq_t *q, int16_t *out);
msp_status bl_lea_fft_nobrev(int16_t *src, uint16_t n);
msp_status bl_lea_fft_nobrev_begin(int16_t *src, uint16_t n);
msp_status bl_lea_done(void);
#else
#define MSP_HAVE_CMAC_MANY 0
#endif

#ifdef __cplusplus
}
#endif

#endif /* DSPLIB_H */
#endif /* BL_DSPLIB_TI */
