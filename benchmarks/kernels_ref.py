"""The `ref` kernels on the real targets: cost per unit of work and bit-exactness on each platform.

Generates one firmware app (deterministic pseudo-random layers as const arrays, each kernel call between two
``bl_mark`` points, a 32-bit FNV-1a hash of every output printed), builds it with the project's CMake for the
host, QEMU's Cortex-M4 (mps2-an386: instruction counts from the TCG plugin) and mspdebug's MSP430FR5994
simulator (MCLK cycles), checks every hash against ``batteryless.spec`` and writes
``benchmarks/results/kernels_ref.json``. Also records each kernel file's code size per toolchain.

    .venv/bin/python benchmarks/kernels_ref.py [--boards host,mps2-an386,msp430fr5994]

``tests/test_kernels_ref_targets.py`` imports :func:`make_app` and :func:`expected_hashes` from here.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "host"))

from batteryless import spec  # noqa: E402

REF_DIR = ROOT / "firmware" / "kernels" / "ref"
RESULTS = ROOT / "benchmarks" / "results" / "kernels_ref.json"


def fnv1a(values) -> int:
    h = 0x811C9DC5
    for v in np.asarray(values, dtype=np.int64).ravel():
        u = int(v) & 0xFFFF
        for byte in (u & 0xFF, u >> 8):
            h = ((h ^ byte) * 0x01000193) & 0xFFFFFFFF
    return h


def twiddle_table(k: int) -> np.ndarray:
    re, im = spec.twiddles(k)
    return np.stack([re, im], axis=1).ravel()


def _arr(name: str, ctype: str, values) -> str:
    vals = ", ".join(str(int(v)) for v in np.ravel(values))
    return f"static const {ctype} {name}[] = {{{vals}}};\n"


def _cases(seed: int = 3) -> dict:
    """Deterministic layers: a 64→32 linear layer (dense, block-circulant k = 8 direct and FFT) and a
    4→8-channel 3×3 conv2d on 8×8 with padding 1 (dense, k = 4 direct and FFT), plus pools."""
    rng = np.random.default_rng(seed)

    def r16(shape, lim):
        return rng.integers(-lim, lim, size=shape).astype(np.int64)

    lin = {"op": "linear", "in_features": 64, "out_features": 32, "in_frac": 10, "weight_frac": 12}
    lin_x = r16(64, 4000)
    lin_dense = {**lin, "block": 1, "weight": "w", "bias": "b", "out_frac": 9}
    lin_dense_t = {"w": r16((32, 64), 3000), "b": r16(32, 1 << 20)}
    lin_circ = {**lin, "block": 8, "weight": "w", "bias": "b", "out_frac": 10}
    lin_circ_t = {"w": r16((4, 8, 8), 3000), "b": r16(32, 1 << 20)}
    lin_fft = {**lin_circ, "spectra": "s", "spectra_frac": 12, "spectrum_frac": 7, "bias_out": "bo"}
    lin_fft["out_frac"] = 10
    lin_fft_t = {**lin_circ_t, "s": r16((4, 8, 8), 6000), "bo": r16(32, 2000)}
    conv = {
        "op": "conv2d",
        "in_channels": 4,
        "out_channels": 8,
        "kernel_size": [3, 3],
        "stride": [1, 1],
        "padding": [1, 1],
        "in_frac": 10,
        "weight_frac": 12,
        "out_frac": 10,
        "weight": "w",
        "bias": "b",
    }
    conv_x = r16((4, 8, 8), 4000)
    conv_dense = {**conv, "block": 1}
    conv_dense_t = {"w": r16((8, 4, 3, 3), 3000), "b": r16(8, 1 << 20)}
    conv_circ = {**conv, "block": 4}
    conv_circ_t = {"w": r16((2, 1, 4, 3, 3), 3000), "b": r16(8, 1 << 20)}
    conv_fft = {**conv_circ, "spectra": "s", "spectra_frac": 12, "spectrum_frac": 8, "bias_out": "bo"}
    conv_fft_t = {**conv_circ_t, "s": r16((2, 1, 4, 3, 3), 6000), "bo": r16(8, 2000)}
    fft_in = {k: r16(2 * k, 32768) for k in (8, 16, 32)}
    return {
        "lin_x": lin_x,
        "linear": [("lin_dense", lin_dense, lin_dense_t), ("lin_circ", lin_circ, lin_circ_t)],
        "lin_fft": (lin_fft, lin_fft_t),
        "conv_x": conv_x,
        "conv": [("conv_dense", conv_dense, conv_dense_t), ("conv_circ", conv_circ, conv_circ_t)],
        "conv_fft": (conv_fft, conv_fft_t),
        "fft_in": fft_in,
    }


def expected_hashes(seed: int = 3) -> dict[str, int]:
    """FNV-1a of every output the app prints, computed with batteryless.spec (independent of the C)."""
    c = _cases(seed)
    out: dict[str, int] = {}
    for k, z in c["fft_in"].items():
        r, i = spec.fft_q15(z[0::2], z[1::2])
        out[f"fft{k}"] = fnv1a(np.stack([r, i], 1))
        r, i = spec.fft_q15(r, i, inverse=True)
        out[f"ifft{k}"] = fnv1a(np.stack([r, i], 1))
    for name, layer, t in c["linear"]:
        out[name] = fnv1a(spec.linear_or_conv(layer, t, c["lin_x"][None], "direct")[0])
    layer, t = c["lin_fft"]
    out["lin_fft"] = fnv1a(spec.linear_or_conv(layer, t, c["lin_x"][None], "fft")[0])
    for name, layer, t in c["conv"]:
        out[name] = fnv1a(spec.linear_or_conv(layer, t, c["conv_x"][None], "direct")[0])
    layer, t = c["conv_fft"]
    y = spec.linear_or_conv(layer, t, c["conv_x"][None], "fft")
    out["conv_fft"] = fnv1a(y[0])
    relu = np.maximum(y, 0)
    out["relu"] = fnv1a(relu[0])
    out["maxpool"] = fnv1a(spec._pool(relu, {"op": "maxpool2d", "kernel_size": [2, 2], "stride": [2, 2]})[0])
    out["avgpool"] = fnv1a(spec._pool(y, {"op": "avgpool2d", "kernel_size": [2, 2], "stride": [2, 2]})[0])
    return out


# mark ids: 2n before and 2n+1 after measured step n
STEPS = [
    "fft8",
    "ifft8",
    "fft16",
    "ifft16",
    "fft32",
    "ifft32",
    "lin_dense",
    "lin_circ",
    "lin_fft_input",
    "lin_fft_blocks",
    "conv_dense",
    "conv_circ",
    "conv_fft_input",
    "conv_fft_blocks",
    "relu",
    "maxpool",
    "avgpool",
]


# per input selector: the mark ids in call order and the output keys printed
GROUPS = {
    0: ([0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11], ["fft8", "ifft8", "fft16", "ifft16", "fft32", "ifft32"]),
    1: ([12, 13, 14, 15, 16, 17, 18, 19], ["lin_dense", "lin_circ", "lin_fft"]),
    2: ([20, 21, 22, 23, 24, 25, 26, 27], ["conv_dense", "conv_circ", "conv_fft"]),
    3: ([32, 33, 28, 29, 30, 31], ["avgpool", "relu", "maxpool"]),
}


def make_app(app_dir: Path, seed: int = 3) -> Path:
    """Write the benchmark app (main.c) into ``app_dir``."""
    c = _cases(seed)
    app_dir.mkdir(parents=True, exist_ok=True)
    src = [
        "/* generated by benchmarks/kernels_ref.py: ref kernels between marks, FNV-1a of outputs */\n",
        '#include "bl_kernels.h"\n#include "bl_platform.h"\n\n',
        _arr("tw32", "int16_t", twiddle_table(32)),
    ]
    for k, z in c["fft_in"].items():
        src.append(_arr(f"fin{k}", "int16_t", z))
    src.append(_arr("lin_x", "int16_t", c["lin_x"]))
    for name, _layer, t in c["linear"]:
        src += [_arr(f"{name}_w", "int16_t", t["w"]), _arr(f"{name}_b", "int32_t", t["b"])]
    lf, lft = c["lin_fft"]
    src += [_arr("lin_fft_s", "int16_t", lft["s"]), _arr("lin_fft_bo", "int32_t", lft["bo"])]
    src.append(_arr("conv_x", "int16_t", c["conv_x"]))
    for name, _layer, t in c["conv"]:
        src += [_arr(f"{name}_w", "int16_t", t["w"]), _arr(f"{name}_b", "int32_t", t["b"])]
    cf, cft = c["conv_fft"]
    src += [_arr("conv_fft_s", "int16_t", cft["s"]), _arr("conv_fft_bo", "int32_t", cft["bo"])]
    ld, lc = c["linear"][0][1], c["linear"][1][1]
    cd, cc = c["conv"][0][1], c["conv"][1][1]
    sh = {
        "ld": ld["in_frac"] + ld["weight_frac"] - ld["out_frac"],
        "lc": lc["in_frac"] + lc["weight_frac"] - lc["out_frac"],
        "lz": lf["in_frac"] + lf["spectra_frac"] - 3 - lf["spectrum_frac"],
        "lo": lf["spectrum_frac"] - lf["out_frac"],
        "cd": cd["in_frac"] + cd["weight_frac"] - cd["out_frac"],
        "cc": cc["in_frac"] + cc["weight_frac"] - cc["out_frac"],
        "cz": cf["in_frac"] + cf["spectra_frac"] - 2 - cf["spectrum_frac"],
        "co": cf["spectrum_frac"] - cf["out_frac"],
    }
    src.append(
        f"""
static int16_t z[64];
static int16_t work[64];
static int16_t xs[256];
static int16_t y[512];
static int16_t y2[128];
static int bad;

static uint32_t fnv(const int16_t *v, uint32_t n) {{
  uint32_t h = 0x811C9DC5ul;
  for (uint32_t e = 0; e < n; e++) {{
    uint16_t u = (uint16_t)v[e];
    h = (h ^ (uint32_t)(u & 0xFFu)) * 0x01000193ul;
    h = (h ^ (uint32_t)(u >> 8)) * 0x01000193ul;
  }}
  return h;
}}

static void put(const char *key, const int16_t *v, uint32_t n) {{
  bl_puts(key);
  bl_putc(' ');
  bl_put_u32(fnv(v, n));
  bl_putc('\\n');
}}

static void check(bl_status st) {{ bad |= (st != BL_OK); }}

static void fft_case(unsigned step, const char *fk, const char *ik, const int16_t *in, uint16_t k) {{
  bl_fft_cfg cfg = {{k, 32, tw32}};
  for (uint16_t e = 0; e < 2u * k; e++) z[e] = in[e];
  bl_mark(2u * step);
  check(bl_fft_q15(z, &cfg, false));
  bl_mark(2u * step + 1u);
  put(fk, z, 2u * k);
  bl_mark(2u * step + 2u);
  check(bl_fft_q15(z, &cfg, true));
  bl_mark(2u * step + 3u);
  put(ik, z, 2u * k);
}}

static void group_fft(void) {{
  fft_case(0u, "fft8", "ifft8", fin8, 8u);
  fft_case(2u, "fft16", "ifft16", fin16, 16u);
  fft_case(4u, "fft32", "ifft32", fin32, 32u);
}}

static void group_linear(void) {{
  bl_mark(12u);
  check(bl_linear_dense_w16(lin_x, 64u, lin_dense_w, lin_dense_b, {sh["ld"]}, y, 32u, 0u, 32u));
  bl_mark(13u);
  put("lin_dense", y, 32u);
  bl_mark(14u);
  for (uint16_t i = 0; i < 4u; i++)
    check(bl_linear_circ_w16(lin_x, 64u, lin_circ_w, 8u, lin_circ_b, {sh["lc"]}, y, 32u, i * 8u,
                             i * 8u + 8u));
  bl_mark(15u);
  put("lin_circ", y, 32u);
  bl_fft_cfg f8 = {{8u, 32u, tw32}};
  bl_mark(16u);
  check(bl_linear_fft_input_q15(lin_x, 64u, &f8, xs, 0u, 8u, work));
  bl_mark(17u);
  bl_mark(18u);
  for (uint16_t i = 0; i < 4u; i++)
    check(bl_linear_fft_block_q15(xs, 64u, lin_fft_s, &f8, {sh["lz"]}, {sh["lo"]}, lin_fft_bo, y, 32u, i,
                                  i + 1u, work));
  bl_mark(19u);
  put("lin_fft", y, 32u);
}}

static const bl_conv_geom g = {{4u, 8u, 8u, 8u, 8u, 8u, 3u, 3u, 1u, 1u, 1u, 1u}};
static const bl_fft_cfg f4 = {{4u, 32u, tw32}};

static void group_conv(void) {{
  bl_mark(20u);
  check(bl_conv_dense_w16(conv_x, &g, conv_dense_w, conv_dense_b, {sh["cd"]}, y, 0u, 8u, 0u, 8u));
  bl_mark(21u);
  put("conv_dense", y, 512u);
  bl_mark(22u);
  for (uint16_t i = 0; i < 2u; i++)
    check(bl_conv_circ_w16(conv_x, &g, conv_circ_w, 4u, conv_circ_b, {sh["cc"]}, y, i * 4u, i * 4u + 4u, 0u,
                           8u));
  bl_mark(23u);
  put("conv_circ", y, 512u);
  bl_mark(24u);
  check(bl_conv_fft_input_q15(conv_x, &g, &f4, xs, 0u, 8u, work));
  bl_mark(25u);
  bl_mark(26u);
  for (uint16_t i = 0; i < 2u; i++)
    check(bl_conv_fft_block_q15(xs, &g, conv_fft_s, &f4, {sh["cz"]}, {sh["co"]}, conv_fft_bo, y, i, 0u, 8u,
                                work));
  bl_mark(27u);
  put("conv_fft", y, 512u);
}}

static void group_pool(void) {{
  check(bl_conv_fft_input_q15(conv_x, &g, &f4, xs, 0u, 8u, work));
  for (uint16_t i = 0; i < 2u; i++)
    check(bl_conv_fft_block_q15(xs, &g, conv_fft_s, &f4, {sh["cz"]}, {sh["co"]}, conv_fft_bo, y, i, 0u, 8u,
                                work));
  bl_pool_geom pg = {{8u, 8u, 8u, 4u, 4u, 2u, 2u, 2u, 2u}};
  bl_mark(32u);
  check(bl_avgpool_q15(y, &pg, y2, 0u, 8u));
  bl_mark(33u);
  put("avgpool", y2, 128u);
  bl_mark(28u);
  check(bl_relu_q15(y, y, 512u));
  bl_mark(29u);
  put("relu", y, 512u);
  bl_mark(30u);
  check(bl_maxpool_q15(y, &pg, y2, 0u, 8u));
  bl_mark(31u);
  put("maxpool", y2, 128u);
}}

/* input: one byte selecting a group (0 fft, 1 linear, 2 conv, 3 pools); none: all groups */
int bl_app_main(void) {{
  uint8_t sel = 0xFFu;
  (void)bl_input_read(&sel, 0u, 1u);
  if (sel == 0u || sel == 0xFFu) group_fft();
  if (sel == 1u || sel == 0xFFu) group_linear();
  if (sel == 2u || sel == 0xFFu) group_conv();
  if (sel == 3u || sel == 0xFFu) group_pool();
  bl_puts("status ");
  bl_put_u32((uint32_t)bad);
  bl_putc('\\n');
  return bad;
}}
"""
    )
    (app_dir / "main.c").write_text("".join(src))
    return app_dir


def kernel_sources() -> list[Path]:
    return sorted(REF_DIR.glob("*.c"))


def step_counts(marks: list[tuple[int | None, int]], order: list[int]) -> dict[str, int]:
    """Count between mark 2n and 2n+1 for every step n. Marks without ids (QEMU) are matched to ``order``,
    the ids in call order; mspdebug's marks carry their ids."""
    if marks and all(mid is None for mid, _ in marks) and len(marks) == len(order):
        marks = [(mid, cnt) for mid, (_, cnt) in zip(order, marks, strict=True)]
    at = {mid: cnt for mid, cnt in marks if mid is not None}
    return {
        name: at[2 * n + 1] - at[2 * n] for n, name in enumerate(STEPS) if 2 * n in at and 2 * n + 1 in at
    }


def code_sizes() -> dict[str, dict[str, int]]:
    """.text bytes of each ref kernel file per cross toolchain (-O2, as the firmware build uses)."""
    compilers = {
        "msp430 (clang 14, -O2)": ["clang", "--target=msp430", "-D__MSP430FR5994__"],
        "cortex-m4 (arm-none-eabi-gcc, -O2)": ["arm-none-eabi-gcc", "-mcpu=cortex-m4", "-mthumb"],
    }
    size_tool = {
        "msp430 (clang 14, -O2)": "llvm-size-14",
        "cortex-m4 (arm-none-eabi-gcc, -O2)": "arm-none-eabi-size",
    }
    out: dict[str, dict[str, int]] = {}
    with tempfile.TemporaryDirectory() as tmp:
        for label, cc in compilers.items():
            if not shutil.which(cc[0]) or not shutil.which(size_tool[label]):
                continue
            sizes = {}
            for src in kernel_sources():
                obj = Path(tmp) / f"{src.stem}.o"
                subprocess.run(
                    [
                        *cc,
                        "-std=c11",
                        "-O2",
                        f"-I{ROOT / 'firmware' / 'include'}",
                        "-c",
                        str(src),
                        "-o",
                        str(obj),
                    ],
                    check=True,
                )
                text = subprocess.run(
                    [size_tool[label], str(obj)], check=True, capture_output=True, text=True
                )
                sizes[src.name] = int(text.stdout.splitlines()[1].split()[0])
            sizes["total"] = sum(sizes.values())
            out[label] = sizes
    return out


def build_app(board: str, work: Path, seed: int = 3) -> Path:
    from batteryless.firmware import build

    app = make_app(work / f"app-{board}", seed)
    res = build(
        board, backend="ref", app=str(app), out_dir=work / f"build-{board}", extra_sources=kernel_sources()
    )
    return res.image


def run_on(board: str, work: Path, seed: int = 3) -> dict:
    """Build once, run each group separately (short mark lists); collect outputs and per-step counts."""
    from batteryless.firmware import run

    image = build_app(board, work, seed)
    out: dict = {"exit_code": 0, "unit": None, "values": {}, "steps": {}}
    for sel, (order, _keys) in GROUPS.items():
        r = run(image, board, inputs=bytes([sel]), timeout=600)
        out["exit_code"] |= r.exit_code
        out["unit"] = r.unit
        out["values"].update(r.values)
        out["steps"].update(step_counts(r.marks, order))
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--boards", default="host,mps2-an386,msp430fr5994")
    args = ap.parse_args(argv)
    want = expected_hashes()
    result: dict = {
        "benchmark": "kernels_ref",
        "command": "benchmarks/kernels_ref.py --boards " + args.boards,
        "workload": "linear 64->32 (dense; block-circulant k=8 direct and FFT); conv2d 4->8 ch, 3x3, pad 1, "
        "on 8x8 (dense; k=4 direct and FFT); relu/maxpool/avgpool on 8x8x8; single k-point FFTs",
        "code_size_bytes": code_sizes(),
        "boards": {},
    }
    with tempfile.TemporaryDirectory(prefix="bl-kbench-") as tmp:
        for board in args.boards.split(","):
            r = run_on(board, Path(tmp))
            mismatches = [k for k, v in want.items() if r["values"].get(k) != [v]]
            r["bit_exact_vs_spec"] = not mismatches and r["exit_code"] == 0
            r["mismatches"] = mismatches
            del r["values"]
            result["boards"][board] = r
            print(
                board,
                "bit-exact" if r["bit_exact_vs_spec"] else f"MISMATCH {mismatches}",
                r["unit"],
                r["steps"],
            )
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    tmp_out = RESULTS.with_suffix(".json.tmp")
    tmp_out.write_text(json.dumps(result, indent=2) + "\n")
    os.replace(tmp_out, RESULTS)
    print(json.dumps(result["code_size_bytes"], indent=2))
    return 0 if all(b["bit_exact_vs_spec"] for b in result["boards"].values()) else 1


if __name__ == "__main__":
    raise SystemExit(main())
