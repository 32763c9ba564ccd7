/* batteryless inference kernels: one API, several backends (firmware/kernels/{ref,lea,cmsis}/, same file
 * names in each). The `ref` backend is portable C11 and computes the numeric spec (docs/numeric-spec.md,
 * host/batteryless/spec.py) bit for bit. docs/kernels.md describes every kernel's unit of work.
 *
 * Conventions
 *   - Activations are int16 with per-tensor fraction bits, channels-first: linear x[in_features],
 *     conv x[C][H][W] (conv1d / pool1d: H = 1). Batch size is 1.
 *   - Weights: int16 (`_w16`) or int8 (`_w8`, the artifact's weight_bits = 8). Dense linear w[rows][cols],
 *     dense conv w[O][C][KH][KW]; block-circulant w[p][q][k](+[KH][KW]) with the first-column rule
 *     W[i*k + r][j*k + c] = w[i][j][(r - c) mod k]. Weight spectra (FFT path) are int16 packed per block:
 *     [Re 0, Re k/2, Re 1, Im 1, ..., Re k/2-1, Im k/2-1], layout spectra[p][q][k](+[KH][KW]).
 *   - Accumulators are 32-bit two's complement and wrap (computed with uint32_t, so never undefined).
 *     64-bit arithmetic is used only where the spec needs it: rshift_round's exact rounding add and the
 *     FFT path's final rescale + bias (see requant.c).
 *   - The caller supplies all memory. Kernels never allocate and keep no state between calls.
 *   - Every layer kernel computes one *unit of work* (a row range, an output block, ...) and never writes
 *     its own inputs, so a checkpointing runtime (FLEX) can commit after any call and re-run the next one
 *     after a power failure with the same result. bl_mac_step_* (mac_step.c) cuts a direct-path unit
 *     further, over input channels, with a double-buffered int32 partial: any granularity.
 *   - Sizes are uint16_t (int is 16 bits on MSP430); flat element counts are uint32_t.
 */
#ifndef BL_KERNELS_H
#define BL_KERNELS_H

#include <stdbool.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef enum {
  BL_OK = 0,
  BL_ERR_ARG = 1,      /* NULL pointer where one is required, or an empty / out-of-range work unit */
  BL_ERR_SHAPE = 2,    /* inconsistent sizes (output size does not follow from input, kernel, stride...) */
  BL_ERR_FFT_SIZE = 3, /* FFT length not a power of two >= 2, or twiddle table not a multiple of it */
} bl_status;

/* ---- requant.c: the spec's integer primitives ------------------------------------------------------- */
int16_t bl_sat16_s32(int32_t v);
int16_t bl_sat16_s64(int64_t v);
/* floor(v / 2^s) for s >= 0, defined for negative v on every compiler (no implementation-defined >>). */
int32_t bl_asr_s32(int32_t v, uint16_t s);
int64_t bl_asr_s64(int64_t v, uint16_t s);
/* The spec's rshift_round: s > 0: floor((v + 2^(s-1)) / 2^s), the rounding add computed exactly in 64
 * bits; s <= 0: v * 2^-s. Exact for |v| <= 2^40 and any s, except that a left-shifted result beyond
 * +-2^62 is returned as +-2^62 (the callers saturate to int16 after adding at most an int32, so the
 * saturated result is still exact). */
int64_t bl_rshift_round_s64(int64_t v, int16_t s);
/* sat16(rshift_round(acc, shift)): the requantisation of a wrapped 32-bit accumulator. */
int16_t bl_requant_s32(int32_t acc, int16_t shift);
/* wrap32 of a uint32_t accumulator to int32_t without implementation-defined conversion. */
int32_t bl_wrap_s32(uint32_t acc);

/* ---- fft_q15.c: fixed-point radix-2 FFT, in place on k interleaved complex int16 (re, im, re, im ...) --
 * Forward: DFT(z)/k; inverse: IDFT(z) (numpy scale). 1/2 scaling per stage, rounding and saturation exactly
 * as the spec. `tw` holds tw_k/2 pairs (Wr, Wi) of the FORWARD twiddles of length tw_k:
 *   Wr[t] = q(cos(2 pi t / tw_k)), Wi[t] = q(-sin(2 pi t / tw_k)), q(v) = clamp(floor(v*32768 + 0.5)),
 * t = 0 .. tw_k/2 - 1. tw_k must be a multiple of k (a table for the largest block serves every smaller
 * one). The inverse uses Wi_inv = sat16(-Wi), which equals q(+sin) for every power-of-two length. */
typedef struct {
  uint16_t k;        /* transform / block length, a power of two >= 2 */
  uint16_t tw_k;     /* length the table was generated for (power of two, multiple of k) */
  const int16_t *tw; /* tw_k/2 (Wr, Wi) pairs, see above */
} bl_fft_cfg;

bl_status bl_fft_q15(int16_t *z, const bl_fft_cfg *cfg, bool inverse);
/* Number of int16 in the `work` scratch buffer of the FFT-path layer kernels. */
#define BL_FFT_WORK_LEN(k) (2u * (uint32_t)(k))

/* ---- linear.c ----------------------------------------------------------------------------------------
 * y[r] = sat16(rshift_round(wrap32(sum_c W[r][c] x[c] + bias[r]), shift)), shift = in_frac + weight_frac -
 * out_frac; bias (int32 at in_frac + weight_frac) may be NULL. Unit of work: output rows [r0, r1). */
bl_status bl_linear_dense_w16(const int16_t *x, uint16_t in_features, const int16_t *w, const int32_t *bias,
                              int16_t shift, int16_t *y, uint16_t out_features, uint16_t r0, uint16_t r1);
bl_status bl_linear_dense_w8(const int16_t *x, uint16_t in_features, const int8_t *w, const int32_t *bias,
                             int16_t shift, int16_t *y, uint16_t out_features, uint16_t r0, uint16_t r1);
/* Block-circulant, direct: w[p][q][k], p = ceil(out/k), q = ceil(in/k). Natural unit: one block of k rows. */
bl_status bl_linear_circ_w16(const int16_t *x, uint16_t in_features, const int16_t *w, uint16_t k,
                             const int32_t *bias, int16_t shift, int16_t *y, uint16_t out_features, uint16_t r0,
                             uint16_t r1);
bl_status bl_linear_circ_w8(const int16_t *x, uint16_t in_features, const int8_t *w, uint16_t k,
                            const int32_t *bias, int16_t shift, int16_t *y, uint16_t out_features, uint16_t r0,
                            uint16_t r1);
/* Block-circulant, FFT path, step (a): packed spectra of input blocks [j0, j1) into xs[q][k] (x padded
 * with zeros to q*k). work: BL_FFT_WORK_LEN(k) int16. */
bl_status bl_linear_fft_input_q15(const int16_t *x, uint16_t in_features, const bl_fft_cfg *cfg, int16_t *xs,
                                  uint16_t j0, uint16_t j1, int16_t *work);
/* Step (b): output blocks [i0, i1) (block i: rows i*k .. min(i*k+k, out_features)-1) from xs[q][k] and
 * spectra[p][q][k]: per block, frequency MAC over j, requantise by shift_z = in_frac + spectra_frac - log2 k -
 * spectrum_frac, Hermitian completion, inverse FFT, then y = sat16(rshift_round(o, shift_out) + bias_out),
 * shift_out = spectrum_frac - out_frac; bias_out (int32 at out_frac) may be NULL. A range, as step (a): a
 * backend may do a layer's per-call work once for all its blocks (lea). work: BL_FFT_WORK_LEN(k) int16. */
bl_status bl_linear_fft_block_q15(const int16_t *xs, uint16_t in_features, const int16_t *spectra,
                                  const bl_fft_cfg *cfg, int16_t shift_z, int16_t shift_out,
                                  const int32_t *bias_out, int16_t *y, uint16_t out_features, uint16_t i0,
                                  uint16_t i1, int16_t *work);

/* ---- conv.c ------------------------------------------------------------------------------------------
 * conv2d on x[C][H][W] -> y[O][OH][OW] with zero padding (ph, pw) on each side and stride (sh, sw);
 * OH = (H + 2 ph - KH) / sh + 1 (checked). conv1d is conv2d with H = KH = sh = 1, ph = 0. */
typedef struct {
  uint16_t in_ch, in_h, in_w;
  uint16_t out_ch, out_h, out_w;
  uint16_t kh, kw, sh, sw, ph, pw;
} bl_conv_geom;

bl_status bl_conv_geom_check(const bl_conv_geom *g);
/* Direct paths. Unit of work: output channels [o0, o1) x output rows [oy0, oy1). */
bl_status bl_conv_dense_w16(const int16_t *x, const bl_conv_geom *g, const int16_t *w, const int32_t *bias,
                            int16_t shift, int16_t *y, uint16_t o0, uint16_t o1, uint16_t oy0, uint16_t oy1);
bl_status bl_conv_dense_w8(const int16_t *x, const bl_conv_geom *g, const int8_t *w, const int32_t *bias,
                           int16_t shift, int16_t *y, uint16_t o0, uint16_t o1, uint16_t oy0, uint16_t oy1);
/* Block-circulant direct: w[p][q][k][KH][KW]. */
bl_status bl_conv_circ_w16(const int16_t *x, const bl_conv_geom *g, const int16_t *w, uint16_t k,
                           const int32_t *bias, int16_t shift, int16_t *y, uint16_t o0, uint16_t o1, uint16_t oy0,
                           uint16_t oy1);
bl_status bl_conv_circ_w8(const int16_t *x, const bl_conv_geom *g, const int8_t *w, uint16_t k,
                          const int32_t *bias, int16_t shift, int16_t *y, uint16_t o0, uint16_t o1, uint16_t oy0,
                          uint16_t oy1);
/* FFT path, step (a): packed spectra of every channel block at every position of input rows [y0, y1):
 * xs[q*k][H][W], xs[(j*k + b)][y][x] = packed bin b of channels j*k .. j*k+k-1 at (y, x) (channels beyond
 * in_ch are zero). Same size as the input padded to q*k channels. work: BL_FFT_WORK_LEN(k). */
bl_status bl_conv_fft_input_q15(const int16_t *x, const bl_conv_geom *g, const bl_fft_cfg *cfg, int16_t *xs,
                                uint16_t y0, uint16_t y1, int16_t *work);
/* Step (b): output channel block i (channels i*k .. min(i*k+k, out_ch)-1) at output rows [oy0, oy1), from
 * xs and spectra[p][q][k][KH][KW]; shifts and bias_out as bl_linear_fft_block_q15. */
bl_status bl_conv_fft_block_q15(const int16_t *xs, const bl_conv_geom *g, const int16_t *spectra,
                                const bl_fft_cfg *cfg, int16_t shift_z, int16_t shift_out, const int32_t *bias_out,
                                int16_t *y, uint16_t i, uint16_t oy0, uint16_t oy1, int16_t *work);

/* ---- fused requantise + ReLU (optional: only backends that declare the capability implement these) ----
 * bl_linear_* / bl_conv_* direct paths with the spec's relu applied in the requantisation step:
 * y = max(0, sat16(rshift_round(...))), bit for bit the weight layer followed by bl_relu_q15 on its unit
 * (a ReLU is max(0, y) on the same int16 value). Codegen calls them instead of a separate ReLU task only for
 * backends listed in codegen/fusion.py (today: cmsis, whose requantisation saturates with USAT #15 instead
 * of SSAT #16 at no extra cost, and lea's FFT-path block rows); other backends need not define them. Same
 * units of work, same idempotence:
 * a call writes every output of its unit and never reads y. */
bl_status bl_linear_dense_relu_w16(const int16_t *x, uint16_t in_features, const int16_t *w, const int32_t *bias,
                                   int16_t shift, int16_t *y, uint16_t out_features, uint16_t r0, uint16_t r1);
bl_status bl_linear_dense_relu_w8(const int16_t *x, uint16_t in_features, const int8_t *w, const int32_t *bias,
                                  int16_t shift, int16_t *y, uint16_t out_features, uint16_t r0, uint16_t r1);
bl_status bl_linear_circ_relu_w16(const int16_t *x, uint16_t in_features, const int16_t *w, uint16_t k,
                                  const int32_t *bias, int16_t shift, int16_t *y, uint16_t out_features,
                                  uint16_t r0, uint16_t r1);
bl_status bl_linear_circ_relu_w8(const int16_t *x, uint16_t in_features, const int8_t *w, uint16_t k,
                                 const int32_t *bias, int16_t shift, int16_t *y, uint16_t out_features,
                                 uint16_t r0, uint16_t r1);
bl_status bl_conv_dense_relu_w16(const int16_t *x, const bl_conv_geom *g, const int16_t *w, const int32_t *bias,
                                 int16_t shift, int16_t *y, uint16_t o0, uint16_t o1, uint16_t oy0, uint16_t oy1);
bl_status bl_conv_dense_relu_w8(const int16_t *x, const bl_conv_geom *g, const int8_t *w, const int32_t *bias,
                                int16_t shift, int16_t *y, uint16_t o0, uint16_t o1, uint16_t oy0, uint16_t oy1);
bl_status bl_conv_circ_relu_w16(const int16_t *x, const bl_conv_geom *g, const int16_t *w, uint16_t k,
                                const int32_t *bias, int16_t shift, int16_t *y, uint16_t o0, uint16_t o1,
                                uint16_t oy0, uint16_t oy1);
bl_status bl_conv_circ_relu_w8(const int16_t *x, const bl_conv_geom *g, const int8_t *w, uint16_t k,
                               const int32_t *bias, int16_t shift, int16_t *y, uint16_t o0, uint16_t o1,
                               uint16_t oy0, uint16_t oy1);
/* The FFT path's block rows [i0, i1) with the ReLU (lea: applied in its final rescale loop). */
bl_status bl_linear_fft_block_relu_q15(const int16_t *xs, uint16_t in_features, const int16_t *spectra,
                                       const bl_fft_cfg *cfg, int16_t shift_z, int16_t shift_out,
                                       const int32_t *bias_out, int16_t *y, uint16_t out_features, uint16_t i0,
                                       uint16_t i1, int16_t *work);

/* ---- mac_step.c: the resumable direct path — one kernel skeleton for fine-grained atomic steps -------
 * A direct-path layer (linear or conv, dense k = 1 or block-circulant k > 1) cut into steps small enough
 * for one power-on period. A step covers a unit of outputs (output channels x rows x columns) and a range
 * of input channels [c0, c1) (linear: input columns); it accumulates
 *   acc[idx] = (c0 == 0 ? 0 : acc_in[idx]) + sum over c in [c0, c1), live taps of W[o][c][dy][dx] x[...]
 * (wrap32, the same terms as the whole-unit kernels, so the result is identical) for every output idx =
 * o*OH*OW + oy*OW + ox of the unit, then
 *   - c1 < in_ch: acc_out[idx] = acc (int32, a partial for the next step);
 *   - c1 == in_ch (the last step): y[idx] = sat16(rshift_round(wrap32(acc + bias[o]), shift)) — exactly
 *     bl_conv_* / bl_linear_* (bias may be NULL).
 * Idempotent: a step reads x, W and acc_in and writes only acc_out or y; the caller alternates two partial
 * buffers (acc_in != acc_out, both indexed like y), so re-running a step after a power failure reads the
 * same partial and writes the same values (no write-after-read hazard on NVM). Linear layers use the conv
 * geometry with in_h = in_w = out_h = out_w = kh = kw = sh = sw = 1, ph = pw = 0 (the dense / circulant
 * weight layouts then coincide with the conv ones). Backends may replace the inner loop; the unit, the
 * partial layout and the last-step rule are the API. */
typedef struct {
  uint16_t o0, o1;   /* output channels (linear: output rows) [o0, o1) */
  uint16_t oy0, oy1; /* output rows [oy0, oy1) (linear: 0, 1) */
  uint16_t ox0, ox1; /* output columns [ox0, ox1) (linear: 0, 1) */
  uint16_t c0, c1;   /* input channels (linear: input columns) accumulated by this step */
} bl_mac_unit;

bl_status bl_mac_step_w16(const int16_t *x, const bl_conv_geom *g, const int16_t *w, uint16_t k,
                          const int32_t *acc_in, int32_t *acc_out, const int32_t *bias, int16_t shift, int16_t *y,
                          const bl_mac_unit *u);
bl_status bl_mac_step_w8(const int16_t *x, const bl_conv_geom *g, const int8_t *w, uint16_t k,
                         const int32_t *acc_in, int32_t *acc_out, const int32_t *bias, int16_t shift, int16_t *y,
                         const bl_mac_unit *u);

/* Loop continuation: a layer's steps as a grid, so one dispatch entry serves every step of the layer and the
 * kernel computes its position from the step index j (no per-step table). Steps run o-major:
 *   j = ((io * n_y + iy) * n_x + ix) * n_c + ic,   unit: o0 = io*s_o, oy0 = iy*s_y, ox0 = ix*s_x,
 *   c0 = ic*s_c, each end clipped to the geometry (the last step of a dimension may be short).
 * Partials alternate as codegen's chains do: ic = 0 reads none, odd ic reads acc0 and writes acc1, even
 * ic > 0 reads acc1 and writes acc0; the last channel step writes y. The divisions by n_c, n_x, n_y are
 * multiplications: q = ((j * m) >> 16) >> sh with (m, sh) that codegen checked exact for every j of the
 * layer (a 16-bit software division costs more than a fine step's MACs on the MSP430).
 * pix != NULL: every step is one output pixel of one output channel (s_o = s_y = s_x = 1) of a conv layer,
 * and the fields after m_y are the layer's constants, precomputed by codegen from the same geometry as g
 * (whose output size it checked): the pixel step reads them instead of re-deriving and re-checking the
 * geometry every step (on the MSP430 that was most of a ~1,300-instruction 9-MAC step). With pixel steps,
 * p = j / n_c = o * out_h * out_w + (oy * out_w + ox) is the output element's index itself, and
 * pix[oy * out_w + ox] holds what the padding decides for that pixel: the offset of its first live input
 * in a channel plane, its first live tap, and how many rows and columns of taps are live. */
typedef struct {
  uint16_t x_off;      /* (iy0 + dy0) * in_w + ix0 + dx0: the first live input of the window */
  uint16_t t0;         /* dy0 * kw + dx0: the first live tap */
  uint16_t rows, cols; /* live tap rows dy1 - dy0 and columns dx1 - dx0 (0: no live tap) */
} bl_mac_pixel;
typedef struct {
  uint16_t n_y, n_x, n_c;      /* steps along output rows, output columns, input channels */
  uint16_t s_o, s_y, s_x, s_c; /* output channels, rows, columns, input channels per step */
  uint16_t m_c, m_x, m_y;      /* reciprocals of n_c, n_x, n_y ... */
  uint16_t n_steps;            /* pixel steps: steps of the layer (j < n_steps) */
  uint16_t in_hw, out_hw;      /* in_h * in_w, out_h * out_w */
  uint16_t block_step;         /* k * kh * kw: weights of one block column */
  uint16_t q;                  /* blocks of input channels, ceil(in_ch / k) */
  uint16_t m_k, m_o;           /* reciprocals of the block size k (exact up to max(in_ch, out_ch)) and out_hw */
  uint8_t sh_c, sh_x, sh_y;    /* ... and the shifts of m_c, m_x, m_y ... */
  uint8_t sh_k, sh_o;          /* ... m_k, m_o after the high word */
  const bl_mac_pixel *pix;     /* per output pixel (out_h * out_w), or NULL: no pixel steps */
} bl_mac_grid;

bl_status bl_mac_step_at_w16(const int16_t *x, const bl_conv_geom *g, const int16_t *w, uint16_t k, int32_t *acc0,
                             int32_t *acc1, const int32_t *bias, int16_t shift, int16_t *y,
                             const bl_mac_grid *grid, uint16_t j);
bl_status bl_mac_step_at_w8(const int16_t *x, const bl_conv_geom *g, const int8_t *w, uint16_t k, int32_t *acc0,
                            int32_t *acc1, const int32_t *bias, int16_t shift, int16_t *y, const bl_mac_grid *grid,
                            uint16_t j);

/* ---- EVE modes over one weight store (docs/eve.md): mac_step.c, kernels/common/eve_sel.c --------------
 * A smaller EVE mode runs a circulant layer on a prefix of the layer's block importance order and, optionally,
 * on fewer output rows; the weights are the full layer's, stored once. The selection is data: */
typedef struct {
  const uint16_t *rank; /* rank[i*q + j]: position of block (i, j) in the layer's importance order
                         * (BL_BLOCK_UNUSED: pruned, used by no mode) */
  uint16_t n;           /* the mode uses the blocks with rank < n: a prefix of the order */
  uint16_t out_rows;    /* output rows (conv: channels) >= out_rows are 0 in this mode, bias included */
} bl_block_sel;
#define BL_BLOCK_UNUSED 0xFFFFu

/* bl_mac_step_* with a block selection (k >= 2): the terms of unused blocks are skipped (the spec counts
 * them as zero), rows >= sel->out_rows get y = 0 at the last step. A whole-unit direct task is one step
 * with c0 = 0, c1 = in_ch (no partial buffers); a linear layer uses the 1x1 conv geometry (see above).
 * mac_step.c: the bl_mac_step_* walk itself with the selection (ref/mac_walk.inc). */
bl_status bl_mac_step_sel_w16(const int16_t *x, const bl_conv_geom *g, const int16_t *w, uint16_t k,
                              const int32_t *acc_in, int32_t *acc_out, const int32_t *bias, int16_t shift,
                              int16_t *y, const bl_mac_unit *u, const bl_block_sel *sel);
bl_status bl_mac_step_sel_w8(const int16_t *x, const bl_conv_geom *g, const int8_t *w, uint16_t k,
                             const int32_t *acc_in, int32_t *acc_out, const int32_t *bias, int16_t shift,
                             int16_t *y, const bl_mac_unit *u, const bl_block_sel *sel);
/* kernels/common/eve_sel.c: bl_conv_fft_block_q15 with a block selection: the frequency MAC skips unused
 * blocks; rows >= out_rows are 0. A linear layer's FFT block is this with the 1x1 geometry and oy 0 .. 1 (xs[q][k] and
 * spectra[p][q][k] are the conv layouts with H = W = KH = KW = 1). */
bl_status bl_conv_fft_block_sel_q15(const int16_t *xs, const bl_conv_geom *g, const int16_t *spectra,
                                    const bl_fft_cfg *cfg, int16_t shift_z, int16_t shift_out,
                                    const int32_t *bias_out, int16_t *y, uint16_t i, uint16_t oy0, uint16_t oy1,
                                    int16_t *work, const bl_block_sel *sel);

/* ---- relu.c: y = max(x, 0); y may equal x (in place is safe to repeat). Unit: elements [0, n). ------- */
bl_status bl_relu_q15(const int16_t *x, int16_t *y, uint32_t n);

/* ---- pool.c: windows KH x KW, stride (sh, sw), no padding, OH = (H - KH) / sh + 1. Unit: channels
 * [c0, c1) of x[C][H][W] -> y[C][OH][OW]. avg: floor((sum + floor(n/2)) / n), n = KH*KW. ------------------ */
typedef struct {
  uint16_t ch, in_h, in_w, out_h, out_w;
  uint16_t kh, kw, sh, sw;
} bl_pool_geom;

bl_status bl_pool_geom_check(const bl_pool_geom *g);
bl_status bl_maxpool_q15(const int16_t *x, const bl_pool_geom *g, int16_t *y, uint16_t c0, uint16_t c1);
bl_status bl_avgpool_q15(const int16_t *x, const bl_pool_geom *g, int16_t *y, uint16_t c0, uint16_t c1);

/* flatten: a no-op on channels-first data (C-major order, as torch.flatten). */

#ifdef __cplusplus
}
#endif

#endif /* BL_KERNELS_H */
