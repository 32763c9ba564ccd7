"""Verbs ``export-tflite`` and ``import-tflite`` (TFLite / TFLite Micro)."""

from __future__ import annotations

import argparse
import json

from batteryless.progress import console_progress


def cmd_export_tflite(args: argparse.Namespace) -> int:
    from batteryless.tflite import export_tflite

    with console_progress(not args.quiet) as progress:
        rep = export_tflite(
            args.artifact,
            args.out,
            args.dataset,
            data_path=args.data,
            name=args.name,
            calibration_samples=args.calibration_samples,
            test_samples=args.test_samples,
            verify=not args.no_verify,
            seed=args.seed,
            progress=progress,
        )
    if args.json:
        print(json.dumps(rep, indent=1, sort_keys=True))
        return 0
    print(f"{rep['tflite']}: {rep['tflite_bytes']:,} bytes, ops {', '.join(rep['ops'])}")
    if "tflm_arena_bytes" in rep:
        print(f"TFLite Micro arena: {rep['tflm_arena_bytes']:,} bytes (smallest that runs, host build)")
        exact = "bit for bit"
        if not rep["litert_tflm_bit_exact"]:
            exact = (
                f"NOT bit for bit: {rep['litert_tflm_mismatches']} outputs in "
                f"{rep['litert_tflm_mismatched_samples']} samples differ by "
                f"<={rep['litert_tflm_max_lsb_diff']} LSB"
            )
        print(
            f"ai-edge-litert {rep['litert_version']} ({rep['litert_resolver']} kernels) vs TFLite Micro on "
            f"{rep['test_samples']} test samples: {exact}"
        )
        print(
            f"  optimised kernels (AUTO) vs TFLite Micro: {rep['litert_optimised_tflm_mismatches']} outputs "
            f"differ by <={rep['litert_optimised_tflm_max_lsb_diff']} LSB"
        )
        print(
            f"top-1 agreement with the integer reference: {rep['top1_agreement']:.4f}; "
            f"accuracy tflite {rep['accuracy_tflite']:.4f}, reference {rep['accuracy_reference']:.4f}"
        )
    for f in rep["files"]:
        print(f"wrote {f}")
    return 0


def cmd_import_tflite(args: argparse.Namespace) -> int:
    from batteryless.tflite import import_tflite

    with console_progress(not args.quiet) as progress:
        imp = import_tflite(args.model, args.out, progress=progress)
    summary = imp.summary()
    if args.json:
        print(json.dumps(summary, indent=1))
        return 0
    print(f"{args.model}: input {tuple(imp.input_shape)} (channels-first), ops {', '.join(imp.ops)}")
    for line in summary["layers"]:
        print(f"  {line}")
    for note in imp.notes:
        print(f"note: {note}")
    if imp.compressor_problems:
        print(f"warning: compress will refuse this model: {imp.compressor_problems}")
    if args.out:
        print(f"wrote {args.out} (torch.load(path, weights_only=False)['model'])")
    return 0


def add_parser(sub: argparse._SubParsersAction) -> None:
    e = sub.add_parser(
        "export-tflite",
        help="export an artifact as a full-integer int8 .tflite + C array for TensorFlow Lite Micro",
        description="Artifact → Keras (circulant layers expanded, NHWC) → int8 .tflite (calibrated on the "
        "dataset) → aligned C array, header and op resolver; verified in ai-edge-litert and TFLite Micro "
        "and against the integer reference on the test split.",
    )
    e.add_argument("artifact", help=".bl artifact")
    e.add_argument("--out", required=True, help="output folder")
    e.add_argument("--dataset", help="calibration/test dataset (default: the artifact's)")
    e.add_argument("--data", help="folder or file holding the dataset (mnist, har, npz)")
    e.add_argument("--name", help="base name of the files and C symbols (default: the artifact's stem)")
    e.add_argument("--calibration-samples", type=int, default=256, help="representative samples (256)")
    e.add_argument("--test-samples", type=int, help="verify on the first N test samples (default: all)")
    e.add_argument("--no-verify", action="store_true", help="skip the interpreter runs and arena search")
    e.add_argument("--seed", type=int, default=0)
    e.add_argument("--json", action="store_true", help="print the report as JSON")
    e.set_defaults(func=cmd_export_tflite)

    i = sub.add_parser(
        "import-tflite",
        help="read a .tflite model (float or int8) into a torch model for compress",
        description="FULLY_CONNECTED, CONV_2D, DEPTHWISE_CONV_2D, AVERAGE/MAX_POOL_2D, RESHAPE, SOFTMAX and "
        "RELU variants → a channels-first nn.Sequential with de-quantised weights; static shape arithmetic "
        "(SHAPE, STRIDED_SLICE, PACK of an unknown-batch Flatten) is folded at batch 1; other operators are "
        "refused by name. compress --model file.tflite (or the --out file) takes the result.",
    )
    i.add_argument("model", help=".tflite file")
    i.add_argument("--out", help="save the torch model here (.pt)")
    i.add_argument("--json", action="store_true", help="print the summary as JSON")
    i.set_defaults(func=cmd_import_tflite)
