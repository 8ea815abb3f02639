"""edge/run_camera.py end to end: a real trained bundle, real images, the real CLI.

The session's trained and exported nails bundle (tests/conftest.py) runs through
edge/run_camera.py headless on a CamVid video and on the nails folder. (The runtime's
threads under faults, with a model-free backend, are in tests/test_runtime.py.)
"""
import glob
import json
import logging
import os
import re
import signal
import socket
import subprocess
import sys
import threading
import time

import cv2
import numpy as np
import pytest

from edge import backends
from nanoseg import contract as contract_mod, golden, preprocess
from nanoseg.normalization import Normalization
from nanoseg.bundle import CONTRACT_JSON, GOLDEN_NPZ, MODEL_H5, ONNX, ONNX_CONTRACT, Bundle
from nanoseg.errors import NanosegError
from edge.tensorrt.backend import TensorRTBackend
from edge.sinks import Sink
from tests.video_helpers import (BrokenSink, FakeBackend, LineReader, count_frames,
                                 default_sigint, folder_stream)

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
RUN_CAMERA = os.path.join(ROOT, "edge", "run_camera.py")
PARITY_IMAGES = 8


def training_inputs(nails_dir, contract, names):
    """(RGB image, x) per name through the training side: reader + train.pipeline.load_sample."""
    from train.pipeline import load_sample
    from nanoseg.datasets import open_dataset
    dataset = open_dataset(nails_dir, "flat", split="all", classes=["nail"])
    index = {sample.name: i for i, sample in enumerate(dataset.samples)}
    pairs = []
    for name in names:
        i = index[os.path.splitext(name)[0]]
        image, _ = dataset.load(i)
        pairs.append((image, load_sample(dataset, i, contract)[0]))
    return pairs


def keras_masks(model, contract, pairs):
    """Masks at frame size from Keras predict on the training preprocessing (the reference)."""
    masks = []
    for image, x in pairs:
        probs = model.predict(x[None], verbose=0)
        labels = preprocess.probabilities_to_labels(probs, contract)
        masks.append(preprocess.labels_to_frame(labels, image.shape))
    return masks


@pytest.fixture(scope="module")
def local_bundle(exported_nails_bundle):
    """(bundle folder, Keras model, contract) of the session's trained + exported nails bundle."""
    from train.model import load_model_for_inference
    bundle = Bundle(exported_nails_bundle)
    return bundle.root, load_model_for_inference(bundle.path(MODEL_H5)), bundle.contract()


@pytest.fixture(scope="module")
def camvid_video(tmp_path_factory, camvid_dir):
    """(mp4 path, frame count): 10 consecutive CamVid frames written with cv2.VideoWriter."""
    frames = sorted(glob.glob(os.path.join(camvid_dir, "train", "*.png")))[:10]
    path = str(tmp_path_factory.mktemp("video").joinpath("camvid.mp4"))
    writer = cv2.VideoWriter(path, cv2.VideoWriter_fourcc(*"mp4v"), 10.0, (480, 360))
    for name in frames:
        writer.write(cv2.imread(name, cv2.IMREAD_COLOR))
    writer.release()
    return path, count_frames(path)


def run_cli(*argv, timeout=300):
    """Run edge/run_camera.py as a user would; returns the CompletedProcess."""
    return subprocess.run([sys.executable, RUN_CAMERA] + [str(a) for a in argv],
                          stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                          universal_newlines=True, timeout=timeout, cwd=ROOT)


def error_line(result):
    """The CLI's one ``error:`` line (exit 2, no traceback); logs may precede it."""
    assert result.returncode == 2, result.stderr
    assert "Traceback" not in result.stderr
    errors = [line for line in result.stderr.splitlines() if line.startswith("error: ")]
    assert len(errors) == 1, result.stderr
    return errors[0]


def read_masks(folder):
    return [cv2.imread(p, cv2.IMREAD_UNCHANGED)
            for p in sorted(glob.glob(os.path.join(folder, "*.png")))]


# -- the headless CLI on real files ----------------------------------------------------------
def test_headless_video_writes_playable_mp4_masks_and_summary(local_bundle, camvid_video,
                                                              tmp_path):
    root, _, contract = local_bundle
    video, count = camvid_video
    assert count == 10
    out = tmp_path / "out.mp4"
    result = run_cli("--bundle", root, "--source", video, "--headless", "--backend",
                     "onnxruntime", "--save-video", out, "--save-masks", tmp_path / "masks",
                     "--summary", tmp_path / "summary.json")
    assert result.returncode == 0, result.stderr
    assert count_frames(str(out)) == count
    masks = read_masks(str(tmp_path / "masks"))
    assert len(masks) == count
    assert all(m.shape == (360, 480) and m.dtype == np.uint8 for m in masks)
    assert set(np.unique(np.stack(masks))) <= set(range(contract.num_labels))
    summary = json.loads((tmp_path / "summary.json").read_text())
    assert summary["frames"] == summary["written"] == count
    assert summary["dropped"] == 0 and summary["error"] is None
    assert summary["fps"] > 0 and summary["end_reason"] == "end of source"
    assert summary["stages"]["infer"]["count"] == count
    assert summary["stages"]["infer"]["p90_ms"] >= summary["stages"]["infer"]["median_ms"] > 0


def test_recording_onto_a_full_disk_exits_2_saying_what_was_kept_never_saved(
        local_bundle, camvid_video, nearly_full_folder, tmp_path):
    video, count = camvid_video
    out = os.path.join(nearly_full_folder, "o.mp4")
    result = run_cli("--bundle", local_bundle[0], "--source", video, "--headless",
                     "--backend", "onnxruntime", "--save-video", out,
                     "--summary", tmp_path / "summary.json")
    message = "--save-video {} was not finalized: 0 of the {} frames written play back".format(
        out, count)
    assert error_line(result).startswith("error: " + message)
    assert "saved {}".format(out) not in result.stderr
    summary = json.loads((tmp_path / "summary.json").read_text())
    assert summary["error"].startswith(message)
    assert summary["sinks"][0]["written"] == count and summary["sinks"][0]["kept"] == 0


def test_folder_masks_match_keras_on_training_preprocessing(local_bundle, nails_dir,
                                                            tmp_path):
    """Real nails images read by OpenCV as BGR frames: edge masks == Keras masks (>= 99.9 %)."""
    root, model, contract = local_bundle
    folder = tmp_path / "frames"
    folder.mkdir()
    names = sorted(os.listdir(os.path.join(nails_dir, "images")))[:PARITY_IMAGES]
    for name in names:
        os.symlink(os.path.join(nails_dir, "images", name), str(folder / name))
    result = run_cli("--bundle", root, "--source", folder, "--headless", "--save-masks",
                     tmp_path / "masks", "--summary", tmp_path / "s.json")
    assert result.returncode == 0, result.stderr
    edge_masks = read_masks(str(tmp_path / "masks"))
    reference = keras_masks(model, contract, training_inputs(nails_dir, contract, names))
    assert [m.shape for m in edge_masks] == [r.shape for r in reference]
    same = sum(int((e == r).sum()) for e, r in zip(edge_masks, reference))
    total = sum(r.size for r in reference)
    assert same / float(total) >= 0.999, "agreement {:.5f}".format(same / float(total))
    foreground = sum(int(r.sum()) for r in reference)
    assert 0 < foreground < total, "a trivial model cannot prove parity"


def test_nested_folder_source_saves_masks_under_their_relative_paths(local_bundle, nails_dir,
                                                                    tmp_path):
    root, _, _ = local_bundle
    folder = tmp_path / "frames"
    names = sorted(os.listdir(os.path.join(nails_dir, "images")))[:3]
    for relative, name in zip(("a/x", "a-b/y", "top"), names):
        path = folder.joinpath(*relative.split("/")).with_suffix(".jpg")
        path.parent.mkdir(parents=True, exist_ok=True)
        os.symlink(os.path.join(nails_dir, "images", name), str(path))
    masks = tmp_path / "masks"
    result = run_cli("--bundle", root, "--source", folder, "--headless", "--save-masks", masks)
    assert result.returncode == 0, result.stderr
    written = sorted(os.path.relpath(p, str(masks)).replace(os.sep, "/") for p in
                     glob.glob(os.path.join(str(masks), "**", "*.png"), recursive=True))
    assert written == ["000002_top.png", "a-b/000000_y.png", "a/000001_x.png"]
    image = cv2.imread(os.path.join(nails_dir, "images", names[1]), cv2.IMREAD_COLOR)
    mask = cv2.imread(str(masks / "a-b" / "000000_y.png"), cv2.IMREAD_UNCHANGED)
    assert mask.shape == image.shape[:2] and mask.dtype == np.uint8


BENCHMARK_ROWS = ("raw inference", "bare loop", "loop + video + masks", "loop + viewer",
                  "1 source", "2 sources", "4 sources", "loop + dashboard", "preprocess", "OpenCV lower bound", "render 1280x720", "render lower bound",
                  "encode 1280x720")


def test_benchmark_prints_a_markdown_table(local_bundle, camvid_video, tmp_path):
    result = subprocess.run(
        [sys.executable, os.path.join(ROOT, "edge", "benchmark.py"), "--bundle",
         local_bundle[0], "--video", camvid_video[0], "--runs", "3", "--warmup", "1",
         "--json", str(tmp_path / "bench.json")], stdout=subprocess.PIPE,
        stderr=subprocess.PIPE, universal_newlines=True, timeout=300, cwd=ROOT)
    assert result.returncode == 0, result.stderr
    lines = result.stdout.strip().splitlines()
    assert lines[0] == "| what | median ms | p90 ms | FPS | note |"
    rows = [line for line in lines[2:] if line.startswith("| ")]
    assert [row[2:].startswith(name) for row, name in zip(rows, BENCHMARK_ROWS)] == \
        [True] * len(BENCHMARK_ROWS) and len(rows) == len(BENCHMARK_ROWS)
    ratios = [line for line in lines if line.startswith("- ")]
    assert len(ratios) == 9 and all(line.endswith(("met)", "missed)")) for line in ratios)
    data = json.loads((tmp_path / "bench.json").read_text())
    assert data["raw_inference"]["runs"] == 3 and data["raw_inference"]["median_ms"] > 0
    for loop in ("bare_loop", "loop_video_masks", "loop_viewer"):
        assert data[loop]["frames"] == camvid_video[1] and data[loop]["error"] is None
    sinks = {s["sink"]: s for s in data["loop_video_masks"]["sinks"]}
    assert sinks["VideoSink"]["written"] == sinks["MaskSink"]["written"] == camvid_video[1]
    assert data["loop_viewer"]["sinks"][0]["encoded"] >= 1  # its client was connected
    for count in (1, 2, 4):
        assert data["sources_{}".format(count)]["frames"] == count * camvid_video[1]
    assert data["loop_dashboard"]["frames"] == camvid_video[1]
    assert [r["name"] for r in data["ratios"]][0].startswith("loop + video + masks")


def test_help_shows_defaults():
    result = run_cli("--help", timeout=60)
    assert result.returncode == 0
    for text in ("--view-host", "127.0.0.1", "--backend", "auto", "--latency", "200"):
        assert text in result.stdout


# -- bad input and faults: one line, exit 2 ------------------------------------------------
def test_unknown_source_lists_accepted_forms(local_bundle, tmp_path):
    line = error_line(run_cli("--bundle", local_bundle[0], "--source", tmp_path / "nope",
                              "--headless"))
    assert line.startswith("error: unknown --source")
    assert "csi://N" in line and "rtsp://" in line


def test_an_rtsp_source_without_a_host_is_refused_before_the_model_loads(tmp_path):
    line = error_line(run_cli("--bundle", tmp_path / "missing", "--source", "rtsp:///stream",
                              "--headless"))
    assert line == "error: RTSP URI has no host: rtsp:///stream (use " \
                   "rtsp://[user:pass@]host[:port]/path)"


def test_missing_bundle_is_one_line(tmp_path):
    line = error_line(run_cli("--bundle", tmp_path / "missing", "--source", tmp_path,
                              "--headless"))
    assert line.startswith("error: bundle folder not found")


def _bundle_copy(root, tmp_path, **onnx_contract_changes):
    """A copy of the bundle whose model.contract.json has ``onnx_contract_changes``."""
    copy = tmp_path / "bundle"
    copy.mkdir()
    for name in (CONTRACT_JSON, ONNX):
        os.symlink(os.path.join(root, name), str(copy / name))
    changed = Bundle(root).onnx_contract().copy(**onnx_contract_changes)
    contract_mod.save_contract(changed, str(copy / ONNX_CONTRACT))
    return str(copy)


def test_onnx_from_another_model_is_refused(local_bundle, tmp_path):
    copy = _bundle_copy(local_bundle[0], tmp_path, threshold=0.7)
    line = error_line(run_cli("--bundle", copy, "--source", tmp_path, "--headless",
                              "--backend", "onnxruntime"))
    assert "ONNX model" in line and "contract differs from the bundle's in threshold" in line


def _engine_of_another_model(root, folder):
    """A (fake) engine file whose sidecar contract is a 96x96 model's, not the bundle's."""
    from edge.tensorrt import engines
    other = Bundle(root).contract().copy(height=96, width=96)
    engine = os.path.join(str(folder), "model-fp16-0000.engine")
    with open(engine, "wb") as handle:
        handle.write(b"not a real engine")
    engines.write_sidecar(engine, engines.make_sidecar(other, "0" * 64, "8.2.1", "fp16", "x"))
    return engine


def test_engine_from_another_model_is_refused(local_bundle, tmp_path):
    """An engine whose sidecar contract differs is refused before TensorRT is touched."""
    root = local_bundle[0]
    engine = _engine_of_another_model(root, tmp_path)
    with pytest.raises(NanosegError, match="engine .*contract differs .* in height, width"):
        TensorRTBackend(root, engine)


def _nchw_copy_of_onnx(source, target):
    """The same ONNX with an NCHW input: a Transpose in front, as tf2onnx --inputs-as-nchw."""
    import onnx
    model = onnx.load(source)
    graph = model.graph
    name = graph.input[0].name
    for node in graph.node:
        node.input[:] = [name + "_nhwc" if i == name else i for i in node.input]
    graph.node.insert(0, onnx.helper.make_node("Transpose", [name], [name + "_nhwc"],
                                               perm=[0, 2, 3, 1]))
    dims = graph.input[0].type.tensor_type.shape.dim
    n, h, w, c = [d.dim_value for d in dims]
    for dim, value in zip(dims, (n, c, h, w)):
        dim.dim_value = value
    onnx.checker.check_model(model)
    onnx.save(model, target)


def test_onnx_layout_is_handled_from_its_own_contract(local_bundle, tmp_path):
    """An NCHW export of the same model gives the same NHWC probabilities."""
    root, _, contract = local_bundle
    copy = tmp_path / "nchw"
    copy.mkdir()
    os.symlink(os.path.join(root, CONTRACT_JSON),
               str(copy / CONTRACT_JSON))
    _nchw_copy_of_onnx(os.path.join(root, ONNX), str(copy / ONNX))
    contract_mod.save_contract(contract.copy(layout="NCHW"), str(copy / ONNX_CONTRACT))
    data = golden.load_golden(os.path.join(root, GOLDEN_NPZ))
    nhwc = backends.load_backend(root, "onnxruntime")
    nchw = backends.load_backend(str(copy), "onnxruntime")
    height, width = contract.size
    assert nchw.session.get_inputs()[0].shape == [1, 3, height, width]
    for x in data["inputs"][:3]:
        a, b = nhwc.infer(x), nchw.infer(x[None])
        assert a.shape == b.shape == (height, width, 1)
        np.testing.assert_allclose(a, b, atol=1e-6)
    with pytest.raises(NanosegError, match="contract wants"):
        nhwc.infer(np.zeros((height, width + 32, 3), np.float32))
    contract_mod.save_contract(contract, str(copy / ONNX_CONTRACT))  # NHWC contract, NCHW model
    expected = r"expects input \[1, 3, {}, {}\] but its contract".format(height, width)
    with pytest.raises(NanosegError, match=expected):
        backends.load_backend(str(copy), "onnxruntime")


def test_keras_backend_agrees_with_onnx_runtime(local_bundle):
    """The desktop debugging backend (model.h5 through train.model) is the same model."""
    root = local_bundle[0]
    data = golden.load_golden(os.path.join(root, GOLDEN_NPZ))
    keras, onnx = backends.load_backend(root, "keras"), backends.load_backend(root, "onnxruntime")
    for x, reference in zip(data["inputs"][:3], data["probabilities"]):
        np.testing.assert_allclose(keras.infer(x), reference, atol=golden.FP32_MAX_DIFF)
        np.testing.assert_allclose(onnx.infer(x), reference, atol=golden.FP32_MAX_DIFF)


def test_output_layout_is_recognised():
    contract = contract_mod.Contract.create(
        8, 12, ["a", "b"], "softmax", Normalization.named("scale"))
    probs = np.random.RandomState(0).rand(8, 12, 3).astype(np.float32)
    np.testing.assert_array_equal(backends.output_to_hwc(probs[None], contract), probs)
    chw = probs.transpose(2, 0, 1)[None]
    np.testing.assert_array_equal(backends.output_to_hwc(chw, contract), probs)
    with pytest.raises(NanosegError, match="do not belong together"):
        backends.output_to_hwc(np.zeros((1, 8, 12, 5), np.float32), contract)


def test_source_failing_mid_stream_reconnects_then_stops_cleanly(local_bundle, caplog,
                                                                 tmp_path):
    """A live source that dies after 4 frames: back-off reconnects, then a clean stop."""
    from edge.sources import Reader, SourceStream

    class DyingCamera(Reader):
        live = True
        description = "fake camera"

        def __init__(self):
            self.opens = 0
            self.served = 0

        def open(self):
            self.opens += 1
            if self.opens > 1:
                raise NanosegError("cannot open fake camera: unplugged")

        def read(self):
            if self.served >= 4:
                raise OSError("device disconnected")
            self.served += 1
            time.sleep(0.02)
            return "f", np.full((48, 64, 3), 40 * self.served, np.uint8)

    from edge.runtime import run_pipeline
    from edge.sinks import MaskSink
    backend = backends.load_backend(local_bundle[0], "onnxruntime")
    reader = DyingCamera()
    stream = SourceStream(reader, reconnect_attempts=3, backoff=0.01).start()
    masks = MaskSink(str(tmp_path / "masks"))
    with caplog.at_level("WARNING"):
        summary = run_pipeline(stream, backend, [masks])
    assert reader.opens == 4  # the first open plus 3 reconnect attempts
    assert summary["end_reason"] == "source lost"
    assert "fake camera was lost and 3 reconnect attempts failed" in summary["error"]
    assert summary["frames"] + summary["dropped"] == 4 and masks.written == summary["frames"]
    attempts = [r for r in caplog.records
                if r.getMessage().startswith("lost fake camera: reconnect attempt")]
    assert [r.getMessage().split("attempt ")[1][:3] for r in attempts] == ["1/3", "2/3", "3/3"]


@pytest.mark.parametrize("signum, count", [(signal.SIGTERM, 1), (signal.SIGINT, 1),
                                           (signal.SIGINT, 2)],
                         ids=["SIGTERM", "SIGINT", "SIGINT twice"])
def test_a_signal_while_recording_leaves_a_playable_mp4_with_every_frame_so_far(
        local_bundle, camvid_video, tmp_path, signum, count):
    """The video writer runs on its own worker: the stop drains its queue before closing.
    A second Ctrl-C while the outputs are being finished only says "already stopping"."""
    out = tmp_path / "live.mp4"
    summary = tmp_path / "summary.json"
    proc = subprocess.Popen(
        [sys.executable, RUN_CAMERA, "--bundle", local_bundle[0], "--source", camvid_video[0],
         "--loop", "--headless", "--save-video", str(out), "--save-masks", str(tmp_path / "m"),
         "--summary", str(summary), "--log-every", "0.5"], stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE, universal_newlines=True, cwd=ROOT, preexec_fn=default_sigint)
    try:
        stderr = LineReader(proc.stderr)
        stderr.wait_for("frames,", timeout=120)
        proc.send_signal(signum)
        if count == 2:
            stderr.wait_for("interrupted: finishing outputs", timeout=30)
            proc.send_signal(signum)
            stderr.wait_for("already stopping", timeout=30)
        proc.wait(timeout=60)
        err = stderr.rest(timeout=10)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 0, err
    data = json.loads(summary.read_text())
    assert data["end_reason"] == ("stopped" if signum == signal.SIGTERM
                                  else "interrupted (Ctrl-C)") and data["frames"] > 0
    sinks = {s["sink"]: s for s in data["sinks"]}
    assert count_frames(str(out)) == sinks["VideoSink"]["written"] == data["written"] > 0
    assert len(os.listdir(str(tmp_path / "m"))) == sinks["MaskSink"]["written"] == \
        data["written"]
    assert "VideoSink    every" in err  # the workers' counts are in the log


# -- the CLI's own pieces, model-free --------------------------------------------------
def test_a_sink_that_cannot_open_closes_those_opened_before(monkeypatch):
    """--view-port then a window that cannot open: the viewer's port is free again."""
    from edge import run_camera
    monkeypatch.delenv("DISPLAY", raising=False)
    monkeypatch.delenv("WAYLAND_DISPLAY", raising=False)
    probe = socket.socket()
    probe.bind(("127.0.0.1", 0))
    port = probe.getsockname()[1]
    probe.close()
    args = run_camera.parse_args(["--bundle", "b", "--source", "x", "--view-port", str(port)])
    with pytest.raises(NanosegError, match="cannot open a window"):
        run_camera.make_sinks(args, 30.0)
    again = socket.socket()  # no SO_REUSEADDR: fails while anything still listens there
    try:
        again.bind(("127.0.0.1", port))
        again.listen(1)
    finally:
        again.close()
    assert not [t for t in threading.enumerate() if t.name == "viewer" and t.is_alive()]


def _run_refused_before_the_work(argv, monkeypatch, capsys):
    """run_camera in process with a bundle and a source that must not open: the one error
    line (exit 2) of an argument check."""
    from edge import run_camera
    from nanoseg import cli

    def must_not_open(*args, **kwargs):
        raise AssertionError("opened before the arguments were checked")
    monkeypatch.setattr(run_camera, "load_backend", must_not_open)
    monkeypatch.setattr(run_camera, "open_source", must_not_open)
    status = cli.run(run_camera.main, run_camera.parse_args,
                     ["--bundle", "b", "--source", "x", "--headless"] + [str(a) for a in argv])
    err = capsys.readouterr().err
    assert status == 2 and "Traceback" not in err, err
    errors = [line for line in err.splitlines() if line.startswith("error: ")]
    assert len(errors) == 1, err
    return errors[0]


def test_bad_output_arguments_are_one_line_before_the_model_and_source_open(
        tmp_path, monkeypatch, capsys):
    plain = tmp_path / "notes.txt"
    plain.write_text("not a folder")
    missing = tmp_path / "missing"
    cases = [
        (["--video-fps", "0"], "--video-fps must be positive, got 0"),
        (["--video-fps", "-5"], "--video-fps must be positive, got -5"),
        (["--view-port", "99999"], "--view-port must be 1-65535 (0: any free port), got 99999"),
        (["--view-port", "-1"], "--view-port must be 1-65535 (0: any free port), got -1"),
        (["--summary", missing / "run.json"],
         "--summary folder {} does not exist: create it first".format(missing)),
        (["--save-video", missing / "out.mp4"],
         "--save-video folder {} does not exist: create it first".format(missing)),
        (["--output", missing / "out.mkv"],
         "--output folder {} does not exist: create it first".format(missing)),
        (["--summary", plain / "run.json"],
         "--summary {}: {} is not a folder".format(plain / "run.json", plain)),
        (["--save-video", plain / "out.mp4"],
         "--save-video {}: {} is not a folder".format(plain / "out.mp4", plain)),
        (["--output", "rtp://127.0.0.1:5000", "--output", plain / "out.mp4"],
         "--output {}: {} is not a folder".format(plain / "out.mp4", plain)),
        (["--save-masks", plain / "masks"],
         "--save-masks {}: {} is not a folder".format(plain / "masks", plain)),
        (["--summary", tmp_path], "--summary {} is a folder: name a file".format(tmp_path)),
        (["--flip", "8"], "--flip must be a flip-method 0..7 (as nvvidconv numbers them), "
                          "got 8"),
        (["--sensor-mode", "full"], "--sensor-mode must be WIDTHxHEIGHT[@FPS], e.g. "
                                    "3264x2464@21 or 1640x1232@30 (the IMX219's full field of "
                                    "view), got 'full'"),
        (["--output", "snap.jpg"], "--output snap.jpg: an image sequence needs the frame "
                                   "number in its name, like out_%05d.jpg, or a folder ending "
                                   "in / (dir/)"),
    ]
    for argv, message in cases:
        assert _run_refused_before_the_work(argv, monkeypatch, capsys) == "error: " + message


def test_outputs_into_a_read_only_folder_are_one_line_before_the_model_and_source_open(
        read_only_folder, monkeypatch, capsys):
    for flag, name in (("--save-video", "out.mp4"), ("--output", "out.mp4"),
                       ("--save-masks", "masks"), ("--summary", "run.json")):
        path = os.path.join(read_only_folder, name)
        assert _run_refused_before_the_work([flag, path], monkeypatch, capsys) == \
            "error: {} {}: cannot write into folder {} (Read-only file system): pick a " \
            "writable one".format(flag, path, read_only_folder)


def _finished_run(error=None):
    """What run_with_backend returns after a short run."""
    return {"frames": 3, "written": 3, "captured": 3, "dropped": 0, "reconnects": 0,
            "stalls": 0, "elapsed_s": 0.5, "fps": 6.0, "end_reason": "end of source",
            "source": "x", "backend": "fake", "stages": {}, "error": error, "sinks": []}


@pytest.mark.parametrize("run_error", [None, "the VideoSink failed on frame 2: boom"])
def test_a_summary_that_cannot_be_written_at_the_end_is_one_line_naming_it(
        tmp_path, monkeypatch, capsys, caplog, run_error):
    """The folder checked at the start is gone at the end (an unmounted disk): one line,
    exit 2; when the run failed too, its error ends the CLI and the write is logged."""
    from edge import run_camera
    from nanoseg import cli
    folder = tmp_path / "usb"
    folder.mkdir()
    path = folder / "run.json"

    def run_while_the_disk_goes(args, stop_event):
        folder.rmdir()
        return _finished_run(run_error)
    monkeypatch.setattr(run_camera, "run_with_backend", run_while_the_disk_goes)
    status = cli.run(run_camera.main, run_camera.parse_args,
                     ["--bundle", "b", "--source", "x", "--headless", "--summary", str(path)])
    err = capsys.readouterr().err
    assert status == 2 and "Traceback" not in err, err
    errors = [line for line in err.splitlines() if line.startswith("error: ")]
    write_error = "cannot write --summary {}: No such file or directory".format(path)
    if run_error is None:
        assert errors == ["error: " + write_error]
    else:
        assert errors == ["error: " + run_error]
        assert write_error in [r.getMessage() for r in caplog.records
                               if r.levelno == logging.ERROR]


def test_the_port_is_checked_before_the_bundle_loads(tmp_path):
    line = error_line(run_cli("--bundle", tmp_path / "missing", "--source", tmp_path,
                              "--headless", "--view-port", "99999", timeout=120))
    assert line == "error: --view-port must be 1-65535 (0: any free port), got 99999"


@pytest.mark.parametrize("argv, loop", [([], 0), (["--loop"], -1), (["--loop", "3"], 3),
                                        (["--loop", "-1"], -1)])
def test_bare_loop_still_means_forever_and_loop_n_counts_replays(argv, loop):
    from edge import run_camera
    args = run_camera.parse_args(["--bundle", "b", "--source", "clip.mp4"] + argv)
    assert args.loop == loop
    assert run_camera.source_options(args) == {"sensor_mode": None, "input_codec": "auto",
                                               "rtsp_transport": "auto"}


def test_ffmpeg_rtsp_options_are_set_by_the_cli_not_the_library():
    from edge import run_camera
    env = {}
    run_camera.prefer_rtsp_over_tcp("clip.mp4", env)
    assert env == {}
    run_camera.prefer_rtsp_over_tcp("rtsp://cam/1", env)
    assert env == {"OPENCV_FFMPEG_CAPTURE_OPTIONS": "rtsp_transport;tcp"}
    env = {"OPENCV_FFMPEG_CAPTURE_OPTIONS": "rtsp_transport;udp"}
    run_camera.prefer_rtsp_over_tcp("RTSP://cam/1", env)
    assert env["OPENCV_FFMPEG_CAPTURE_OPTIONS"] == "rtsp_transport;udp"  # the user's choice
    env = {}
    run_camera.prefer_rtsp_over_tcp("rtsp://cam/1", env, transport="udp")  # --rtsp-transport
    assert env == {"OPENCV_FFMPEG_CAPTURE_OPTIONS": "rtsp_transport;udp"}
    mutation = re.compile(r"os\.environ\s*(\[[^\]]*\]\s*=|\.(setdefault|update|pop))|putenv")
    library = glob.glob(os.path.join(ROOT, "edge", "sources", "*.py")) + [
        os.path.join(ROOT, "edge", name)
        for name in ("sinks.py", "runtime.py", "render_thread.py")] + \
        glob.glob(os.path.join(ROOT, "edge", "viewer", "*.py"))
    assert len(library) > 5
    for name in library:
        with open(name) as handle:
            assert not mutation.search(handle.read()), name


# -- the same faults through the CLI, with the trained bundle -------------------------------
def test_cli_run_with_a_crashing_sink_exits_2_in_one_line_and_the_video_plays(
        local_bundle, camvid_video, tmp_path, monkeypatch, capsys):
    from edge import run_camera
    from nanoseg import cli
    real_make_sinks = run_camera.make_sinks
    monkeypatch.setattr(run_camera, "make_sinks",
                        lambda args, fps, **kw: real_make_sinks(args, fps, **kw) +
                        [BrokenSink(fail_at=4)])
    out = tmp_path / "out.mp4"
    argv = ["--bundle", local_bundle[0], "--source", camvid_video[0], "--loop", "--headless",
            "--backend", "onnxruntime", "--save-video", str(out), "--summary",
            str(tmp_path / "s.json")]
    sigterm = signal.getsignal(signal.SIGTERM)
    try:
        status = cli.run(run_camera.main, run_camera.parse_args, argv)
    finally:
        signal.signal(signal.SIGTERM, sigterm)
    err = capsys.readouterr().err
    assert status == 2, err
    errors = [line for line in err.splitlines() if line.startswith("error: ")]
    assert errors == ["error: the BrokenSink failed on frame 3: ValueError: unsupported pixel "
                      "layout (the log has the traceback)"], err
    assert count_frames(str(out)) >= 4  # a looping source, ended by the sink, still plays
    summary = json.loads((tmp_path / "s.json").read_text())
    assert summary["end_reason"] == "sink error" and summary["error"] in errors[0]


def test_rtsp_password_never_reaches_the_cli_output(local_bundle):
    result = run_cli("--bundle", local_bundle[0], "--source",
                     "rtsp://user:secret@127.0.0.1:9/x", "--headless", "--backend",
                     "onnxruntime", "--reconnect-attempts", "1", "--log-level", "DEBUG",
                     timeout=120)
    line = error_line(result)
    assert line.startswith("error: cannot open rtsp://***:***@127.0.0.1:9/x")
    assert "secret" not in result.stdout and "secret" not in result.stderr


def test_cli_refuses_an_engine_from_another_model_in_one_line(local_bundle, tmp_path):
    """--backend tensorrt with an engine whose sidecar contract differs: exit 2 before
    TensorRT is needed (so this runs without a GPU too)."""
    root = local_bundle[0]
    engine = _engine_of_another_model(root, tmp_path)
    line = error_line(run_cli("--bundle", root, "--source", tmp_path, "--headless",
                              "--backend", "tensorrt", "--engine", engine, timeout=120))
    assert "engine model-fp16-0000.engine" in line
    assert "contract differs from the bundle's in height, width" in line


class SignalDuringCloseSink(Sink):
    """Sends this process a SIGINT from inside close(), i.e. while the outputs are drained."""

    delivery = "inline"

    def __init__(self):
        self.frames = 0
        self.closed = False

    def write(self, result):
        self.frames += 1

    def close(self):
        # At the main thread itself, as a terminal's Ctrl-C arrives: its wait for this thread
        # is interrupted and the handler runs there while this close is still going on.
        signal.pthread_kill(threading.main_thread().ident, signal.SIGINT)
        time.sleep(0.05)
        self.closed = True


def test_a_ctrl_c_while_the_outputs_are_drained_after_the_source_ended_is_ignored(
        tmp_path, caplog):
    """The source ended by itself, then Ctrl-C arrives during the drain: the drain goes on.

    run_pipeline sets the stop event before it finishes the sinks, and the handler only
    says "already stopping" once it is set (without that, KeyboardInterrupt would abandon
    the drain and leave an unplayable video)."""
    from edge import run_camera, runtime
    # Ctrl-C as in a terminal, also when the suite itself runs with SIGINT ignored (a
    # background job): run_camera leaves an ignored Ctrl-C ignored, on purpose.
    inherited = signal.signal(signal.SIGINT, signal.default_int_handler)
    stop_event = threading.Event()
    restore = run_camera.install_stop_handler(stop_event)
    sink = SignalDuringCloseSink()
    try:
        with caplog.at_level(logging.WARNING, logger="edge.run_camera"):
            summary = runtime.run_pipeline(folder_stream(tmp_path, 3),
                                           FakeBackend(), [sink], stop_event=stop_event)
    finally:
        restore()
        signal.signal(signal.SIGINT, inherited)
    assert sink.closed and sink.frames == 3 and summary["frames"] == 3
    assert summary["end_reason"] == "end of source"
    assert "already stopping" in caplog.text


def test_the_summary_and_the_log_give_memory_around_the_model_load_and_the_peak(
        monkeypatch, tmp_path, caplog):
    import cv2
    from edge import run_camera

    class HeavyBackend(FakeBackend):
        """Loading it takes 64 MiB, as an engine pulls in its libraries."""

        def __init__(self):
            FakeBackend.__init__(self)
            self.weights = np.ones(64 << 20, np.uint8)

        def infer(self, x):
            time.sleep(0.01)  # slower than --log-every: a progress line per frame
            return FakeBackend.infer(self, x)

    folder = tmp_path / "frames"
    folder.mkdir()
    for index in range(3):
        cv2.imwrite(str(folder / "f{}.png".format(index)), np.full((24, 32, 3), 40 * index,
                                                                    np.uint8))
    monkeypatch.setattr(run_camera, "load_backend", lambda *args: HeavyBackend())
    caplog.set_level(logging.INFO)
    args = run_camera.parse_args(["--bundle", "b", "--source", str(folder), "--headless",
                                  "--summary", str(tmp_path / "s.json"), "--log-every",
                                  "0.001"])
    assert run_camera.main(args) == 0
    memory = json.loads((tmp_path / "s.json").read_text())["memory"]
    before, after = memory["before_load"], memory["after_load"]
    assert after["rss_mib"] - before["rss_mib"] >= 60           # the load is seen
    assert memory["peak_rss_mib"] >= after["rss_mib"]
    assert before["available_mib"] > 0 and memory["end"]["available_mib"] > 0
    text = caplog.text
    assert "memory as the model loaded: available " in text
    assert re.search(r"memory: model load: available \d+ -> \d+ MiB \([+-]\d+\), RSS \d+ -> "
                     r"\d+ MiB \(peak \d+\); peak RSS \d+ MiB, available at the end \d+ MiB",
                     text), text
    assert re.search(r"frames, .* \| RSS \d+ MiB, available \d+ MiB", text), text


def test_visualize_mask_and_the_output_uris_on_a_looped_video(local_bundle, camvid_video,
                                                             tmp_path):
    """--loop 1 plays the 10 frames twice; an image sequence and masks:// get all 20, and
    with --visualize mask each image is the class colours of its mask (legend aside)."""
    from edge import overlay
    root, _, contract = local_bundle
    video, count = camvid_video
    shots = tmp_path / "shots"
    result = run_cli("--bundle", root, "--source", video, "--headless", "--backend",
                     "onnxruntime", "--loop", "1", "--visualize", "mask", "--output",
                     str(shots / "f_%03d.png"), "--output", "masks://{}".format(tmp_path / "m"),
                     "--summary", tmp_path / "summary.json")
    assert result.returncode == 0, result.stderr
    summary = json.loads((tmp_path / "summary.json").read_text())
    assert summary["frames"] == summary["written"] == 2 * count
    images = sorted(os.listdir(str(shots)))
    assert images == ["f_{:03d}.png".format(i) for i in range(2 * count)]
    masks = read_masks(str(tmp_path / "m"))
    assert len(masks) == 2 * count
    palette = overlay.bgr_palette(contract)
    left = slice(0, overlay.legend_x0(contract, 480) - 4)
    for name, mask in zip(images, masks):
        shown = cv2.imread(str(shots / name))
        assert np.array_equal(shown[48:, left], palette[mask][48:, left]), name  # below stats
