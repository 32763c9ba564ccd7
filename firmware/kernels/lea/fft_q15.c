/* lea backend: bl_fft_q15 through DSPLib's msp_cmplx_fft_fixed_q15 / msp_cmplx_ifft_fixed_q15 (1/2 scaling
 * per stage: forward DFT/k, inverse IDFT — the spec's transform), plus the LEA-RAM scratch area and the
 * MAC flush helpers the other lea files share. Block lengths LEA does not take (k < 16, or above
 * BL_LEA_FFT_MAX) run the FFT on the CPU: the portable ref FFT (../ref/fft_q15.c compiled here under another
 * name, not copied) on the host, an MPY32 version of the same transform on the MSP430 (below). */
#include "bl_kernels.h"
#include "bl_lea_internal.h"

/* The ref transform, renamed (its file is included, not copied). */
#define bl_fft_q15 bl_lea_ref_fft_q15
bl_status bl_lea_ref_fft_q15(int16_t *z, const bl_fft_cfg *cfg, bool inverse);
#include "../ref/fft_q15.c"
#undef bl_fft_q15

#if defined(__MSP430__)
/* MSP430: the spec's FFT on the CPU for what LEA does not take exactly — the inverse FFTs whose inputs fail
 * the swap route's bound (kernels.md) and block lengths below 16 (the CNN's k = 8). The same transform as
 * ../ref/fft_q15.c bit for bit (bit reversal; radix-2 stages; T = round_half_up(W * b / 2^15), exact b at
 * twiddle index 0; (a ± T) / 2 floored and saturated; the inverse's twiddle sat16(-q(-sin))), but the
 * twiddle products summed in the MPY32 (SLAU367 MPY32 chapter: RESLO/RESHI 0x04CA/0x04CC preloaded with the
 * rounding half, MACS 0x04C6 / OP2 0x04C8 adding each signed product) and the 32-bit steps as word
 * operations (inline assembly below): the ref code, compiled for a 16-bit CPU, spends ~460 MCLK cycles per
 * butterfly in 32-bit helpers and register spills (a 16-point inverse ~15 k cycles). */
#define MPY_MACS (*(volatile int16_t *)0x04C6u)
#define MPY_OP2 (*(volatile int16_t *)0x04C8u)
#define MPY_RESLO (*(volatile uint16_t *)0x04CAu)
#define MPY_RESHI (*(volatile uint16_t *)0x04CCu)

/* t = floor(RES / 2^15) for the MPY32's 32-bit result (|RES| < 2^31, so t fits 17 bits): RESHI:RESLO
 * shifted left once gives t's low word in RESHI's place and its sign in the carry; t's high word is that
 * sign extended. */
static inline void res_q15(uint16_t *tlo, uint16_t *thi) {
  uint16_t lo, hi, sg;
  __asm__ volatile("mov &0x04CA, %0\n\tmov &0x04CC, %1\n\trla %0\n\trlc %1\n\tsubc %2, %2\n\tinv %2"
                   : "=&r"(lo), "=&r"(hi), "=&r"(sg)
                   :
                   : "memory");
  (void)lo;
  *tlo = hi;
  *thi = sg;
}

/* sat16(floor((a + t) / 2)) and sat16(floor((a - t) / 2)) for int16 a and t = thi:tlo (17 bits), in word
 * operations: a sign-extended (RLA, SUBC, INV), the 32-bit sum or difference (ADD/ADDC, SUB/SUBC), halved
 * (RRA/RRC), kept when its high word is the low word's sign extension, else saturated by that sign. */
#define BL_BFLY_OUT(op, opc)                                                                                     \
  "mov %0, %1\n\trla %1\n\tsubc %1, %1\n\tinv %1\n\t" op " %3, %0\n\t" opc " %4, %1\n\trra %1\n\trrc %0\n\t"  \
  "mov %0, %2\n\trla %2\n\tsubc %2, %2\n\tinv %2\n\tcmp %2, %1\n\tjeq 1f\n\tmov #0x7FFF, %0\n\ttst %1\n\t"  \
  "jge 1f\n\tmov #0x8000, %0\n1:"
static inline int16_t add_half_sat(int16_t a, uint16_t tlo, uint16_t thi) {
  uint16_t lo = (uint16_t)a, hi, x;
  __asm__(BL_BFLY_OUT("add", "addc") : "+r"(lo), "=&r"(hi), "=&r"(x) : "r"(tlo), "r"(thi));
  return (int16_t)lo;
}
static inline int16_t sub_half_sat(int16_t a, uint16_t tlo, uint16_t thi) {
  uint16_t lo = (uint16_t)a, hi, x;
  __asm__(BL_BFLY_OUT("sub", "subc") : "+r"(lo), "=&r"(hi), "=&r"(x) : "r"(tlo), "r"(thi));
  return (int16_t)lo;
}

static bl_status cpu_fft_q15(int16_t *z, const bl_fft_cfg *cfg, bool inverse) {
  const uint16_t k = cfg->k;
  uint16_t r = 0;
  for (uint16_t i = 0; i < k; i++) { /* bit reversal, r = bitrev(i) by a reversed-carry increment */
    if (r > i) {
      int16_t *x = z + 2u * i, *y = z + 2u * r;
      const int16_t t0 = x[0], t1 = x[1];
      x[0] = y[0];
      x[1] = y[1];
      y[0] = t0;
      y[1] = t1;
    }
    uint16_t bit = (uint16_t)(k >> 1);
    while (r & bit) {
      r = (uint16_t)(r ^ bit);
      bit = (uint16_t)(bit >> 1);
    }
    r = (uint16_t)(r | bit);
  }
  uint16_t w_step = cfg->tw_k; /* 2 * tw_k / m int16 per butterfly: tw_k at half = 1, halved per stage */
  for (uint16_t half = 1; half < k; half = (uint16_t)(half << 1), w_step = (uint16_t)(w_step >> 1)) {
    for (uint16_t g = 0; g < k; g = (uint16_t)(g + 2u * half)) {
      int16_t *pa = z + 2u * g, *pb = pa + 2u * half;
      const int16_t *w = cfg->tw;
      for (uint16_t j = 0; j < half; j++, pa += 2, pb += 2, w += w_step) {
        const int16_t br = pb[0], bi = pb[1];
        uint16_t trl = (uint16_t)br, trh = (br < 0) ? 0xFFFFu : 0u; /* j = 0: W = 1, T = b exact */
        uint16_t til = (uint16_t)bi, tih = (bi < 0) ? 0xFFFFu : 0u;
        if (j != 0) {
          const int16_t wr = w[0], wi = inverse ? (w[1] == INT16_MIN ? INT16_MAX : (int16_t)-w[1]) : w[1];
          /* Tr = floor((wr*br - wi*bi + 2^14) / 2^15): -wi fits int16 unless wi = -32768, then
           * 32768 * bi = 2 * (16384 * bi) */
          MPY_RESLO = 16384u;
          MPY_RESHI = 0u;
          MPY_MACS = wr;
          MPY_OP2 = br;
          if (wi != INT16_MIN) {
            MPY_MACS = (int16_t)-wi;
            MPY_OP2 = bi;
          } else {
            MPY_MACS = 16384;
            MPY_OP2 = bi;
            MPY_MACS = 16384;
            MPY_OP2 = bi;
          }
          res_q15(&trl, &trh);
          MPY_RESLO = 16384u; /* Ti = floor((wr*bi + wi*br + 2^14) / 2^15) */
          MPY_RESHI = 0u;
          MPY_MACS = wr;
          MPY_OP2 = bi;
          MPY_MACS = wi;
          MPY_OP2 = br;
          res_q15(&til, &tih);
        }
        const int16_t ar = pa[0], ai = pa[1];
        pa[0] = add_half_sat(ar, trl, trh);
        pa[1] = add_half_sat(ai, til, tih);
        pb[0] = sub_half_sat(ar, trl, trh);
        pb[1] = sub_half_sat(ai, til, tih);
      }
    }
  }
  return BL_OK;
}

/* The argument checks of the ref transform, then the MSP430 loop. */
static bl_status lea_cpu_fft(int16_t *z, const bl_fft_cfg *cfg, bool inverse) {
  if (z == 0 || cfg == 0 || cfg->tw == 0) return BL_ERR_ARG;
  if (!is_pow2(cfg->k) || !is_pow2(cfg->tw_k) || cfg->tw_k < cfg->k) return BL_ERR_FFT_SIZE;
  return cpu_fft_q15(z, cfg, inverse);
}
#define bl_lea_ref_fft_q15 lea_cpu_fft /* below: every CPU transform of this backend */
#endif

/* ---- LEA RAM scratch (DSPLIB_DATA: section .lea on MSP430, the board's lea_ram region) ---------------- */
DSPLIB_DATA(bl_lea_fft_buf, MSP_ALIGN_CMPLX_FFT_Q15(BL_LEA_FFT_MAX))
int16_t bl_lea_fft_buf[2u * BL_LEA_FFT_MAX];
DSPLIB_DATA(bl_lea_xt, 4)
int16_t bl_lea_xt[BL_LEA_AREA];
DSPLIB_DATA(bl_lea_st, 4)
int16_t bl_lea_st[BL_LEA_AREA];
DSPLIB_DATA(bl_lea_acc, 4)
uint32_t bl_lea_acc[2u * BL_LEA_BINS_MAX];
DSPLIB_DATA(bl_lea_result, 4)
int32_t bl_lea_result[2u * BL_LEA_BINS_MAX];

const uint32_t bl_lea_pow2[32] = {
    1ul,         2ul,         4ul,         8ul,          16ul,         32ul,         64ul,         128ul,
    256ul,       512ul,       1024ul,      2048ul,       4096ul,       8192ul,       16384ul,      32768ul,
    65536ul,     131072ul,    262144ul,    524288ul,     1048576ul,    2097152ul,    4194304ul,    8388608ul,
    16777216ul,  33554432ul,  67108864ul,  134217728ul,  268435456ul,  536870912ul,  1073741824ul, 2147483648ul};

static bl_status from_msp(msp_status st) { return st == MSP_SUCCESS ? BL_OK : BL_ERR_ARG; }

/* 1 when the platform's inverse FFT equals the spec's on these k inputs (DSPLib.h, MSP_IFFT_IS_SPEC): every
 * component entering a t = k/4 butterfly must lie in [-16384, 16383]. Each butterfly's output magnitude is
 * at most its inputs' largest plus 1.5 LSB (halving, twiddle rounding, |W| <= 1 + 2^-15), so over at most
 * 5 stages (k <= 64) inputs of magnitude <= MSP_IFFT_SAFE_MAG keep every component inside. Cheap tests
 * first: |re| + |im| <= MSP_IFFT_SAFE_L1 implies it; a component beyond the bound excludes it. */
static int ifft_safe(const int16_t *z, uint16_t k) {
  for (uint16_t i = 0; i < 2u * k; i += 2u) {
    const int16_t re = z[i], im = z[i + 1u];
    const uint16_t ar = (uint16_t)(re < 0 ? -(int32_t)re : re), ai = (uint16_t)(im < 0 ? -(int32_t)im : im);
    if ((uint32_t)ar + ai <= MSP_IFFT_SAFE_L1) continue;
    if (ar > MSP_IFFT_SAFE_MAG || ai > MSP_IFFT_SAFE_MAG) return 0;
    if ((uint32_t)bl_ref_mul16(re, re) + (uint32_t)bl_ref_mul16(im, im) >
        (uint32_t)MSP_IFFT_SAFE_MAG * MSP_IFFT_SAFE_MAG) {
      return 0;
    }
  }
  return 1;
}

bl_status bl_lea_fft_run(int16_t *buf, const bl_fft_cfg *cfg, bool inverse) {
  if (buf != bl_lea_fft_buf || !bl_lea_fft_on_lea(cfg->k)) return bl_lea_ref_fft_q15(buf, cfg, inverse);
  if (inverse && !MSP_IFFT_IS_SPEC && (!MSP_IFFT_SWAP_ROUTE || !ifft_safe(buf, cfg->k))) {
    return bl_lea_ref_fft_q15(buf, cfg, true);
  }
  const msp_cmplx_fft_q15_params p = {cfg->k, true, 0};
  return from_msp(inverse ? msp_cmplx_ifft_fixed_q15(&p, buf) : msp_cmplx_fft_fixed_q15(&p, buf));
}

bl_status bl_fft_q15(int16_t *z, const bl_fft_cfg *cfg, bool inverse) {
  if (z == 0 || cfg == 0 || cfg->tw == 0) return BL_ERR_ARG;
  const uint16_t k = cfg->k;
  if (!is_pow2(k) || !is_pow2(cfg->tw_k) || cfg->tw_k < k) return BL_ERR_FFT_SIZE;
  if (!bl_lea_fft_on_lea(k)) return bl_lea_ref_fft_q15(z, cfg, inverse);
  for (uint16_t i = 0; i < 2u * k; i++) bl_lea_fft_buf[i] = z[i];
  const bl_status st = bl_lea_fft_run(bl_lea_fft_buf, cfg, inverse);
  if (st != BL_OK) return st;
  for (uint16_t i = 0; i < 2u * k; i++) z[i] = bl_lea_fft_buf[i];
  return BL_OK;
}

/* ---- MAC flushes: even lengths (a zero pair pads an odd count), exact (bl_lea_internal.h) -------------- */

/* 1 when an IQ31 MAC result may have saturated (see bl_lea_internal.h): then it is recomputed on the CPU.
 * Conservatively any result whose high word is 0x7FFF or 0x8000 (within 2^16 of a bound): one word test
 * instead of two 32-bit compares, and a recomputation is always exact, only slower. */
static inline int maybe_saturated(int32_t r) {
  const uint16_t hi = (uint16_t)((uint32_t)r >> 16);
  return (uint16_t)((uint16_t)(hi + 1u) & 0xFFFEu) == 0x8000u;
}

/* r / 2 for an even r (a MAC result that did not saturate): an arithmetic shift, spelled without shifting
 * a negative value (MSP430: one RRA/RRC pair). */
static inline uint32_t half_even(int32_t r) {
#if defined(__MSP430__)
  uint16_t lo = (uint16_t)(uint32_t)r, hi = (uint16_t)((uint32_t)r >> 16);
  __asm__("rra %1\n\trrc %0" : "+r"(lo), "+r"(hi));
  return ((uint32_t)hi << 16) | lo;
#else
  return ((uint32_t)r >> 1) | ((uint32_t)r & 0x80000000u);
#endif
}

#if MSP_HAVE_CMAC_MANY
int bl_lea_dot_ready;
const int16_t *bl_lea_res_x, *bl_lea_res_w;
uint16_t bl_lea_res_x_n, bl_lea_res_w_n;

void bl_lea_dot_begin(void) {
  bl_lea_res_drop(); /* the direct paths stage their operands in bl_lea_xt / bl_lea_st */
  bl_lea_dot_ready = bl_lea_mac_begin(bl_lea_xt, bl_lea_st, &bl_lea_result[0], BL_LEA_AREA) == MSP_SUCCESS;
}

void bl_lea_dot_end(void) {
  if (bl_lea_dot_ready) bl_lea_mac_end();
  bl_lea_dot_ready = 0;
}
#endif

bl_status bl_lea_dot_flush(bl_lea_dot *d) {
  if (d->n == 0u) return BL_OK;
  if (d->n & 1u) {
    bl_lea_xt[d->n] = 0;
    bl_lea_st[d->n] = 0;
    d->n++;
  }
  const msp_mac_q15_params p = {d->n};
#if MSP_HAVE_CMAC_MANY
  const msp_status st =
      bl_lea_dot_ready ? bl_lea_mac_next(d->n) : msp_mac_q15(&p, bl_lea_xt, bl_lea_st, &bl_lea_result[0]);
#else
  const msp_status st = msp_mac_q15(&p, bl_lea_xt, bl_lea_st, &bl_lea_result[0]);
#endif
  if (st != MSP_SUCCESS) return from_msp(st);
  if (maybe_saturated(bl_lea_result[0])) {
    uint32_t s = 0u;
    for (uint16_t i = 0; i < d->n; i++) s += (uint32_t)bl_ref_mul16(bl_lea_xt[i], bl_lea_st[i]);
    d->acc += s;
  } else {
    d->acc += half_even(bl_lea_result[0]);
  }
  d->n = 0;
  return BL_OK;
}

void bl_lea_bins_init(bl_lea_bins *a, uint16_t k, uint16_t f0) {
  bl_lea_res_drop(); /* bl_lea_bins_push stages into bl_lea_xt / bl_lea_st */
  const uint16_t left = (uint16_t)(k / 2u + 1u - f0);
  a->k = k;
  a->f0 = f0;
  a->bins = left < BL_LEA_BINS_MAX ? left : (uint16_t)BL_LEA_BINS_MAX;
  uint16_t cap = 0; /* (BL_LEA_AREA / 2) / bins, even, by subtraction (a division is a helper call) */
  for (uint16_t left_area = BL_LEA_AREA / 2u; left_area >= a->bins; left_area = (uint16_t)(left_area - a->bins)) cap++;
  a->cap = (uint16_t)(cap & ~1u);
  a->n = 0;
  for (uint16_t b = 0; b < 2u * a->bins; b++) bl_lea_acc[b] = 0u;
}

bl_status bl_lea_bins_push(bl_lea_bins *a, const int16_t *x, size_t xs, const int16_t *s, size_t ss) {
  const uint16_t half = (uint16_t)(a->k / 2u), step = (uint16_t)(2u * a->cap);
  const size_t xs2 = 2u * xs, ss2 = 2u * ss;
  int16_t *dx = bl_lea_xt + 2u * a->n, *ds = bl_lea_st + 2u * a->n;
  if (a->f0 == 0u && a->bins == (uint16_t)(half + 1u)) { /* every bin (k <= 64): no per-bin tests */
    const int16_t *px = x + xs2, *ps = s + ss2;
    dx[0] = x[0]; /* DC */
    dx[1] = 0;
    ds[0] = s[0];
    ds[1] = 0;
    if (xs == 1u && ss == 1u) { /* a linear layer's blocks: consecutive slots (auto-increment loads) */
      for (uint16_t f = 1; f < half; f++) {
        dx += step;
        ds += step;
        dx[0] = *px++;
        dx[1] = *px++;
        ds[0] = *ps++;
        ds[1] = *ps++;
      }
    } else {
      for (uint16_t f = 1; f < half; f++) {
        dx += step;
        ds += step;
        dx[0] = px[0];
        dx[1] = px[xs];
        ds[0] = ps[0];
        ds[1] = ps[ss];
        px += xs2;
        ps += ss2;
      }
    }
    dx += step;
    ds += step;
    dx[0] = x[xs]; /* Nyquist */
    dx[1] = 0;
    ds[0] = s[ss];
    ds[1] = 0;
    a->n++;
    return a->n == a->cap ? bl_lea_bins_flush(a) : BL_OK;
  }
  const int16_t *px = x, *ps = s; /* slot 2f: bin f's real part (f = 1 .. k/2 - 1) */
  uint16_t f = a->f0;
  if (f != 0u) { /* pointer steps, no multiply in the common f0 = 0 case */
    px += f * xs2;
    ps += f * ss2;
  }
  for (uint16_t b = 0; b < a->bins; b++, f++, dx += step, ds += step, px += xs2, ps += ss2) {
    if (f == 0u) { /* DC: packed slot 0, real */
      dx[0] = x[0];
      dx[1] = 0;
      ds[0] = s[0];
      ds[1] = 0;
    } else if (f == half) { /* Nyquist: packed slot 1, real */
      dx[0] = x[xs];
      dx[1] = 0;
      ds[0] = s[ss];
      ds[1] = 0;
    } else {
      dx[0] = px[0];
      dx[1] = px[xs];
      ds[0] = ps[0];
      ds[1] = ps[ss];
    }
  }
  a->n++;
  return a->n == a->cap ? bl_lea_bins_flush(a) : BL_OK;
}

bl_status bl_lea_bins_flush(bl_lea_bins *a) {
  if (a->n == 0u) return BL_OK;
  const uint16_t step = (uint16_t)(2u * a->cap);
  if (a->n & 1u) { /* pad every bin's vector with a zero element */
    int16_t *dx = bl_lea_xt + 2u * a->n, *ds = bl_lea_st + 2u * a->n;
    for (uint16_t b = 0; b < a->bins; b++, dx += step, ds += step) dx[0] = dx[1] = ds[0] = ds[1] = 0;
    a->n++;
  }
#if MSP_HAVE_CMAC_MANY
  const msp_status mst = bl_lea_cmac_many(a->n, bl_lea_xt, bl_lea_st, step, a->bins, bl_lea_result, 1u);
  if (mst != MSP_SUCCESS) return from_msp(mst);
#else
  const msp_cmplx_mac_q15_params p = {a->n};
  for (uint16_t b = 0; b < a->bins; b++) {
    const msp_status mst = msp_cmplx_mac_q15(&p, bl_lea_xt + b * step, bl_lea_st + b * step, bl_lea_result + 2u * b);
    if (mst != MSP_SUCCESS) return from_msp(mst);
  }
#endif
  const int16_t *vx = bl_lea_xt, *vs = bl_lea_st;
  const int32_t *res = bl_lea_result;
  uint32_t *acc = bl_lea_acc;
  for (uint16_t b = 0; b < a->bins; b++, vx += step, vs += step, res += 2, acc += 2) {
    if (maybe_saturated(res[0]) || maybe_saturated(res[1])) {
      uint32_t re = 0u, im = 0u;
      for (uint16_t e = 0; e < 2u * a->n; e += 2u) {
        re += (uint32_t)bl_ref_mul16(vx[e], vs[e]) - (uint32_t)bl_ref_mul16(vx[e + 1u], vs[e + 1u]);
        im += (uint32_t)bl_ref_mul16(vx[e], vs[e + 1u]) + (uint32_t)bl_ref_mul16(vx[e + 1u], vs[e]);
      }
      acc[0] += re;
      acc[1] += im;
    } else {
      acc[0] += half_even(res[0]);
      acc[1] += half_even(res[1]);
    }
  }
  a->n = 0;
  return BL_OK;
}
