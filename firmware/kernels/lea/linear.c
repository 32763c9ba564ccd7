/* lea backend: linear layers (docs/numeric-spec.md, "linear — direct path" and "linear — FFT path").
 * Direct paths: one msp_mac_q15 dot product per output row over the whole input (the input is staged in LEA
 * RAM once per call when it fits one operand area, the row's weights per row). FFT path: input blocks
 * transformed with msp_cmplx_fft_fixed_q15; per output block the frequency-domain MAC as one
 * msp_cmplx_mac_q15 per bin over all input blocks (bl_lea_bins), the inverse with msp_cmplx_ifft_fixed_q15;
 * packing, requantisation, Hermitian completion and the final rescale + bias run on the CPU. */
#include "bl_kernels.h"
#include "bl_lea_internal.h"

/* n int8 weights sign-extended into LEA RAM. On the MSP430 a byte load with auto-increment, SXT and a
 * store per weight, two per iteration (~8 MCLK cycles a weight; clang 14's loop took ~19 and varied with
 * the surrounding code). */
static void stage_w8(int16_t *d, const int8_t *src, uint16_t n) {
#if defined(__MSP430__)
  int16_t t;
  if (n & 1u) {
    *d++ = *src++;
    n--;
  }
  if (n == 0u) return;
  /* two weights per iteration: ~8 MCLK cycles a weight. The 22-byte loop starts on an 8-byte boundary so
   * it spans 3 FRAM cache lines, not 4: the FRAM controller's cache holds 4 lines (2 sets x 2 ways), and a
   * loop over 4 lines loses one of its own lines to every weight line it reads (a miss, NWAITS stall, per
   * iteration). Where the linker put this loop once cost the dense MLP 3.6 % (docs/msp430sim.md). */
  __asm__ volatile(".p2align 3\n1:\n\tmov.b @%1+, %0\n\tsxt %0\n\tmov %0, 0(%2)\n\tmov.b @%1+, %0\n\tsxt %0\n\t"
                   "mov %0, 2(%2)\n\tadd #4, %2\n\tsub #2, %3\n\tjnz 1b"
                   : "=&r"(t), "+r"(src), "+r"(d), "+r"(n)
                   :
                   : "memory");
#else
  for (uint16_t c = 0; c < n; c++) *d++ = *src++;
#endif
}

/* Weights of row r = i*k + rr, columns c0 .. c1 - 1, into bl_lea_st[0 ..]: W[r][c] (k = 1, row_base =
 * r * in_features) or, for a circulant layer, W[i*k + rr][j*k + cc] = w[i][j][(rr - cc) mod k]: block
 * (i, j)'s vector read backwards from tap rr, wrapping (row_base = i * q * k). Pointer steps: no division
 * or 32-bit multiply per row (helper calls on the MSP430 that cost more than the row's staging). */
static void stage_row(const int16_t *w16, const int8_t *w8, uint16_t k, uint32_t row_base, uint16_t rr,
                      uint16_t c0, uint16_t c1) {
  int16_t *d = bl_lea_st;
  if (k == 1) { /* row_base = r * in_features */
    if (w16 != 0) {
      const int16_t *src = w16 + row_base + c0;
#if MSP_HAVE_CMAC_MANY
      bl_lea_dma_copy16(d, src, (uint16_t)(c1 - c0)); /* LEA cannot read FRAM: DMA, 2 cycles a word */
#else
      for (uint16_t c = c0; c < c1; c++) *d++ = *src++;
#endif
    } else { /* int8: a DMA byte -> word transfer clears the high byte (SLAU367 §11.2.2), no sign: the CPU */
      stage_w8(d, w8 + row_base + c0, (uint16_t)(c1 - c0));
    }
    return;
  }
  /* row_base: block (i, 0); c0 = 0 but for inputs above BL_LEA_AREA */
  uint16_t cc = c0 == 0u ? 0u : (uint16_t)(c0 % k);
  uint32_t base = row_base + (uint32_t)(c0 - cc);
  uint16_t c = c0;
  if (cc != 0u) { /* finish a partial block column the generic way */
    uint16_t dd = (uint16_t)((rr + k - cc) % k);
    for (; c < c1 && cc != 0u; c++) {
      *d++ = bl_ref_weight_at(w16, w8, base + dd);
      dd = dd == 0 ? (uint16_t)(k - 1u) : (uint16_t)(dd - 1u);
      if (++cc == k) {
        cc = 0;
        base += k;
      }
    }
  }
  while (c < c1) { /* whole block columns: taps rr, rr-1, ..., 0, k-1, ..., rr+1 (cut at c1) */
    const uint16_t n = (uint16_t)(c1 - c) < k ? (uint16_t)(c1 - c) : k;
    const uint16_t first = (uint16_t)(rr + 1u) < n ? (uint16_t)(rr + 1u) : n; /* taps rr .. down */
    if (w16 != 0) {
      const int16_t *blk = w16 + base;
      for (uint16_t t = 0; t < first; t++) *d++ = blk[rr - t];
      for (uint16_t t = first; t < n; t++) *d++ = blk[k - 1u - (t - first)];
    } else {
      const int8_t *blk = w8 + base;
      for (uint16_t t = 0; t < first; t++) *d++ = blk[rr - t];
      for (uint16_t t = first; t < n; t++) *d++ = blk[k - 1u - (t - first)];
    }
    c = (uint16_t)(c + n);
    base += k;
  }
}

static bl_status linear_direct_rows(const int16_t *x, uint16_t in_features, const int16_t *w16, const int8_t *w8,
                               uint16_t k, const int32_t *bias, int16_t shift, int16_t *y,
                               uint16_t out_features, uint16_t r0, uint16_t r1) {
  if (x == 0 || y == 0 || (w16 == 0 && w8 == 0)) return BL_ERR_ARG;
  if (in_features == 0 || out_features == 0 || k == 0) return BL_ERR_SHAPE;
  if (r0 >= r1 || r1 > out_features) return BL_ERR_ARG;
  const bool one_area = in_features <= BL_LEA_AREA;
  if (one_area) { /* the input, once for every row of this call */
#if MSP_HAVE_CMAC_MANY
    bl_lea_dma_copy16(bl_lea_xt, x, in_features);
#else
    for (uint16_t c = 0; c < in_features; c++) bl_lea_xt[c] = x[c];
#endif
  }
#if MSP_HAVE_CMAC_MANY
  rq_t rq; /* a dense layer's rows, the common case: one MAC per row on the prepared command */
  if (one_area && k == 1u && bl_lea_dot_ready && (in_features & 1u) == 0u && rq_init(&rq, shift)) {
    const int8_t *w8r = w8 != 0 ? w8 + (uint32_t)r0 * in_features : 0;
    const int16_t *w16r = w16 != 0 ? w16 + (uint32_t)r0 * in_features : 0;
    for (uint16_t r = r0; r < r1; r++) {
      if (w8r != 0) {
        stage_w8(bl_lea_st, w8r, in_features);
        w8r += in_features;
      } else {
        bl_lea_dma_copy16(bl_lea_st, w16r, in_features);
        w16r += in_features;
      }
      if (bl_lea_mac_next(in_features) != MSP_SUCCESS) return BL_ERR_ARG;
      const int32_t res = bl_lea_result[0], b = bias != 0 ? bias[r] : 0;
      const uint16_t rh = (uint16_t)((uint32_t)res >> 16), bh = (uint16_t)((uint32_t)b >> 16);
      /* |res| < 2^30 (exactly 2 * acc) and |b| < 2^28: 2 * (acc + b) + 2^s cannot overflow, and the spec's
       * requant(acc + b, s) = floor((2 (acc + b) + 2^s) / 2^(s+1)) (rq_iq31) */
      if ((rh < 0x4000u || rh >= 0xC000u) && (bh < 0x1000u || bh >= 0xF000u)) {
        y[r] = rq_iq31((int32_t)((uint32_t)res + (uint32_t)b + (uint32_t)b), &rq);
        continue;
      }
      bl_lea_dot d = {0u, in_features}; /* the general way (re-issues the MAC, recomputes a saturated one) */
      const bl_status st = bl_lea_dot_flush(&d);
      if (st != BL_OK) return st;
      if (bias != 0) d.acc += (uint32_t)bias[r];
      y[r] = bl_lea_requant(bl_lea_wrap(d.acc), shift);
    }
    return BL_OK;
  }
#endif
  const uint32_t row_step = bl_lea_blocks(in_features, k) * k; /* weights per block row: q * k */
  uint16_t rr = (uint16_t)(r0 % k);                               /* row within its block row, stepped below */
  uint32_t row_base = (uint32_t)(r0 / k) * row_step;
  for (uint16_t r = r0; r < r1; r++) {
    bl_lea_dot d = {0u, 0u};
    for (uint16_t c0 = 0; c0 < in_features; c0 = (uint16_t)(c0 + BL_LEA_AREA)) {
      const uint16_t c1 = (uint16_t)((uint16_t)(in_features - c0) > BL_LEA_AREA ? c0 + BL_LEA_AREA : in_features);
      if (!one_area) {
        for (uint16_t c = c0; c < c1; c++) bl_lea_xt[c - c0] = x[c];
      }
      stage_row(w16, w8, k, row_base, rr, c0, c1);
      d.n = (uint16_t)(c1 - c0); /* an odd count: the flush pads both vectors with a zero */
      bl_status st = bl_lea_dot_flush(&d);
      if (st != BL_OK) return st;
    }
    if (bias != 0) d.acc += (uint32_t)bias[r];
    y[r] = bl_lea_requant(bl_lea_wrap(d.acc), shift);
    if (++rr == k) {
      rr = 0;
      row_base += row_step;
    }
  }
  return BL_OK;
}

/* The rows with the flushes' LEA MAC prepared once (bl_lea_dot_begin / end around every way out). */
static bl_status linear_direct(const int16_t *x, uint16_t in_features, const int16_t *w16, const int8_t *w8,
                               uint16_t k, const int32_t *bias, int16_t shift, int16_t *y,
                               uint16_t out_features, uint16_t r0, uint16_t r1) {
  bl_lea_dot_begin();
  const bl_status st = linear_direct_rows(x, in_features, w16, w8, k, bias, shift, y, out_features, r0, r1);
  bl_lea_dot_end();
  return st;
}

bl_status bl_linear_dense_w16(const int16_t *x, uint16_t in_features, const int16_t *w, const int32_t *bias,
                              int16_t shift, int16_t *y, uint16_t out_features, uint16_t r0, uint16_t r1) {
  if (w == 0) return BL_ERR_ARG;
  return linear_direct(x, in_features, w, 0, 1, bias, shift, y, out_features, r0, r1);
}

bl_status bl_linear_dense_w8(const int16_t *x, uint16_t in_features, const int8_t *w, const int32_t *bias,
                             int16_t shift, int16_t *y, uint16_t out_features, uint16_t r0, uint16_t r1) {
  if (w == 0) return BL_ERR_ARG;
  return linear_direct(x, in_features, 0, w, 1, bias, shift, y, out_features, r0, r1);
}

bl_status bl_linear_circ_w16(const int16_t *x, uint16_t in_features, const int16_t *w, uint16_t k,
                             const int32_t *bias, int16_t shift, int16_t *y, uint16_t out_features, uint16_t r0,
                             uint16_t r1) {
  if (w == 0) return BL_ERR_ARG;
  return linear_direct(x, in_features, w, 0, k, bias, shift, y, out_features, r0, r1);
}

bl_status bl_linear_circ_w8(const int16_t *x, uint16_t in_features, const int8_t *w, uint16_t k,
                            const int32_t *bias, int16_t shift, int16_t *y, uint16_t out_features, uint16_t r0,
                            uint16_t r1) {
  if (w == 0) return BL_ERR_ARG;
  return linear_direct(x, in_features, 0, w, k, bias, shift, y, out_features, r0, r1);
}

/* Same argument checks as bl_fft_q15 (the block kernels never call it with the caller's buffer). */
static bl_status check_cfg(const bl_fft_cfg *cfg) {
  const uint16_t k = cfg->k, t = cfg->tw_k;
  if (cfg->tw == 0) return BL_ERR_ARG;
  if (k < 2u || (k & (uint16_t)(k - 1u)) != 0u || t < k || (t & (uint16_t)(t - 1u)) != 0u) return BL_ERR_FFT_SIZE;
  return BL_OK;
}

#if MSP_HAVE_CMAC_MANY
/* The k-point bit-reversal permutation (k <= BL_LEA_FFT_MAX), built once per boot and k: the FFT path
 * writes its transform inputs straight to their bit-reversed slots, which it writes one by one anyway, so
 * LEA runs the FFT command without its bit-reversal command (one LEA command and its CPU set-up less per
 * transform; a permutation, so bit for bit the same). SRAM, rebuilt after a reset, from the 64-point
 * permutation in FRAM: bitrev_k(i) = bitrev_64(i * 64 / k) for i < k (i's low zero bits reversed to the
 * top), a strided read instead of a reversed-carry increment per entry (~44 cycles an entry; ~700 cycles
 * of every inference's first input transform for k = 16). */
#if BL_LEA_FFT_MAX > 64u
#error "brev64 holds the 64-point permutation: extend it for a larger BL_LEA_FFT_MAX"
#endif
static const uint8_t brev64[64] = {0,  32, 16, 48, 8,  40, 24, 56, 4,  36, 20, 52, 12, 44, 28, 60,
                                   2,  34, 18, 50, 10, 42, 26, 58, 6,  38, 22, 54, 14, 46, 30, 62,
                                   1,  33, 17, 49, 9,  41, 25, 57, 5,  37, 21, 53, 13, 45, 29, 61,
                                   3,  35, 19, 51, 11, 43, 27, 59, 7,  39, 23, 55, 15, 47, 31, 63};
static uint8_t brev_tab[BL_LEA_FFT_MAX];
static int16_t *brev_at[BL_LEA_FFT_MAX]; /* bl_lea_fft_buf + 2 bitrev(i): complex slot bitrev(i)'s address */
static uint16_t brev_k;

static const uint8_t *brev_for(uint16_t k) {
  if (brev_k != k) {
    uint16_t step = 1u; /* 64 / k */
    for (uint16_t t = k; t < 64u; t = (uint16_t)(t << 1)) step = (uint16_t)(step << 1);
    const uint8_t *src = brev64;
    for (uint16_t i = 0; i < k; i++, src += step) {
      const uint8_t r = *src;
      brev_tab[i] = r;
      brev_at[i] = bl_lea_fft_buf + 2u * r;
    }
    brev_k = k;
  }
  return brev_tab;
}
#endif

#if MSP_HAVE_CMAC_MANY
/* log2 k for a power of two k (a variable shift count; a divide or 32-bit multiply is a helper call) */
static inline uint16_t lg2(uint16_t k) {
  uint16_t l = 0u;
  for (uint16_t t = 1u; t < k; t = (uint16_t)(t << 1)) l++;
  return l;
}

/* a * b mod 2^16 on the MPY32 (SLAU367 MPY32 chapter: MPY 0x04C0 unsigned first operand, OP2 0x04C8 starts
 * the multiply, RESLO 0x04CA): the compiler's multiply helper call costs ~10x more here. */
static inline uint16_t mul16(uint16_t a, uint16_t b) {
  *(volatile uint16_t *)0x04C0u = a;
  *(volatile uint16_t *)0x04C8u = b;
  return *(volatile uint16_t *)0x04CAu;
}

/* fft_input_lea's per-call derivations (check_cfg, log2 k, q) for the last (in_features, cfg) seen: codegen
 * calls it once per input block, and re-deriving them cost ~250 CPU cycles a call (variable shifts are
 * loops on the MSP430; check_cfg's power-of-two test compiles to a popcount with a multiply helper call).
 * In .bss, zero after every boot: k == 0 never matches a cfg that reaches here (k >= BL_LEA_FFT_MIN). */
static struct {
  const int16_t *tw;
  uint16_t in_features, k, tw_k;
  bl_status st;
  uint16_t q;
} in_layer;

/* bl_linear_fft_input_q15 when k runs on LEA and the input fits an operand area: the same checks and
 * results in 16-bit index arithmetic; each block's real parts go to their bit-reversed slots of a LEA
 * buffer (imaginary parts zeroed), LEA runs the FFT command alone, and the packed spectrum (DC, Nyquist,
 * bins 1 .. k/2 - 1 as stored) is copied out. For k <= BL_LEA_FFT_MAX / 2 two k-point buffers fit
 * bl_lea_fft_buf (A at its start, B IN_B int16 in, both 4k-byte aligned as LEA's FFT demands) and the
 * blocks alternate between them: the CPU places block j + 1 while LEA transforms block j, and copies block
 * j out while LEA transforms block j + 1 (an FFT command of 16 points is ~136 cycles, the placement of 16
 * values ~150: LEA's time hides under the CPU's). Larger k: one buffer, place / transform / copy in turn. */
#define IN_B 64u /* int16: buffer B's offset, a multiple of 2k for k = 16 and 32 */

/* `have` real parts from src (the other k - have are padding) to their bit-reversed slots of buffer A
 * (second = 0: bl_lea_fft_buf) or B (1: + IN_B), with zero imaginary parts. A full block writes every slot;
 * a short one is zeroed by DMA first. */
static inline void place_input(const int16_t *src, uint16_t have, uint16_t k, int second) {
  int16_t *const buf = second ? bl_lea_fft_buf + IN_B : bl_lea_fft_buf;
  if (have != k) bl_lea_dma_fill16(buf, 0, (uint16_t)(2u * k));
#if defined(__MSP430__)
  /* slot addresses from brev_at (buffer A's; B's are 2 * IN_B bytes further, a constant displacement),
   * two values an iteration: ~11.5 cycles a value (the byte offset + ADD, one a pass: ~14) */
  int16_t *const *a = brev_at;
  int16_t *t;
  uint16_t v;
#define BL_PLACE_ONE(D, D2) "mov @%[a]+, %[t]\n\tmov @%[s]+, %[v]\n\tmov %[v], " D "(%[t])\n\tclr " D2 "(%[t])\n\t"
#define BL_PLACE_LOOP(D, D2)                                                                                   \
  __asm__ volatile("bit #1, %[n]\n\tjz 2f\n\t" BL_PLACE_ONE(D, D2) "dec %[n]\n\tjz 3f\n"                     \
                   "2:\n\t" BL_PLACE_ONE(D, D2) BL_PLACE_ONE(D, D2) "sub #2, %[n]\n\tjnz 2b\n"                  \
                   "3:"                                                                                        \
                   : [a] "+r"(a), [t] "=&r"(t), [v] "=&r"(v), [s] "+r"(src), [n] "+r"(have)                   \
                   :                                                                                           \
                   : "memory")
  if (second) {
    BL_PLACE_LOOP("128", "130"); /* 2 * IN_B bytes */
  } else {
    BL_PLACE_LOOP("0", "2");
  }
#undef BL_PLACE_LOOP
#undef BL_PLACE_ONE
#else
  const ptrdiff_t d = buf - bl_lea_fft_buf;
  for (uint16_t b = 0; b < have; b++) {
    brev_at[b][d] = *src++;
    brev_at[b][d + 1] = 0;
  }
#endif
}

static bl_status fft_input_lea(const int16_t *x, uint16_t in_features, const bl_fft_cfg *cfg, int16_t *xs,
                               uint16_t j0, uint16_t j1) {
  const uint16_t k = cfg->k;
  if (in_layer.k != k || in_layer.in_features != in_features || in_layer.tw_k != cfg->tw_k ||
      in_layer.tw != cfg->tw) {
    in_layer.k = 0u; /* invalid while being rebuilt */
    in_layer.st = check_cfg(cfg);
    in_layer.q = (uint16_t)((uint16_t)(in_features + k - 1u) >> lg2(k));
    in_layer.in_features = in_features;
    in_layer.tw_k = cfg->tw_k;
    in_layer.tw = cfg->tw;
    in_layer.k = k;
  }
  if (j0 >= j1 || j1 > in_layer.q) return BL_ERR_ARG;
  if (in_layer.st != BL_OK) return in_layer.st;
  bl_lea_res_drop(); /* xs is rewritten (bl_lea_internal.h, "Layer residency") */
  (void)brev_for(k); /* brev_at for k */
  const int two = k <= BL_LEA_FFT_MAX / 2u;
  uint16_t c0 = mul16(j0, k);
  int cur = 0; /* block j's buffer: 0 A, 1 B */
  place_input(x + c0, (uint16_t)(in_features - c0 < k ? in_features - c0 : k), k, cur);
  if (bl_lea_fft_nobrev_begin(bl_lea_fft_buf, k) != MSP_SUCCESS) return BL_ERR_ARG;
  for (uint16_t j = j0;; j++) { /* LEA transforms block j (at c0) in buffer cur */
    const uint16_t c1 = (uint16_t)(c0 + k);
    const int more = (uint16_t)(j + 1u) < j1;
    const int nxt = two ? !cur : cur;
    if (more && two) place_input(x + c1, (uint16_t)(in_features - c1 < k ? in_features - c1 : k), k, nxt);
    if (bl_lea_done() != MSP_SUCCESS) return BL_ERR_ARG;
    if (more && two && bl_lea_fft_nobrev_begin(bl_lea_fft_buf + IN_B * (uint16_t)nxt, k) != MSP_SUCCESS) {
      return BL_ERR_ARG;
    }
    const int16_t *const buf = bl_lea_fft_buf + IN_B * (uint16_t)cur;
    int16_t *const out = xs + c0;
    out[0] = buf[0];
    out[1] = buf[k];
    bl_lea_dma_copy16(out + 2, buf + 2, (uint16_t)(k - 2u));
    if (!more) return BL_OK;
    if (!two) {
      place_input(x + c1, (uint16_t)(in_features - c1 < k ? in_features - c1 : k), k, nxt);
      if (bl_lea_fft_nobrev_begin(bl_lea_fft_buf, k) != MSP_SUCCESS) return BL_ERR_ARG;
    }
    cur = nxt;
    c0 = c1;
  }
}
#undef IN_B
#endif

bl_status bl_linear_fft_input_q15(const int16_t *x, uint16_t in_features, const bl_fft_cfg *cfg, int16_t *xs,
                                  uint16_t j0, uint16_t j1, int16_t *work) {
  if (x == 0 || cfg == 0 || xs == 0 || work == 0) return BL_ERR_ARG;
  const uint16_t k = cfg->k;
  if (k < 2u || in_features == 0) return BL_ERR_SHAPE;
#if MSP_HAVE_CMAC_MANY
  if (bl_lea_fft_on_lea(k) && in_features <= BL_LEA_AREA) return fft_input_lea(x, in_features, cfg, xs, j0, j1);
#endif
  const uint32_t q = bl_lea_blocks(in_features, k);
  if (j0 >= j1 || j1 > q) return BL_ERR_ARG;
  bl_status st = check_cfg(cfg);
  if (st != BL_OK) return st;
  bl_lea_res_drop(); /* xs is rewritten (bl_lea_internal.h, "Layer residency") */
  int16_t *buf = bl_lea_fft_target(k, work);
  for (uint16_t j = j0; j < j1; j++) {
    const uint32_t c0 = (uint32_t)j * k;
    const uint16_t have = (uint16_t)(in_features - c0 < k ? in_features - c0 : k); /* the rest is padding */
    const int16_t *src = x + c0;
    int16_t *d = buf;
#if MSP_HAVE_CMAC_MANY
    if (buf == bl_lea_fft_buf) { /* zeros by DMA, then the real parts where the bit reversal puts them */
      const uint8_t *br = brev_for(k);
      (void)d;
      bl_lea_dma_fill16(buf, 0, (uint16_t)(2u * k));
      for (uint16_t b = 0; b < have; b++) buf[2u * br[b]] = *src++;
      if (bl_lea_fft_nobrev(buf, k) != MSP_SUCCESS) return BL_ERR_ARG; /* the FFT command alone */
      int16_t *out = xs + (uint32_t)j * k; /* packed: DC, Nyquist, then bins 1 .. k/2 - 1 as stored */
      out[0] = buf[0];
      out[1] = buf[k];
      bl_lea_dma_copy16(out + 2, buf + 2, (uint16_t)(k - 2u));
      continue;
    }
#endif
    for (uint16_t b = 0; b < have; b++) {
      *d++ = *src++;
      *d++ = 0;
    }
    for (uint16_t b = have; b < k; b++) {
      *d++ = 0;
      *d++ = 0;
    }
    st = bl_lea_fft_run(buf, cfg, false);
    if (st != BL_OK) return st;
    bl_ref_pack_spectrum(buf, k, xs + (uint32_t)j * k, 1u);
  }
  return BL_OK;
}

#if MSP_HAVE_CMAC_MANY
/* 1 when a MAC result may have saturated (bl_lea_internal.h "Exact MACs"): its high word is 0x7FFF/0x8000. */
static inline int cmac_maybe_saturated(int32_t r) {
  const uint16_t hi = (uint16_t)((uint32_t)r >> 16);
  return (uint16_t)((uint16_t)(hi + 1u) & 0xFFFEu) == 0x8000u;
}

/* r / 2 for an even, unsaturated MAC result: RRA/RRC (fft_q15.c half_even). */
static inline uint32_t cmac_half(int32_t r) {
  uint16_t lo = (uint16_t)(uint32_t)r, hi = (uint16_t)((uint32_t)r >> 16);
  __asm__("rra %1\n\trrc %0" : "+r"(lo), "+r"(hi));
  return ((uint32_t)hi << 16) | lo;
}

/* 1 when bin (re, im) keeps the driver's inverse FFT exact (fft_q15.c ifft_safe: the same test). */
static inline int bin_ifft_safe(int16_t re, int16_t im) {
  /* |re|, |im| as uint16 (|-32768| = 32768 fits); ar + ai <= L1 tested without a 32-bit sum */
  const uint16_t ar = re < 0 ? (uint16_t)(0u - (uint16_t)re) : (uint16_t)re;
  const uint16_t ai = im < 0 ? (uint16_t)(0u - (uint16_t)im) : (uint16_t)im;
  if (ar <= MSP_IFFT_SAFE_L1 && ai <= (uint16_t)(MSP_IFFT_SAFE_L1 - ar)) return 1;
  if (ar > MSP_IFFT_SAFE_MAG || ai > MSP_IFFT_SAFE_MAG) return 0;
  return (uint32_t)bl_ref_mul16(re, re) + (uint32_t)bl_ref_mul16(im, im) <=
         (uint32_t)MSP_IFFT_SAFE_MAG * MSP_IFFT_SAFE_MAG;
}

/* wrap32(sum_j x[j*k] * s[j*k]) for j < q (q >= 1): a real bin's q-term dot product. On the MSP430 with
 * the MPY32's signed multiply-accumulate written directly (SLAU367 MPY32 chapter: MPYS 0x04C2 starts a
 * product, MACS 0x04C6 adds to RESHI:RESLO, OP2 0x04C8 triggers, RESLO/RESHI 0x04CA/0x04CC; the 32-bit
 * result wraps as the spec's accumulator) instead of a helper call per product. */
static inline uint32_t real_bin_sum(const int16_t *x, const int16_t *s, uint16_t k, uint16_t q) {
#if defined(__MSP430__)
  /* one assembly loop with pointer steps of 2k bytes (~15 cycles a term; clang's ~20) */
  uint16_t lo, hi, n = q;
  const uint16_t step = (uint16_t)(k + k);
  __asm__ volatile("mov @%[x], &0x04C2\n\tmov @%[s], &0x04C8\n\tdec %[n]\n\tjz 2f\n"
                   "1:\n\tadd %[st], %[x]\n\tadd %[st], %[s]\n\tmov @%[x], &0x04C6\n\tmov @%[s], &0x04C8\n\t"
                   "dec %[n]\n\tjnz 1b\n"
                   "2:\n\tmov &0x04CA, %[lo]\n\tmov &0x04CC, %[hi]"
                   : [lo] "=r"(lo), [hi] "=r"(hi), [x] "+r"(x), [s] "+r"(s), [n] "+r"(n)
                   : [st] "r"(step)
                   : "memory");
  return ((uint32_t)hi << 16) | lo;
#else
  uint32_t acc = 0u;
  for (uint16_t j = 0u; j < q; j++, x += k, s += k) acc += (uint32_t)bl_ref_mul16(*x, *s);
  return acc;
#endif
}

/* One block row's frequency-domain MAC straight from the packed layouts (docs/numeric-spec.md): the input
 * spectra xs (q blocks of k int16) and the row's weight spectra srow (the same shape) are copied into LEA
 * RAM by DMA as they are — no CPU staging or transposition — and bin f = 1 .. k/2 - 1 of every block sits
 * at complex index f + j * k/2: one strided complex MAC per bin (input offsets k/2) sums it over the q
 * blocks. The two real bins (DC in slot 0, Nyquist in slot 1 of each block) are q-term real dot products
 * on the CPU. The requantised bins P[f], f = 0 .. k/2, go into buf with real and imaginary parts swapped,
 * (im, re): the driver's inverse is swap(FFT(swap(x))) (bl_lea_driver.c), so storing swapped saves both
 * swaps — the caller completes the spectrum in the swapped domain and runs the forward LEA FFT. Returns
 * in *safe whether every bin passes the inverse's exactness test (Hermitian completion keeps magnitudes,
 * so bins 0 .. k/2 decide). Needs q even (LEA lengths are even) and q * k <= BL_LEA_AREA; returns
 * BL_ERR_SHAPE otherwise (the caller takes the staged path). */
static bl_status block_row_strided(const int16_t *xs, const int16_t *srow, uint16_t k, uint16_t q, int16_t shift_z,
                                   int16_t *buf, int *safe) {
  const uint16_t words = (uint16_t)(q * k), half = (uint16_t)(k / 2u);
  if ((q & 1u) != 0u || words > BL_LEA_AREA || half < 2u) return BL_ERR_SHAPE;
  bl_lea_res_drop(); /* stages one block row over the resident areas */
  bl_lea_dma_copy16(bl_lea_xt, xs, words);
  bl_lea_dma_copy16(bl_lea_st, srow, words);
  const msp_status mst =
      bl_lea_cmac_many(q, bl_lea_xt + 2, bl_lea_st + 2, 2u, (uint16_t)(half - 1u), bl_lea_result, half);
  if (mst != MSP_SUCCESS) return BL_ERR_ARG;
  const uint32_t dc = real_bin_sum(bl_lea_xt, bl_lea_st, k, q), ny = real_bin_sum(bl_lea_xt + 1, bl_lea_st + 1, k, q);
  int ok = 1;
  int16_t v = bl_lea_requant(bl_lea_wrap(dc), shift_z);
  buf[0] = 0; /* swapped: (im, re) */
  buf[1] = v;
  ok &= bin_ifft_safe(v, 0);
  v = bl_lea_requant(bl_lea_wrap(ny), shift_z);
  buf[k] = 0;
  buf[k + 1u] = v;
  ok &= bin_ifft_safe(v, 0);
  const int32_t *res = bl_lea_result;
  int16_t *z = buf + 2;
  rq_t rq;
  const int fast = rq_init(&rq, shift_z);
  for (uint16_t f = 1u; f < half; f++, res += 2, z += 2) {
    uint32_t re, im;
    if (fast && !cmac_maybe_saturated(res[0]) && !cmac_maybe_saturated(res[1])) { /* the common case */
      const int16_t pr = rq_iq31(res[0], &rq), pi = rq_iq31(res[1], &rq);
      z[0] = pi;
      z[1] = pr;
      if (ok) ok = bin_ifft_safe(pr, pi);
      continue;
    }
    if (cmac_maybe_saturated(res[0]) || cmac_maybe_saturated(res[1])) { /* recompute exactly */
      re = 0u;
      im = 0u;
      for (const int16_t *vx = bl_lea_xt + 2u * f, *vs = bl_lea_st + 2u * f; vx < bl_lea_xt + words;
           vx += k, vs += k) {
        re += (uint32_t)bl_ref_mul16(vx[0], vs[0]) - (uint32_t)bl_ref_mul16(vx[1], vs[1]);
        im += (uint32_t)bl_ref_mul16(vx[0], vs[1]) + (uint32_t)bl_ref_mul16(vx[1], vs[0]);
      }
    } else {
      re = cmac_half(res[0]);
      im = cmac_half(res[1]);
    }
    const int16_t pr = bl_lea_requant(bl_lea_wrap(re), shift_z), pi = bl_lea_requant(bl_lea_wrap(im), shift_z);
    z[0] = pi;
    z[1] = pr;
    if (ok) ok = bin_ifft_safe(pr, pi);
  }
  *safe = ok;
  return BL_OK;
}

/* The spec's final rescale + bias for -15 <= shift_out <= 0 and |bias| < 2^30 (bl_lea_finish's fast case):
 * sat16(o * 2^n + bias), n = -shift_out, exact in 32 bits (|o * 2^n| <= 2^30). In word operations: o
 * sign-extended (RLA, SUBC, INV), doubled n times (ADD/ADDC), the bias added (ADD/ADDC), kept when the high
 * word is the low word's sign extension, else saturated by the high word's sign (~16 + 5n cycles; the C
 * version compiled to ~110). */
static inline int16_t finish_words(int16_t o, uint16_t n, uint16_t blo, uint16_t bhi) {
  uint16_t lo = (uint16_t)o, hi, x, c = n;
  __asm__("mov %0, %1\n\trla %1\n\tsubc %1, %1\n\tinv %1\n\t"
          "tst %3\n\tjz 2f\n"
          "1:\n\tadd %0, %0\n\taddc %1, %1\n\tdec %3\n\tjnz 1b\n"
          "2:\n\tadd %4, %0\n\taddc %5, %1\n\t"
          "mov %0, %2\n\trla %2\n\tsubc %2, %2\n\tinv %2\n\tcmp %2, %1\n\tjeq 3f\n\t"
          "mov #0x7FFF, %0\n\ttst %1\n\tjge 3f\n\tmov #0x8000, %0\n3:"
          : "+r"(lo), "=&r"(hi), "=&r"(x), "+r"(c)
          : "r"(blo), "r"(bhi));
  return (int16_t)lo;
}

static bl_status finish_rows(const int16_t *o, int16_t shift_out, const int32_t *bias_out, int16_t *y,
                             uint16_t rows);

/* The strided route's inverse FFT and finish: buf holds P[0 .. k/2] swapped (block_row_strided). Hermitian
 * completion in the swapped domain (conj(re + i im) = (re, -im) is stored (-im, re), the negation
 * saturating as the spec's), then LEA's forward FFT = the spec's inverse with the output swapped: the
 * real part of output r is slot 2r + 1. An unsafe spectrum is swapped back for the ref inverse on the CPU. */
static bl_status strided_inverse_finish(int16_t *buf, const bl_fft_cfg *cfg, int safe, int16_t shift_out,
                                        const int32_t *bias_out, int16_t *y, uint16_t rows) {
  const uint16_t k = cfg->k;
  for (uint16_t f = 1; f < k / 2u; f++) {
    int16_t *d = buf + 2u * (uint16_t)(k - f);
    const int16_t v = buf[2u * f];
    d[0] = v == INT16_MIN ? INT16_MAX : (int16_t)-v; /* the spec's saturating negation, without a call */
    d[1] = buf[2u * f + 1u];
  }
  const int16_t *o = buf + 1;
  if (safe) {
    const msp_cmplx_fft_q15_params p = {k, true, 0};
    if (msp_cmplx_fft_fixed_q15(&p, buf) != MSP_SUCCESS) return BL_ERR_ARG;
  } else {
    for (uint16_t i = 0; i < 2u * k; i += 2u) {
      const int16_t t = buf[i];
      buf[i] = buf[i + 1u];
      buf[i + 1u] = t;
    }
    const bl_status st = bl_lea_fft_run(buf, cfg, true);
    if (st != BL_OK) return st;
    o = buf;
  }
  return finish_rows(o, shift_out, bias_out, y, rows);
}

/* finish_words over a block row in one assembly loop: y[r] = sat16(o[2r] * 2^n + bias[r]) for r < rows
 * (rows >= 1) and 0 <= n <= 15, the same word operations with the bias read by auto-increment. Any int32
 * bias: |o * 2^n| <= 2^30, so when the 32-bit sum overflows (the V flag after ADDC, SR bit 8) the true sum
 * lies beyond +-2^31 and saturates to the opposite of the wrapped sum's sign; otherwise the sum is exact and
 * saturates by its high word. The n doublings are an unrolled run of 15 ADD/ADDC pairs (4 bytes each)
 * entered by a computed jump over the first 15 - n (ADD to PC), not a counted loop (~5 cycles a doubling
 * less the loop's 4 of set-up per output). The ReLU variant saturates and clamps in one test of the high
 * word: max(0, sat16(v)) is 0 for v < 0, 0x7FFF for v >= 2^15, else the low word. */
#define BL_FINISH_DOUBLE "add %[lo], %[lo]\n\taddc %[hi], %[hi]\n\t"
#define BL_FINISH_LOOP_HEAD                                                                                   \
  "1:\n\tmov @%[o], %[lo]\n\tadd #4, %[o]\n\t"                                                               \
  "mov %[lo], %[hi]\n\trla %[hi]\n\tsubc %[hi], %[hi]\n\tinv %[hi]\n\t"                                      \
  "add %[skip], r0\n\t" BL_FINISH_DOUBLE BL_FINISH_DOUBLE BL_FINISH_DOUBLE BL_FINISH_DOUBLE BL_FINISH_DOUBLE   \
      BL_FINISH_DOUBLE BL_FINISH_DOUBLE BL_FINISH_DOUBLE BL_FINISH_DOUBLE BL_FINISH_DOUBLE BL_FINISH_DOUBLE   \
          BL_FINISH_DOUBLE BL_FINISH_DOUBLE BL_FINISH_DOUBLE BL_FINISH_DOUBLE                                 \
  "add @%[b]+, %[lo]\n\taddc @%[b]+, %[hi]\n\t"                                                              \
  "mov r2, %[x]\n\tbit #0x100, %[x]\n\tjnz 8f\n\t"

BL_LEA_RAMFUNC(finish_block)
static void finish_block(const int16_t *o, uint16_t n, const int32_t *bias, int16_t *y, uint16_t rows, int relu) {
  uint16_t lo, hi, x;
  const uint16_t skip = (uint16_t)((15u - n) << 2); /* bytes of doublings jumped over */
  if (relu) {
    __asm__ volatile(BL_FINISH_LOOP_HEAD "tst %[hi]\n\tjl 6f\n\tjnz 5f\n\ttst %[lo]\n\tjge 4f\n"
                     "5:\n\tmov #0x7FFF, %[lo]\n\tjmp 4f\n"
                     "6:\n\tclr %[lo]\n\tjmp 4f\n"
                     "8:\n\ttst %[hi]\n\tjl 5b\n\tclr %[lo]\n" /* overflow: the true sum has the other sign */
                     "4:\n\tmov %[lo], 0(%[y])\n\tadd #2, %[y]\n\tdec %[rows]\n\tjnz 1b"
                     : [lo] "=&r"(lo), [hi] "=&r"(hi), [x] "=&r"(x), [o] "+r"(o), [b] "+r"(bias), [y] "+r"(y),
                       [rows] "+r"(rows)
                     : [skip] "r"(skip)
                     : "memory");
    return;
  }
  __asm__ volatile(BL_FINISH_LOOP_HEAD "mov %[lo], %[x]\n\trla %[x]\n\tsubc %[x], %[x]\n\tinv %[x]\n\tcmp %[x], %[hi]\n\t"
                   "jeq 4f\n\tmov #0x7FFF, %[lo]\n\ttst %[hi]\n\tjge 4f\n\tmov #0x8000, %[lo]\n\tjmp 4f\n"
                   "8:\n\tmov #0x8000, %[lo]\n\ttst %[hi]\n\tjge 4f\n\tmov #0x7FFF, %[lo]\n"
                   "4:\n\tmov %[lo], 0(%[y])\n\tadd #2, %[y]\n\tdec %[rows]\n\tjnz 1b"
                   : [lo] "=&r"(lo), [hi] "=&r"(hi), [x] "=&r"(x), [o] "+r"(o), [b] "+r"(bias), [y] "+r"(y),
                     [rows] "+r"(rows)
                   : [skip] "r"(skip)
                   : "memory");
}
#undef BL_FINISH_LOOP_HEAD
#undef BL_FINISH_DOUBLE

/* The spec's final rescale + bias of `rows` outputs, the inverse FFT's real parts o[0], o[2], ... */
static bl_status finish_rows(const int16_t *o, int16_t shift_out, const int32_t *bias_out, int16_t *y,
                             uint16_t rows) {
  if (shift_out > 0 || shift_out < -15) { /* the general routine */
    for (uint16_t r = 0; r < rows; r++, o += 2) *y++ = bl_lea_finish(*o, shift_out, bias_out ? bias_out[r] : 0);
    return BL_OK;
  }
  const uint16_t n = (uint16_t)-shift_out;
  for (uint16_t r = 0; r < rows; r++, o += 2) {
    const int32_t b = bias_out ? bias_out[r] : 0;
    const uint16_t blo = (uint16_t)(uint32_t)b, bhi = (uint16_t)((uint32_t)b >> 16);
    if (bhi >= 0x4000u && bhi < 0xC000u) { /* |bias| >= 2^30: the general routine */
      *y++ = bl_lea_finish(*o, shift_out, b);
      continue;
    }
    *y++ = finish_words(*o, n, blo, bhi);
  }
  return BL_OK;
}

/* One bin's requantised value from its (even) complex-MAC part r, recomputing it exactly when the LEA may
 * have saturated (sum over the q blocks of the staged spectra at complex bin f, imaginary part when im). */
static __attribute__((noinline)) int16_t bin_requant_slow(int16_t shift_z, const int16_t *vx, const int16_t *vs,
                                                           uint16_t k, uint16_t q, uint16_t im) {
  uint32_t acc = 0u;
  for (uint16_t j = 0; j < q; j++, vx += k, vs += k) {
    acc += im ? (uint32_t)bl_ref_mul16(vx[0], vs[1]) + (uint32_t)bl_ref_mul16(vx[1], vs[0])
              : (uint32_t)bl_ref_mul16(vx[0], vs[0]) - (uint32_t)bl_ref_mul16(vx[1], vs[1]);
  }
  return bl_lea_requant(bl_lea_wrap(acc), shift_z);
}

static inline int16_t bin_requant(int32_t r, const rq_t *rq, int16_t shift_z, const int16_t *vx, const int16_t *vs,
                                  uint16_t k, uint16_t q, uint16_t im) {
  if (!cmac_maybe_saturated(r)) return rq_iq31(r, rq);
  return bin_requant_slow(shift_z, vx, vs, k, q, im);
}

/* An upper bound of |re + i im|: max(|re|, |im|) + min(|re|, |im|) / 2 (its square exceeds re^2 + im^2 by
 * max * min - 3/4 min^2 >= 0); at most 49152. */
static inline uint16_t mag_bound(int16_t re, int16_t im) {
  const uint16_t ar = re < 0 ? (uint16_t)(0u - (uint16_t)re) : (uint16_t)re;
  const uint16_t ai = im < 0 ? (uint16_t)(0u - (uint16_t)im) : (uint16_t)im;
  return ar >= ai ? (uint16_t)(ar + (ai >> 1)) : (uint16_t)(ai + (ar >> 1));
}

/* a + b <= lim without a 32-bit sum */
static inline int pair_ok(uint16_t a, uint16_t b, uint16_t lim) { return a <= lim && b <= (uint16_t)(lim - a); }

/* The resident route's bin placement, one assembly loop per bin f = 1 .. cnt: (pi, pr) to slot bitrev(f) and
 * the swapped conjugate (sat(-pi), pr) to slot bitrev(k - f) of bl_lea_fft_buf (slot addresses o1 = brev_at + 1
 * up, o2 = brev_at + k - 1 down), and nr[f - 1] = mag_bound(pr, pi): |.| by INV/INC (|-32768| = 32768
 * unsigned), max + min / 2 (unsigned compare, RRC). pp: the requantised bins (re, im). cnt >= 1. */
BL_LEA_RAMFUNC(place_bins)
static void place_bins(const int16_t *pp, int16_t *const *o1, int16_t *const *o2, uint16_t *nr, uint16_t cnt) {
  uint16_t pr, pi, t, u;
  __asm__ volatile("1:\n\tmov @%[pp]+, %[pr]\n\tmov @%[pp]+, %[pi]\n\t"
                   "mov @%[o1]+, %[t]\n\tmov %[pi], 0(%[t])\n\tmov %[pr], 2(%[t])\n\t"
                   "mov @%[o2], %[t]\n\tsub #2, %[o2]\n\t"
                   "mov %[pi], %[u]\n\tinv %[u]\n\tinc %[u]\n\tcmp #0x8000, %[u]\n\tjne 2f\n\tmov #0x7FFF, %[u]\n"
                   "2:\n\tmov %[u], 0(%[t])\n\tmov %[pr], 2(%[t])\n\t"
                   "mov %[pr], %[t]\n\ttst %[t]\n\tjge 3f\n\tinv %[t]\n\tinc %[t]\n"
                   "3:\n\tmov %[pi], %[u]\n\ttst %[u]\n\tjge 4f\n\tinv %[u]\n\tinc %[u]\n"
                   "4:\n\tcmp %[u], %[t]\n\tjhs 5f\n\tmov %[t], %[pr]\n\tmov %[u], %[t]\n\tmov %[pr], %[u]\n"
                   "5:\n\tclrc\n\trrc %[u]\n\tadd %[u], %[t]\n\tmov %[t], 0(%[nr])\n\tadd #2, %[nr]\n\t"
                   "dec %[cnt]\n\tjnz 1b"
                   : [pp] "+r"(pp), [o1] "+r"(o1), [o2] "+r"(o2), [nr] "+r"(nr), [cnt] "+r"(cnt), [pr] "=&r"(pr),
                     [pi] "=&r"(pi), [t] "=&r"(t), [u] "=&r"(u)
                   :
                   : "memory");
}

/* The resident route's rare paths, out of line (rows_resident is inlined into both FFT block entries,
 * and an EVE lea image's code region has no room for them twice). rq_exact: every bin of the row the exact
 * way, when a complex-MAC result may have saturated. cpu_inverse_placed: the ref inverse on the CPU when the
 * pair bound fails (tested while LEA already transformed the spectrum in place: placed again first) — back
 * to natural order (bit reversal is an involution), unswapped. */
static __attribute__((noinline)) void rq_exact(int16_t *pz, const rq_t *rq, int16_t shift_z, const int16_t *sw,
                                               uint16_t k, uint16_t q, uint16_t half) {
  const int32_t *res = bl_lea_result;
  for (uint16_t f = 1u; f < half; f++, res += 2) {
    pz[2u * f - 2u] = bin_requant(res[0], rq, shift_z, bl_lea_xt + 2u * f, sw + 2u * f, k, q, 0u);
    pz[2u * f - 1u] = bin_requant(res[1], rq, shift_z, bl_lea_xt + 2u * f, sw + 2u * f, k, q, 1u);
  }
}

static __attribute__((noinline)) bl_status cpu_inverse_placed(int16_t *buf, const int16_t *pz, int16_t v0,
                                                               int16_t v1, uint16_t *nrm, const uint8_t *br,
                                                               const bl_fft_cfg *cfg) {
  const uint16_t k = cfg->k, half = (uint16_t)(k / 2u);
  /* the swapped, bit-reversed spectrum as rows_resident placed it before LEA transformed it in place:
   * every slot (0 and k/2 here, the others by place_bins) */
  int16_t *const d = buf + 2u * br[half];
  buf[0] = 0;
  buf[1] = v0;
  d[0] = 0;
  d[1] = v1;
  place_bins(pz, brev_at + 1, brev_at + (k - 1u), nrm + 1, (uint16_t)(half - 1u));
  for (uint16_t a = 0; a < k; a++) {
    const uint16_t b = br[a];
    if (b > a) {
      int16_t *x = buf + 2u * a, *z = buf + 2u * b;
      const int16_t t0 = x[0], t1 = x[1];
      x[0] = z[0];
      x[1] = z[1];
      z[0] = t0;
      z[1] = t1;
    }
  }
  for (uint16_t a = 0; a < 2u * k; a += 2u) {
    const int16_t t = buf[a];
    buf[a] = buf[a + 1u];
    buf[a + 1u] = t;
  }
  return bl_lea_fft_run(buf, cfg, true);
}

/* What rows_resident derives from a layer's arguments (the argument and shape checks, log2 k, q, p,
 * the staged extent, the requantisation constants, the pair bound), kept for the last layer seen: the same
 * for every block row of a layer, and ~400 CPU cycles a row to re-derive on the MSP430 (a variable shift
 * is a loop there, and check_cfg's power-of-two test compiles to a popcount with a multiply helper call).
 * In .bss, zero after every boot: spectra == 0 (the callers reject it) never matches a layer. */
typedef struct {
  const int16_t *spectra, *tw; /* the key: every argument the derived values depend on */
  uint16_t in_features, out_features, k, tw_k;
  int16_t shift_z;
  bl_status st_area; /* in/out beyond one operand area: BL_ERR_SHAPE, tested before i */
  bl_status st;      /* check_cfg, then the shapes the route does not take */
  uint16_t lgk, q, p, words, total, lim;
  rq_t rq;
  msp_status cm_st;     /* bl_lea_cmac_rq_prepare's status (the resident route needs MSP_SUCCESS) */
  bl_lea_cmac_rq_t cm;  /* the bins' complex MACs + requantisation, prepared for every block row */
} res_layer_t;
static res_layer_t res_layer;

static res_layer_t *res_layer_for(const int16_t *spectra, uint16_t in_features, uint16_t out_features,
                                        const bl_fft_cfg *cfg, int16_t shift_z) {
  res_layer_t *L = &res_layer;
  if (L->spectra == spectra && L->in_features == in_features && L->out_features == out_features &&
      L->k == cfg->k && L->tw_k == cfg->tw_k && L->tw == cfg->tw && L->shift_z == shift_z) {
    return L;
  }
  L->spectra = 0; /* invalid while being rebuilt */
  const uint16_t k = cfg->k, half = (uint16_t)(k / 2u);
  L->st_area = in_features > BL_LEA_AREA || out_features > BL_LEA_AREA ? BL_ERR_SHAPE : BL_OK;
  L->st = check_cfg(cfg);
  L->lgk = lg2(k);
  L->q = (uint16_t)((uint16_t)(in_features + k - 1u) >> L->lgk);
  L->p = (uint16_t)((uint16_t)(out_features + k - 1u) >> L->lgk);
  L->words = (uint16_t)(L->q << L->lgk);
  if (L->st == BL_OK && ((L->q & 1u) != 0u || half < 2u || !rq_init(&L->rq, shift_z))) L->st = BL_ERR_SHAPE;
  uint16_t total = 0u; /* p * words, by addition (bounded: no overflow, no multiply helper) */
  for (uint16_t t = 0; t < L->p && L->st == BL_OK; t++) {
    total = (uint16_t)(total + L->words);
    if (total > BL_LEA_AREA) L->st = BL_ERR_SHAPE;
  }
  L->total = total;
  L->lim = (uint16_t)(2u * (16383u - 4u * (uint16_t)(L->lgk - 1u)));
  /* bins 1 .. k/2 - 1 of a block row: q-element complex MACs over the resident input spectra (every
   * block's bin f at complex index f + j k/2), the row's weight spectra the one operand that changes */
  L->cm_st = L->st == BL_OK
                 ? bl_lea_cmac_rq_prepare(&L->cm, L->q, bl_lea_xt + 2, 2u, (uint16_t)(half - 1u), bl_lea_result,
                                          half, L->rq.half, L->rq.n, L->rq.p)
                 : MSP_SIZE_ERROR;
  L->in_features = in_features;
  L->out_features = out_features;
  L->k = k;
  L->tw_k = cfg->tw_k;
  L->tw = cfg->tw;
  L->shift_z = shift_z;
  L->spectra = spectra;
  return L;
}

/* Block rows [i0, i1) of a layer whose input spectra (q blocks) and whole weight spectra (p block rows) fit
 * the LEA-RAM operand areas: the resident route (bl_lea_internal.h, "Layer residency"). The areas are staged by
 * DMA only when they do not already hold this layer's data (the first block row after an input FFT or a
 * reset), then as block_row_strided — one strided complex MAC per bin over the q blocks, the two real bins on
 * the MPY32 — but the requantised bins and their Hermitian completion go straight to their bit-reversed,
 * swapped slots of the inverse's buffer, so the inverse is the LEA FFT command alone (bl_lea_fft_nobrev).
 * The layer's checks, derivations and staging are done once per call, then each row: a call for a whole
 * layer (codegen's coarse tasks) pays them once instead of once a row (~300 CPU cycles a row on the MSP430,
 * most of them FRAM wait states of the entry's straight-line code).
 * Returns BL_ERR_SHAPE, before any row, for shapes it does not take (the caller then takes the strided
 * route). */
static inline __attribute__((always_inline)) bl_status rows_resident(const int16_t *xs, uint16_t in_features,
                                                                     const int16_t *spectra, const bl_fft_cfg *cfg,
                                                                     uint16_t i0, uint16_t i1, int16_t shift_z,
                                                                     int16_t shift_out, const int32_t *bias_out,
                                                                     int16_t *y, uint16_t out_features, int relu) {
  res_layer_t *L = res_layer_for(spectra, in_features, out_features, cfg, shift_z);
  if (L->st_area != BL_OK) return L->st_area; /* 16-bit sums below */
  if (i0 >= i1 || i1 > L->p) return BL_ERR_ARG;
  if (L->st != BL_OK) return L->st;
  /* the finish loop takes these; otherwise finish_rows, or (relu) the caller finishes and clamps */
  const int fast_finish = bias_out != 0 && shift_out <= 0 && shift_out >= -15;
  if (relu && !fast_finish) return BL_ERR_SHAPE;
  const uint16_t k = cfg->k, half = (uint16_t)(k / 2u), q = L->q, words = L->words, total = L->total;
  const rq_t rq = L->rq;
  if (bl_lea_res_w != spectra || bl_lea_res_w_n != total) {
    bl_lea_res_drop();
    bl_lea_dma_copy16(bl_lea_st, spectra, total);
    bl_lea_res_w = spectra;
    bl_lea_res_w_n = total;
  }
  if (bl_lea_res_x != xs || bl_lea_res_x_n != words) {
    bl_lea_dma_copy16(bl_lea_xt, xs, words);
    bl_lea_res_x = xs;
    bl_lea_res_x_n = words;
  }
  const uint8_t *br = brev_for(k);
  int16_t *buf = bl_lea_fft_buf;
  const uint16_t lim = L->lim;
  const int16_t *sw = bl_lea_st + mul16(i0, words); /* block row i's weight spectra */
  uint16_t r0 = mul16(i0, k);                       /* its first output row */
  for (uint16_t i = i0; i < i1; i++, sw += words, r0 = (uint16_t)(r0 + k)) {
    /* bins 1 .. k/2 - 1: one strided complex MAC each over the q blocks, each result requantised into pz by
     * the CPU while the LEA runs the next (bl_lea_cmac_rq_run); a result at a bound (sat): the exact way */
    int16_t pz[BL_LEA_FFT_MAX]; /* the requantised bins f = 1 .. k/2 - 1, (re, im) */
    uint16_t sat = 1u;
    const msp_status mst =
        L->cm_st == MSP_SUCCESS
            ? bl_lea_cmac_rq_run(&L->cm, sw + 2, pz, &sat)
            : bl_lea_cmac_many(q, bl_lea_xt + 2, sw + 2, 2u, (uint16_t)(half - 1u), bl_lea_result, half);
    if (mst != MSP_SUCCESS) return BL_ERR_ARG;
    const uint32_t dc = real_bin_sum(bl_lea_xt, sw, k, q), ny = real_bin_sum(bl_lea_xt + 1, sw + 1, k, q);
    /* The exactness test of the LEA inverse (docs/kernels.md, "pair bound"): inputs f and f + k/2 meet in
     * the first stage, so with n(z) >= |z| (mag_bound) every value entering a later stage is bounded by
     * max over f of (n(Z[f]) + n(Z[f + k/2])) / 2 plus a rounding allowance of 4 per stage; the inverse is the
     * spec's when that stays <= 16383 (no component reaches the t = k/4 twiddle's +-16384 edge). For the
     * Hermitian Z: pairs (P0, Pk/2) and (P[f], P[k/2 - f]), f = 1 .. k/2 - 1. */
    uint16_t nrm[BL_LEA_FFT_MAX / 2u];
    const int16_t v0 = bl_lea_requant(bl_lea_wrap(dc), shift_z), v1 = bl_lea_requant(bl_lea_wrap(ny), shift_z);
    int16_t *const d = buf + 2u * br[half];
    if (sat) rq_exact(pz, &rq, shift_z, sw, k, q, half); /* a result at a bound: the exact way */
    buf[0] = 0; /* swapped (im, re); bit reversal keeps slot 0 */
    buf[1] = v0;
    d[0] = 0;
    d[1] = v1;
    place_bins(pz, brev_at + 1, brev_at + (k - 1u), nrm + 1, (uint16_t)(half - 1u));
    /* LEA transforms while the CPU tests the pair bound (speculatively: a spectrum that fails it is placed
     * again from pz, v0, v1 for the ref inverse) */
    if (bl_lea_fft_nobrev_begin(buf, k) != MSP_SUCCESS) return BL_ERR_ARG;
    nrm[0] = mag_bound(v0, 0);
    int ok = pair_ok(nrm[0], mag_bound(v1, 0), lim);
    for (uint16_t f = 1u; f <= (uint16_t)(half >> 1) && ok; f++) ok = pair_ok(nrm[f], nrm[half - f], lim);
    if (bl_lea_done() != MSP_SUCCESS) return BL_ERR_ARG;
    const int16_t *o = buf + 1; /* LEA's forward FFT of the swapped spectrum: real parts in the odd slots */
    if (!ok) { /* the ref inverse on the CPU, on the spectrum placed again */
      const bl_status st = cpu_inverse_placed(buf, pz, v0, v1, nrm, br, cfg);
      if (st != BL_OK) return st;
      o = buf;
    }
    const uint16_t rows = (uint16_t)(out_features - r0 < k ? out_features - r0 : k); /* r0 < out_features */
    if (fast_finish) {
      finish_block(o, (uint16_t)-shift_out, bias_out + r0, y + r0, rows, relu);
    } else {
      const bl_status st = finish_rows(o, shift_out, bias_out == 0 ? 0 : bias_out + r0, y + r0, rows);
      if (st != BL_OK) return st;
    }
  }
  return BL_OK;
}
#endif

/* Block row i (< p, checked by the caller) by the routes for layers the resident route does not take. */
static bl_status block_row_general(const int16_t *xs, uint16_t in_features, const int16_t *spectra,
                                   const bl_fft_cfg *cfg, int16_t shift_z, int16_t shift_out,
                                   const int32_t *bias_out, int16_t *y, uint16_t out_features, uint16_t i,
                                   int16_t *work) {
  const uint16_t k = cfg->k;
  const uint32_t q = bl_lea_blocks(in_features, k);
  bl_status st = check_cfg(cfg);
  if (st != BL_OK) return st;
  int16_t *buf = bl_lea_fft_target(k, work);
  const int16_t *srow = spectra + (uint32_t)i * q * k;
#if MSP_HAVE_CMAC_MANY
  if (buf == bl_lea_fft_buf && MSP_IFFT_SWAP_ROUTE) {
    int safe = 0;
    st = block_row_strided(xs, srow, k, (uint16_t)q, shift_z, buf, &safe);
    if (st == BL_OK) {
      const uint32_t r0 = (uint32_t)i * k;
      return strided_inverse_finish(buf, cfg, safe, shift_out, bias_out == 0 ? 0 : bias_out + r0, y + r0,
                                    (uint16_t)(out_features - r0 < k ? out_features - r0 : k));
    }
    if (st != BL_ERR_SHAPE) return st;
    st = BL_OK; /* a shape the strided route does not take: the staged path below */
  }
#endif
  for (uint16_t f0 = 0; f0 <= k / 2u; f0 = (uint16_t)(f0 + BL_LEA_BINS_MAX)) {
    bl_lea_bins acc;
    bl_lea_bins_init(&acc, k, f0);
    const int16_t *xj = xs, *sj = srow;
    for (uint32_t j = 0; j < q && st == BL_OK; j++, xj += k, sj += k) st = bl_lea_bins_push(&acc, xj, 1u, sj, 1u);
    if (st == BL_OK) st = bl_lea_bins_flush(&acc);
    if (st != BL_OK) return st;
    for (uint16_t b = 0; b < acc.bins; b++) {
      bl_ref_store_bin(buf, k, (uint16_t)(f0 + b), bl_lea_requant(bl_lea_wrap(bl_lea_acc[2u * b]), shift_z),
                       bl_lea_requant(bl_lea_wrap(bl_lea_acc[2u * b + 1u]), shift_z));
    }
  }
  bl_ref_hermitian_complete(buf, k);
  st = bl_lea_fft_run(buf, cfg, true);
  if (st != BL_OK) return st;
  const uint32_t row0 = (uint32_t)i * k;
  const uint16_t rows = (uint16_t)(out_features - row0 < k ? out_features - row0 : k);
  int16_t *yr = y + row0;
  const int16_t *o = buf;
  if (bias_out != 0) {
    const int32_t *br = bias_out + row0;
    for (uint16_t r = 0; r < rows; r++, o += 2) *yr++ = bl_lea_finish(*o, shift_out, *br++);
  } else {
    for (uint16_t r = 0; r < rows; r++, o += 2) *yr++ = bl_lea_finish(*o, shift_out, 0);
  }
  return BL_OK;
}

bl_status bl_linear_fft_block_q15(const int16_t *xs, uint16_t in_features, const int16_t *spectra,
                                  const bl_fft_cfg *cfg, int16_t shift_z, int16_t shift_out,
                                  const int32_t *bias_out, int16_t *y, uint16_t out_features, uint16_t i0,
                                  uint16_t i1, int16_t *work) {
  if (xs == 0 || spectra == 0 || cfg == 0 || y == 0 || work == 0) return BL_ERR_ARG;
  const uint16_t k = cfg->k;
  if (k < 2u || in_features == 0 || out_features == 0) return BL_ERR_SHAPE;
#if MSP_HAVE_CMAC_MANY
  if (bl_lea_fft_on_lea(k) && MSP_IFFT_SWAP_ROUTE) {
    const bl_status rst =
        rows_resident(xs, in_features, spectra, cfg, i0, i1, shift_z, shift_out, bias_out, y, out_features, 0);
    if (rst != BL_ERR_SHAPE) return rst;
  }
#endif
  if (i0 >= i1 || i1 > bl_lea_blocks(out_features, k)) return BL_ERR_ARG;
  for (uint16_t i = i0; i < i1; i++) {
    const bl_status st =
        block_row_general(xs, in_features, spectra, cfg, shift_z, shift_out, bias_out, y, out_features, i, work);
    if (st != BL_OK) return st;
  }
  return BL_OK;
}

/* The FFT-path block row with the ReLU that follows the layer applied to its rows (bl_kernels.h, fused
 * requantise + ReLU; codegen/fusion.py lists it for lea): the resident route clamps in its finish loop;
 * any other route writes the rows as bl_linear_fft_block_q15 and clamps them after (the same values). */
bl_status bl_linear_fft_block_relu_q15(const int16_t *xs, uint16_t in_features, const int16_t *spectra,
                                       const bl_fft_cfg *cfg, int16_t shift_z, int16_t shift_out,
                                       const int32_t *bias_out, int16_t *y, uint16_t out_features, uint16_t i0,
                                       uint16_t i1, int16_t *work) {
#if MSP_HAVE_CMAC_MANY
  if (xs != 0 && spectra != 0 && cfg != 0 && y != 0 && work != 0 && in_features != 0 && out_features != 0 &&
      bl_lea_fft_on_lea(cfg->k) && MSP_IFFT_SWAP_ROUTE) {
    const bl_status rst =
        rows_resident(xs, in_features, spectra, cfg, i0, i1, shift_z, shift_out, bias_out, y, out_features, 1);
    if (rst != BL_ERR_SHAPE) return rst;
  }
#endif
  const bl_status st = bl_linear_fft_block_q15(xs, in_features, spectra, cfg, shift_z, shift_out, bias_out, y,
                                               out_features, i0, i1, work);
  if (st != BL_OK) return st;
  const uint32_t r0 = (uint32_t)i0 * cfg->k;
  const uint32_t r1 = (uint32_t)i1 * cfg->k < out_features ? (uint32_t)i1 * cfg->k : out_features;
  for (uint32_t r = r0; r < r1; r++) y[r] = y[r] > 0 ? y[r] : 0;
  return BL_OK;
}
