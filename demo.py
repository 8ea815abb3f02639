"""The whole nanoseg journey on generated data, on a CPU, in a few minutes.

    bash run.sh demo            # = python3 demo.py, inside the project's virtual environment

1. generate a synthetic nail dataset and a synthetic camera video (tools/synthetic.py),
2. train a small Unet briefly (train/train.py), which also evaluates it on the val split,
3. export ONNX with the parity check against Keras (convert/export_onnx.py),
4. validate every format on the val split (convert/validate.py),
5. run the edge app headless with ONNX Runtime on the video (edge/run_camera.py),
6. write summary.json / summary.md (mIoU, parity, FPS) and print where every file is.

Each stage calls the same importable ``main`` its CLI runs, so the demo exercises exactly
what a user runs by hand. ``--quick`` is the reduced version the test suite runs end to end.
"""
if __package__ in (None, ""):  # run as a script: make the repo root importable
    import os
    import sys
    sys.path[0] = os.path.dirname(os.path.abspath(__file__))

import json  # noqa: E402
import os  # noqa: E402
import time  # noqa: E402

from nanoseg import cli  # noqa: E402
from nanoseg.bundle import EVALUATION_JSON, PARITY_JSON, Bundle  # noqa: E402
from nanoseg.files import write_text_atomic  # noqa: E402
from train import keras_env  # noqa: E402

FULL = {"count": 80, "size": (128, 160), "epochs": 20, "batch": 4, "frames": 90}
QUICK = {"count": 40, "size": (64, 96), "epochs": 8, "batch": 4, "frames": 12}


def parse_args(argv=None):
    parser = cli.make_parser(
        "Generate data, train a small Unet, evaluate, export ONNX with parity checks, "
        "validate, and run the edge app headless on a generated video.")
    parser.add_argument("--out", default="demo_out", help="folder for everything the demo writes")
    parser.add_argument("--quick", action="store_true",
                        help="the reduced demo the test suite runs (smaller, fewer epochs)")
    parser.add_argument("--backbone", default="mobilenetv2", help="encoder backbone")
    parser.add_argument("--epochs", type=int, default=None,
                        help="training epochs (default: 20, or 8 with --quick)")
    parser.add_argument("--encoder-weights", default="none",
                        help="'none' works offline; 'imagenet' needs the internet or a cached file")
    parser.add_argument("--seed", type=int, default=0, help="data and training seed")
    cli.add_logging_args(parser)
    return parser.parse_args(argv)


class Stages(object):
    """Numbered, timed stage headers, so a user sees progress and where time went."""

    def __init__(self, total):
        self.total, self.index, self.times = total, 0, {}

    def start(self, name):
        self.index += 1
        self.name, self.began = name, time.time()
        print("\n[{}/{}] {}".format(self.index, self.total, name), flush=True)

    def done(self):
        seconds = time.time() - self.began
        self.times[self.name] = round(seconds, 1)
        print("      done in {:.1f} s".format(seconds), flush=True)


def run_stage(module_main, module_parse_args, argv):
    """Run a CLI's main in this process; a NanosegError stops the demo with its message."""
    status = cli.run(module_main, module_parse_args, argv)
    if status != 0:
        raise SystemExit(status)


def main(args):
    keras_env.prepare()
    from tools import make_synthetic
    from train import train as train_cli
    from convert import export_onnx, validate
    from edge import run_camera

    plan = dict(QUICK if args.quick else FULL)
    if args.epochs:
        plan["epochs"] = args.epochs
    out = os.path.abspath(args.out)
    paths = {
        "data": os.path.join(out, "data"), "video": os.path.join(out, "camera.mp4"),
        "bundle": os.path.join(out, "bundle"), "overlay": os.path.join(out, "overlay.mp4"),
        "masks": os.path.join(out, "masks"), "edge_summary": os.path.join(out, "edge_summary.json"),
        "summary_json": os.path.join(out, "summary.json"),
        "summary_md": os.path.join(out, "summary.md"),
    }
    os.makedirs(out, exist_ok=True)
    stages = Stages(6)
    height, width = plan["size"]

    stages.start("generate a synthetic nail dataset and camera video -> " + paths["data"])
    run_stage(make_synthetic.main, make_synthetic.parse_args, [
        "--out", paths["data"], "--count", str(plan["count"]), "--seed", str(args.seed),
        "--video", paths["video"], "--frames", str(plan["frames"])])
    stages.done()

    stages.start("train {} Unet at {}x{} for {} epochs -> {}".format(
        args.backbone, height, width, plan["epochs"], paths["bundle"]))
    run_stage(train_cli.main, train_cli.parse_args, [
        "--data", paths["data"], "--layout", "flat", "--classes", "nail",
        "--backbone", args.backbone, "--size", str(height), str(width),
        "--batch", str(plan["batch"]), "--epochs", str(plan["epochs"]),
        "--encoder-weights", args.encoder_weights, "--seed", str(args.seed),
        "--bn-momentum", "0.9", "--out", paths["bundle"], "--overwrite", "--verbose", "2"])
    stages.done()

    stages.start("export ONNX (opset 13) + FP16 copy, parity against Keras")
    run_stage(export_onnx.main, export_onnx.parse_args, ["--bundle", paths["bundle"]])
    stages.done()

    stages.start("validate Keras / ONNX / ONNX FP16 on the val split")
    run_stage(validate.main, validate.parse_args, ["--bundle", paths["bundle"]])
    stages.done()

    stages.start("edge app, headless, ONNX Runtime, on " + paths["video"])
    run_stage(run_camera.main, run_camera.parse_args, [
        "--bundle", paths["bundle"], "--source", paths["video"], "--headless",
        "--backend", "onnxruntime", "--save-video", paths["overlay"],
        "--save-masks", paths["masks"], "--summary", paths["edge_summary"]])
    stages.done()

    stages.start("summary")
    summary = collect_summary(paths, plan, args, stages.times)
    write_text_atomic(paths["summary_json"], json.dumps(summary, indent=2, sort_keys=True) + "\n")
    write_text_atomic(paths["summary_md"], summary_markdown(summary, paths))
    stages.done()
    print("\n" + summary_markdown(summary, paths))
    return 0


def _read_json(path):
    with open(path) as handle:
        return json.load(handle)


def collect_summary(paths, plan, args, times):
    """The demo's headline numbers, read back from the files the stages wrote."""
    bundle = Bundle(paths["bundle"])
    evaluation = _read_json(bundle.require(EVALUATION_JSON))
    parity = _read_json(bundle.require(PARITY_JSON))
    edge = _read_json(paths["edge_summary"])
    return {
        "plan": {"backbone": args.backbone, "size": list(plan["size"]),
                 "epochs": plan["epochs"], "images": plan["count"], "quick": args.quick},
        "miou": evaluation.get("miou"),
        "iou_per_class": evaluation.get("iou_per_class"),
        "parity": parity,
        "edge": edge,
        "stage_seconds": times,
        "files": paths,
    }


def summary_markdown(summary, paths):
    parity = summary["parity"]
    edge = summary["edge"]
    lines = [
        "# nanoseg demo summary", "",
        "| what | value |", "|---|---|",
        "| model | {backbone} Unet, {h}x{w}, {epochs} epochs on {images} synthetic images |".format(
            h=summary["plan"]["size"][0], w=summary["plan"]["size"][1], **summary["plan"]),
        "| val mIoU (Keras) | {} |".format(_fmt(summary["miou"])),
    ]
    for key, label in (("onnx", "ONNX FP32"), ("onnx_fp16", "ONNX FP16")):
        entry = parity.get(key) or {}
        if entry:
            lines.append("| {} vs Keras | mask agreement {}, max abs dp {} |".format(
                label, _pct(entry.get("mask_agreement")), _fmt(entry.get("max_abs_diff"), 6)))
    lines.append("| edge app (ONNX Runtime, this CPU) | {} frames, {} FPS end to end |".format(
        edge.get("frames"), _fmt(edge.get("fps"), 1)))
    lines += ["", "Files:"]
    for key in ("data", "video", "bundle", "overlay", "masks", "edge_summary", "summary_json",
                "summary_md"):
        lines.append("- {}: {}".format(key, paths[key]))
    return "\n".join(lines) + "\n"


def _fmt(value, digits=3):
    return "n/a" if value is None else "{:.{}f}".format(value, digits)


def _pct(value):
    return "n/a" if value is None else "{:.3f} %".format(100.0 * value)


if __name__ == "__main__":
    raise SystemExit(cli.run(main, parse_args))
