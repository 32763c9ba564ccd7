/* ref backend: the resumable direct path (bl_kernels.h, mac_step.c): one step of a linear / conv layer
 * over a unit of outputs and a range of input channels, with a double-buffered int32 partial. The terms are
 * those of conv.c's conv_direct (same live-tap ranges), only the channel loop is cut into [c0, c1). */
#include "bl_kernels.h"
#include "bl_ref_internal.h"


/* acc += sum over i < n of w[-i] * x[i]: a circulant diagonal walked downwards, the input upwards (no
 * per-MAC wrap test: the caller splits a block's run where the diagonal index wraps). */
#if defined(__MSP430__)
/* On the MSP430 the products go straight to the hardware multiplier the run-time helpers probed at start-up
 * (bl_mpy, firmware/platform/msp430/mspabi.c: the FR5994's MPY32, or mspdebug's classic 16x16 one): its
 * signed multiply-accumulate (MACS) adds each product to RESHI:RESLO, preloaded with the running sum, so a
 * MAC is two register writes instead of a ~9-instruction helper call with its operand moves. The sum is the
 * same mod 2^32 (wrap-32 accumulation). Without a multiplier (bl_mpy null) the portable loops below run. */
extern volatile uint16_t *bl_mpy;
enum { MPY_MPY = 0, MPY_MACS = 3, MPY_OP2 = 4, MPY_RESLO = 5, MPY_RESHI = 6 };
static inline void mac_load(volatile uint16_t *m, uint32_t acc) {
  m[MPY_RESLO] = (uint16_t)acc;
  m[MPY_RESHI] = (uint16_t)(acc >> 16);
}
static inline uint32_t mac_result(volatile uint16_t *m) {
  return (uint32_t)m[MPY_RESLO] | ((uint32_t)m[MPY_RESHI] << 16);
}
#define MAC_LOOP(acc, n, wexpr, xexpr)                                      \
  do {                                                                      \
    volatile uint16_t *m_ = bl_mpy;                                         \
    if (m_ != 0) {                                                          \
      mac_load(m_, acc);                                                    \
      for (; n != 0u; n--) {                                                \
        m_[MPY_MACS] = (uint16_t)(int16_t)(wexpr);                          \
        m_[MPY_OP2] = (uint16_t)(xexpr);                                    \
      }                                                                     \
      return mac_result(m_);                                                \
    }                                                                       \
  } while (0)
#else
#define MAC_LOOP(acc, n, wexpr, xexpr) ((void)0)
#endif

/* Index arithmetic of a step (16x16 products): on the MSP430 straight on the probed multiplier too (a helper
 * call with its argument moves is ~13 instructions, this 3-4; a fine conv step does ~20 of them). */
#if defined(__MSP430__)
static inline uint32_t step_umul16(uint16_t a, uint16_t b) {
  volatile uint16_t *m = bl_mpy;
  if (m == 0) return bl_ref_umul16(a, b);
  m[MPY_MPY] = a;
  m[MPY_OP2] = b;
  return (uint32_t)m[MPY_RESLO] | ((uint32_t)m[MPY_RESHI] << 16);
}
static inline uint16_t step_mul16lo(uint16_t a, uint16_t b) {
  volatile uint16_t *m = bl_mpy;
  if (m == 0) return (uint16_t)(a * b);
  m[MPY_MPY] = a;
  m[MPY_OP2] = b;
  return m[MPY_RESLO];
}
#else
static inline uint32_t step_umul16(uint16_t a, uint16_t b) { return bl_ref_umul16(a, b); }
static inline uint16_t step_mul16lo(uint16_t a, uint16_t b) { return (uint16_t)(a * b); }
#endif
static uint32_t dot_down16(uint32_t acc, const int16_t *w, const int16_t *x, uint16_t n) {
  MAC_LOOP(acc, n, *w--, *x++);
  for (; n != 0u; n--) acc += (uint32_t)bl_ref_mul16(*w--, *x++);
  return acc;
}
static uint32_t dot_down8(uint32_t acc, const int8_t *w, const int16_t *x, uint16_t n) {
  MAC_LOOP(acc, n, *w--, *x++);
  for (; n != 0u; n--) acc += (uint32_t)bl_ref_mul16((int16_t)*w--, *x++);
  return acc;
}
static uint32_t dot_up16(uint32_t acc, const int16_t *w, const int16_t *x, uint16_t n) {
  MAC_LOOP(acc, n, *w++, *x++);
  for (; n != 0u; n--) acc += (uint32_t)bl_ref_mul16(*w++, *x++);
  return acc;
}
static uint32_t dot_up8(uint32_t acc, const int8_t *w, const int16_t *x, uint16_t n) {
  MAC_LOOP(acc, n, *w++, *x++);
  for (; n != 0u; n--) acc += (uint32_t)bl_ref_mul16((int16_t)*w++, *x++);
  return acc;
}
/* one row of a conv window: acc + sum over dx < nx of W[wo + dx] * x[xo + dx] */
static uint32_t dot_row(uint32_t acc, const int16_t *w16, const int8_t *w8, uint32_t wo, const int16_t *x,
                        uint16_t nx) {
  if (w16 != 0) return dot_up16(acc, w16 + wo, x, nx);
  return dot_up8(acc, w8 + wo, x, nx);
}

/* v / k and v % k for the block size k: a shift and a mask when k is a power of two, else a division. A fine
 * step is a few dozen MACs, and a 16-bit division is a ~100-cycle software routine on the MSP430: every
 * per-step quotient below is computed once per step (kdiv) and advanced incrementally per output. */
typedef struct {
  uint16_t k, mask, shift; /* shift: log2 k when k is a power of two (mask = k - 1), else 0xFFFF */
#if defined(__MSP430__)
  uint16_t recip; /* 65536 / k for a power of two k in 2..64 (v / k = high word of v * recip), else 0 */
#endif
} kdiv_t;
static inline __attribute__((always_inline)) kdiv_t kdiv_make(uint16_t k) {
#if defined(__MSP430__)
  /* a variable shift is a loop of single-bit shifts on the MSP430 (~4 instructions per bit): divide by the
   * multiplier's high word instead, for the block sizes codegen uses */
  uint16_t recip = 0u, shift = 0xFFFFu;
  switch (k) {
  case 1u: shift = 0u; break;
  case 2u: recip = 0x8000u; break;
  case 4u: recip = 0x4000u; break;
  case 8u: recip = 0x2000u; break;
  case 16u: recip = 0x1000u; break;
  case 32u: recip = 0x0800u; break;
  case 64u: recip = 0x0400u; break;
  default: break;
  }
  if (recip != 0u && bl_mpy != 0) shift = 1u; /* any value but 0xFFFF: kdiv/kmod take the power-of-two path */
  else if (recip != 0u) {
    recip = 0u;
    shift = 0u;
    for (uint16_t v = k; v > 1u; v >>= 1) shift++;
  }
  kdiv_t d = {k, (uint16_t)(k - 1u), shift, recip};
  return d;
#else
  kdiv_t d = {k, (uint16_t)(k - 1u), 0xFFFFu};
  if (BL_REF_SOFT_DIVIDE && (k & d.mask) == 0u) { /* log2 k by single-bit shifts (no multiply, no loop helper) */
    d.shift = 0u;
    for (uint16_t v = k; v > 1u; v >>= 1) d.shift++;
  }
  return d;
#endif
}
static inline uint16_t kdiv(kdiv_t d, uint16_t v) {
#if defined(__MSP430__)
  if (d.recip != 0u) {
    volatile uint16_t *m = bl_mpy;
    m[MPY_MPY] = v;
    m[MPY_OP2] = d.recip;
    return m[MPY_RESHI];
  }
#endif
  return d.shift != 0xFFFFu ? (uint16_t)(v >> d.shift) : (uint16_t)(v / d.k);
}
static inline uint16_t kmod(kdiv_t d, uint16_t v) {
  return d.shift != 0xFFFFu ? (uint16_t)(v & d.mask) : (uint16_t)(v % d.k);
}
/* a * b for an offset into one of a step's arrays. On the 16-bit target every array lies in the lower
 * 64 KB (small memory model), so the product fits 16 bits: one low-word multiply, none for a factor of 1
 * (strides, 1x1 rows); a 16x16 -> 32 helper call costs ~60 cycles there. Elsewhere a plain product. */
static inline uint32_t imul(uint16_t a, uint16_t b) {
#if BL_REF_SOFT_DIVIDE
  return b == 1u ? a : (a == 0u ? 0u : step_mul16lo(a, b));
#else
  return (uint32_t)a * b;
#endif
}

/* a * b for an index (b may exceed 16 bits on large layers; the 16x16 multiply when it does not) */
static inline uint32_t mul_idx(uint16_t a, uint32_t b) {
  return !BL_REF_SOFT_DIVIDE || b > 0xFFFFu ? (uint32_t)a * b : step_umul16(a, (uint16_t)b);
}

/* Element indices and input coordinates of the general walk: 16-bit on the 16-bit target (every array lies
 * in the lower 64 KB there, and mac_step checks the planes fit), where 32-bit index arithmetic is two
 * instructions per operation and a fine conv step is mostly index arithmetic; 32-bit elsewhere. */
#if BL_REF_SOFT_DIVIDE
typedef uint16_t ix_t;
typedef int16_t sx_t;
#else
typedef uint32_t ix_t;
typedef int32_t sx_t;
#endif
/* bl_ref_live_first / bl_ref_live_end on sx_t coordinates */
static inline uint16_t live_first(sx_t c0, uint16_t taps) {
  return c0 >= 0 ? 0u : ((uint16_t)-c0 < taps ? (uint16_t)-c0 : taps);
}
static inline uint16_t live_end(sx_t c0, uint16_t taps, uint16_t size) {
  const sx_t lim = (sx_t)((sx_t)size - c0);
  return lim <= 0 ? 0u : ((uint16_t)lim < taps ? (uint16_t)lim : taps);
}

/* out == (in + 2 pad - taps) / stride + 1 (bl_ref_conv_geom_check), with a multiplication instead of the
 * division: out - 1 <= (span) / stride < out  <=>  (out - 1) * stride <= span < out * stride. */
static bool out_size_ok(uint16_t out, uint16_t in, uint16_t pad, uint16_t taps, uint16_t stride) {
  if (in != 0u && out != 0u && in <= 0x3FFFu && pad <= 0x1FFFu && stride == 1u) {
    /* the common case in 16-bit arithmetic (a 32-bit compare chain is ~60 instructions on the MSP430) */
    const uint16_t span_p16 = (uint16_t)(in + 2u * pad);
    return span_p16 >= taps && (uint16_t)(span_p16 - taps) == (uint16_t)(out - 1u);
  }
  const uint32_t span_p = (uint32_t)in + 2u * (uint32_t)pad;
  if (in == 0u || span_p < taps || out == 0u) return false;
  const uint32_t span = span_p - taps;
  if (stride == 1u) return span == (uint32_t)(out - 1u); /* the common stride: no multiply */
  return step_umul16((uint16_t)(out - 1u), stride) <= span && span < step_umul16(out, stride);
}

/* the plain walks (mac_linear, mac_step) and the block-selecting ones (mac_linear_sel, mac_step_sel) */
#define MAC_WALK_SEL 0
#include "mac_walk.inc"
#undef MAC_WALK_SEL
#define MAC_WALK_SEL 1
#include "mac_walk.inc"
#undef MAC_WALK_SEL

bl_status bl_mac_step_w16(const int16_t *x, const bl_conv_geom *g, const int16_t *w, uint16_t k,
                          const int32_t *acc_in, int32_t *acc_out, const int32_t *bias, int16_t shift, int16_t *y,
                          const bl_mac_unit *u) {
  if (w == 0) return BL_ERR_ARG;
  return mac_step(x, g, w, 0, k, acc_in, acc_out, bias, shift, y, u);
}

bl_status bl_mac_step_w8(const int16_t *x, const bl_conv_geom *g, const int8_t *w, uint16_t k,
                         const int32_t *acc_in, int32_t *acc_out, const int32_t *bias, int16_t shift, int16_t *y,
                         const bl_mac_unit *u) {
  if (w == 0) return BL_ERR_ARG;
  return mac_step(x, g, 0, w, k, acc_in, acc_out, bias, shift, y, u);
}

/* bl_mac_step_sel_*: the selecting walk (mac_walk.inc). The cmsis backend defines these names
 * itself (cmsis/eve_sel.c: its DSP loops for whole-unit tasks) and gets the walk under BL_REF_SEL's names. */
#ifndef BL_REF_SEL
#define BL_REF_SEL(name) name
#endif
bl_status BL_REF_SEL(bl_mac_step_sel_w16)(const int16_t *x, const bl_conv_geom *g, const int16_t *w, uint16_t k,
                                          const int32_t *acc_in, int32_t *acc_out, const int32_t *bias,
                                          int16_t shift, int16_t *y, const bl_mac_unit *u,
                                          const bl_block_sel *sel) {
  if (w == 0) return BL_ERR_ARG;
  return mac_step_sel(x, g, w, 0, k, acc_in, acc_out, bias, shift, y, u, sel);
}

bl_status BL_REF_SEL(bl_mac_step_sel_w8)(const int16_t *x, const bl_conv_geom *g, const int8_t *w, uint16_t k,
                                         const int32_t *acc_in, int32_t *acc_out, const int32_t *bias,
                                         int16_t shift, int16_t *y, const bl_mac_unit *u,
                                         const bl_block_sel *sel) {
  if (w == 0) return BL_ERR_ARG;
  return mac_step_sel(x, g, 0, w, k, acc_in, acc_out, bias, shift, y, u, sel);
}

/* q = j / n as ((j * m) >> 16) >> sh (bl_mac_grid: exact over the layer's step indices, checked by codegen):
 * the high word of a 16x16 product, then a short 16-bit shift (a variable 32-bit shift is a loop on the
 * MSP430) */
static inline uint16_t grid_div(uint16_t j, uint16_t n, uint16_t m, uint8_t sh) {
  return n == 1u ? j : (uint16_t)((uint16_t)(step_umul16(j, m) >> 16) >> sh);
}

/* min(a + s, end); a >= end gives end (mac_step then finds the unit empty) */
/* a * b, skipping the multiply (a software helper call on the MSP430) when b is 1: most grids step one
 * output row / column / channel at a time */
static inline uint16_t mul1(uint16_t a, uint16_t b) { return b == 1u ? a : step_mul16lo(a, b); }

static inline uint16_t clip(uint16_t a, uint16_t s, uint16_t end) {
  return (uint16_t)(a < end && (uint16_t)(end - a) > s ? a + s : end);
}

/* The pixel step's products on the multiplier found at start-up, its address read once per step (m): the
 * low word (index products, all < 2^16 on the 16-bit target) and the high word (the grid's reciprocals).
 * Elsewhere plain products (m unused). */
#if defined(__MSP430__)
typedef volatile uint16_t *pmpy_t;
static inline uint16_t plo(pmpy_t m, uint16_t a, uint16_t b) {
  m[MPY_MPY] = a;
  m[MPY_OP2] = b;
  return m[MPY_RESLO];
}
static inline uint16_t phi(pmpy_t m, uint16_t a, uint16_t b) {
  m[MPY_MPY] = a;
  m[MPY_OP2] = b;
  return m[MPY_RESHI];
}
#else
typedef const void *pmpy_t;
static inline ix_t plo(pmpy_t m, uint16_t a, uint32_t b) { (void)m; return (ix_t)(a * b); }
static inline uint16_t phi(pmpy_t m, uint16_t a, uint16_t b) { (void)m; return (uint16_t)(((uint32_t)a * b) >> 16); }
#endif
/* j / n with the grid's reciprocal (as grid_div) */
static inline uint16_t pdiv(pmpy_t m, uint16_t j, uint16_t n, uint16_t r, uint8_t sh) {
  return n == 1u ? j : (uint16_t)(phi(m, j, r) >> sh);
}

/* Step j of a conv layer whose grid steps are single output pixels (gr->pix): pixel (o, oy, ox) over input
 * channels [c0, c1), the same terms as mac_step's general walk (same live-tap ranges, same wrap-32 sums),
 * with the layer's values read from the grid's pixel constants and the pixel's table entry (codegen derived
 * them from g and checked its output size) instead of re-derived and re-checked from g every step (~450
 * instructions of a 9-MAC step on the MSP430 before, with the generic walk's ~1,000), and no product in the
 * window: the diagonal's offset d * taps is advanced by additions, so on the MSP430 the whole window
 * accumulates in the multiplier's RESHI:RESLO (loaded once, read once). What j decides is still checked. */
static inline __attribute__((always_inline)) bl_status
pixel_at(const int16_t *x, const bl_conv_geom *g, const int16_t *w16, const int8_t *w8, uint16_t k,
         const int32_t *src, int32_t *dst, const int32_t *bias, int16_t shift, int16_t *y, const bl_mac_grid *gr,
         uint16_t j, uint16_t p, uint16_t ic, uint16_t c0, uint16_t c1) {
#if defined(__MSP430__)
  const pmpy_t m = bl_mpy; /* not null: the caller checked */
#else
  const pmpy_t m = 0;
#endif
  if (j >= gr->n_steps || x == 0 || (w16 == 0 && w8 == 0) || k == 0 || y == 0 || c0 >= c1 ||
      (ic != 0u && src == 0) || (dst != 0 && src == dst) || (c1 != g->in_ch && dst == 0))
    return BL_ERR_ARG;
  /* p = j / n_c (the caller's) = o * out_hw + pixel: the output element's index; the pixel's live window
   * from the layer's table */
  const uint16_t o = pdiv(m, p, gr->out_hw, gr->m_o, gr->sh_o);
  const bl_mac_pixel *pe = gr->pix + (uint16_t)(p - plo(m, o, gr->out_hw));
  const ix_t idx = p;
  uint32_t acc = c0 == 0u ? 0u : (uint32_t)src[idx]; /* wrap32 accumulation */
  const uint16_t rows = pe->rows;
  if (rows != 0u) {
    const uint16_t nx = pe->cols, in_w = g->in_w, in_hw = gr->in_hw, kw = g->kw;
    const uint16_t taps = (uint16_t)plo(m, g->kh, kw);
    const uint16_t ob = pdiv(m, o, k, gr->m_k, gr->sh_k), cb0 = pdiv(m, c0, k, gr->m_k, gr->sh_k);
    const uint16_t rr = (uint16_t)(o - plo(m, ob, k)), cc0 = (uint16_t)(c0 - plo(m, cb0, k));
    /* W[o][c][0][0] = block (o/k, c/k), diagonal d = (o - c) mod k: d * taps walked as mac_step walks d */
    ix_t xc = (ix_t)(pe->x_off + plo(m, c0, in_hw));
    ix_t block = (ix_t)(plo(m, (uint16_t)(plo(m, ob, gr->q) + cb0), gr->block_step) + pe->t0);
    const uint16_t d0 = (uint16_t)(rr >= cc0 ? rr - cc0 : rr + k - cc0);
    const uint16_t rr_t = (uint16_t)plo(m, rr, taps), last_t = (uint16_t)(gr->block_step - taps);
    uint16_t dt = (uint16_t)plo(m, d0, taps), cc = cc0;
#if defined(__MSP430__)
    mac_load(m, acc);
#endif
    for (uint16_t c = c0; c < c1; c++, xc += in_hw) {
      const int16_t *xr = x + xc;
      ix_t wo = (ix_t)(block + dt);
      for (uint16_t r = rows; r != 0u; r--, xr += in_w, wo += kw) {
        const int16_t *xp = xr;
#if defined(__MSP430__)
        if (w16 != 0) {
          const int16_t *wp = w16 + wo;
          for (uint16_t n = nx; n != 0u; n--) {
            m[MPY_MACS] = (uint16_t)*wp++;
            m[MPY_OP2] = (uint16_t)*xp++;
          }
        } else {
          const int8_t *wp = w8 + wo;
          for (uint16_t n = nx; n != 0u; n--) {
            m[MPY_MACS] = (uint16_t)(int16_t)*wp++;
            m[MPY_OP2] = (uint16_t)*xp++;
          }
        }
#else
        acc = dot_row(acc, w16, w8, wo, xp, nx);
#endif
      }
      if (++cc == k) { /* next block of channels */
        cc = 0;
        dt = rr_t;
        block += gr->block_step;
      } else {
        dt = dt == 0u ? last_t : (uint16_t)(dt - taps);
      }
    }
#if defined(__MSP430__)
    acc = mac_result(m);
#endif
  }
  if (dst == 0) {
    if (bias != 0) acc += (uint32_t)bias[o];
    y[idx] = bl_requant_s32(bl_wrap_s32(acc), shift);
  } else {
    dst[idx] = bl_wrap_s32(acc);
  }
  return BL_OK;
}

/* Inlined into its two callers (one per weight width) so that the unit is built in place and the arguments
 * are passed once: on the fine-grained images this decode runs once per step of a few dozen MACs. The unit's
 * bounds are checked by mac_step (a j past the layer's grid gives an empty or out-of-range unit). */
static inline __attribute__((always_inline)) bl_status
mac_step_at(const int16_t *x, const bl_conv_geom *g, const int16_t *w16, const int8_t *w8, uint16_t k, int32_t *acc0,
            int32_t *acc1, const int32_t *bias, int16_t shift, int16_t *y, const bl_mac_grid *gr, uint16_t j) {
  if (g == 0 || gr == 0) return BL_ERR_ARG;
  const uint16_t p = grid_div(j, gr->n_c, gr->m_c, gr->sh_c);
  const uint16_t ic = (uint16_t)(j - mul1(p, gr->n_c));
  bl_mac_unit u;
  u.c0 = mul1(ic, gr->s_c);
  u.c1 = clip(u.c0, gr->s_c, g->in_ch);
  const int32_t *src = ic == 0u ? 0 : ((ic & 1u) != 0u ? acc0 : acc1);
  int32_t *dst = u.c1 == g->in_ch ? 0 : ((ic & 1u) != 0u ? acc1 : acc0);
  if (gr->n_x == 1u && gr->n_y == 1u && g->kh == 1u && g->kw == 1u && g->sh == 1u && g->sw == 1u &&
      g->ph == 0u && g->pw == 0u && g->in_h == 1u && g->in_w == 1u && g->out_h == 1u && g->out_w == 1u) {
    /* a linear layer: straight to its walk, with mac_step's checks of what the grid can get wrong (the
     * geometry is the 1x1 one just tested) */
    u.o0 = mul1(p, gr->s_o);
    u.o1 = clip(u.o0, gr->s_o, g->out_ch);
    const bool last = dst == 0;
    if (x == 0 || (w16 == 0 && w8 == 0) || k == 0 || g->in_ch == 0 || u.o0 >= u.o1 || u.c0 >= u.c1 ||
        (ic != 0u && src == 0) || (last ? y == 0 : dst == 0) || (src != 0 && src == dst))
      return BL_ERR_ARG;
    mac_linear(x, g->in_ch, w16, w8, k, src, dst, bias, shift, y, &u, last);
    return BL_OK;
  }
  /* pixel steps (conv layers: the linear test above fails at its first term for them) */
  if (gr->pix != 0
#if defined(__MSP430__)
      && bl_mpy != 0 /* without a multiplier: the general walk below */
#endif
  )
    return pixel_at(x, g, w16, w8, k, src, dst, bias, shift, y, gr, j, p, ic, u.c0, u.c1);
  const uint16_t p2 = grid_div(p, gr->n_x, gr->m_x, gr->sh_x);
  const uint16_t io = grid_div(p2, gr->n_y, gr->m_y, gr->sh_y);
  u.o0 = mul1(io, gr->s_o);
  u.oy0 = mul1((uint16_t)(p2 - mul1(io, gr->n_y)), gr->s_y);
  u.ox0 = mul1((uint16_t)(p - mul1(p2, gr->n_x)), gr->s_x);
  u.o1 = clip(u.o0, gr->s_o, g->out_ch);
  u.oy1 = clip(u.oy0, gr->s_y, g->out_h);
  u.ox1 = clip(u.ox0, gr->s_x, g->out_w);
  return mac_step(x, g, w16, w8, k, src, dst, bias, shift, y, &u);
}

bl_status bl_mac_step_at_w16(const int16_t *x, const bl_conv_geom *g, const int16_t *w, uint16_t k, int32_t *acc0,
                             int32_t *acc1, const int32_t *bias, int16_t shift, int16_t *y,
                             const bl_mac_grid *grid, uint16_t j) {
  if (w == 0) return BL_ERR_ARG;
  return mac_step_at(x, g, w, 0, k, acc0, acc1, bias, shift, y, grid, j);
}

bl_status bl_mac_step_at_w8(const int16_t *x, const bl_conv_geom *g, const int8_t *w, uint16_t k, int32_t *acc0,
                            int32_t *acc1, const int32_t *bias, int16_t shift, int16_t *y, const bl_mac_grid *grid,
                            uint16_t j) {
  if (w == 0) return BL_ERR_ARG;
  return mac_step_at(x, g, 0, w, k, acc0, acc1, bias, shift, y, grid, j);
}
