"""The edge runtime end to end: a real trained bundle, real images, the real CLI.

The session's trained and exported nails bundle (tests/conftest.py) runs through
edge/run_camera.py headless on a CamVid video and on the nails folder.
"""
import glob
import json
import os
import signal
import subprocess
import sys
import time

import cv2
import numpy as np
import pytest

from edge import backends, contract as contract_mod, golden
from edge.bundle import GOLDEN_NPZ, MODEL_H5, ONNX, ONNX_CONTRACT, Bundle
from edge.errors import NanosegError
from tests.video_helpers import count_frames

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
RUN_CAMERA = os.path.join(ROOT, "edge", "run_camera.py")
PARITY_IMAGES = 8


def training_inputs(nails_dir, contract, names):
    """(RGB image, x) per name through the training side: reader + train.pipeline.load_sample."""
    from train.pipeline import load_sample
    from train.readers import open_dataset
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
        labels = contract_mod.probabilities_to_labels(probs, contract)
        masks.append(contract_mod.labels_to_frame(labels, image.shape))
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


def test_benchmark_prints_a_markdown_table(local_bundle, camvid_video, tmp_path):
    result = subprocess.run(
        [sys.executable, os.path.join(ROOT, "edge", "benchmark.py"), "--bundle",
         local_bundle[0], "--video", camvid_video[0], "--runs", "3", "--warmup", "1",
         "--json", str(tmp_path / "bench.json")], stdout=subprocess.PIPE,
        stderr=subprocess.PIPE, universal_newlines=True, timeout=300, cwd=ROOT)
    assert result.returncode == 0, result.stderr
    lines = result.stdout.strip().splitlines()
    assert lines[0] == "| what | median ms | p90 ms | FPS | note |" and len(lines) == 6
    assert "OpenCV lower bound 1280x720" in result.stdout and "end to end" in lines[-1]
    data = json.loads((tmp_path / "bench.json").read_text())
    assert data["infer"]["runs"] == 3 and data["infer"]["median_ms"] > 0
    assert data["end_to_end"]["frames"] == camvid_video[1]


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


def test_missing_bundle_is_one_line(tmp_path):
    line = error_line(run_cli("--bundle", tmp_path / "missing", "--source", tmp_path,
                              "--headless"))
    assert line.startswith("error: bundle folder not found")


def _bundle_copy(root, tmp_path, **onnx_contract_changes):
    """A copy of the bundle whose model.contract.json has ``onnx_contract_changes``."""
    copy = tmp_path / "bundle"
    copy.mkdir()
    for name in (contract_mod.CONTRACT_FILENAME, ONNX):
        os.symlink(os.path.join(root, name), str(copy / name))
    changed = Bundle(root).onnx_contract().copy(**onnx_contract_changes)
    contract_mod.save_contract(changed, str(copy / ONNX_CONTRACT))
    return str(copy)


def test_onnx_from_another_model_is_refused(local_bundle, tmp_path):
    copy = _bundle_copy(local_bundle[0], tmp_path, threshold=0.7)
    line = error_line(run_cli("--bundle", copy, "--source", tmp_path, "--headless",
                              "--backend", "onnxruntime"))
    assert "ONNX model" in line and "contract differs from the bundle's in threshold" in line


def test_engine_from_another_model_is_refused(local_bundle, tmp_path):
    """An engine whose sidecar contract differs is refused before TensorRT is touched."""
    from edge import engines
    root = local_bundle[0]
    other = Bundle(root).contract().copy(height=96, width=96)
    engine = os.path.join(str(tmp_path), "model-fp16-0000.engine")
    with open(engine, "wb") as handle:
        handle.write(b"not a real engine")
    engines.write_sidecar(engine, engines.make_sidecar(other, "0" * 64, "8.2.1", "fp16", "x"))
    with pytest.raises(NanosegError, match="engine .*contract differs .* in height, width"):
        backends.TensorRTBackend(root, engine)


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
    os.symlink(os.path.join(root, contract_mod.CONTRACT_FILENAME),
               str(copy / contract_mod.CONTRACT_FILENAME))
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
        8, 12, ["a", "b"], "softmax", contract_mod.Normalization.named("scale"))
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


def test_sigterm_while_saving_video_finalizes_it(local_bundle, camvid_video, tmp_path):
    out = tmp_path / "live.mp4"
    summary = tmp_path / "summary.json"
    proc = subprocess.Popen(
        [sys.executable, RUN_CAMERA, "--bundle", local_bundle[0], "--source", camvid_video[0],
         "--loop", "--headless", "--save-video", str(out), "--summary", str(summary),
         "--log-every", "0.5"], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
        universal_newlines=True, cwd=ROOT)
    try:
        deadline = time.time() + 120
        while time.time() < deadline and "frames," not in _read_some(proc):
            assert proc.poll() is None, proc.stderr.read()
        proc.send_signal(signal.SIGTERM)
        _, err = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 0, err
    data = json.loads(summary.read_text())
    assert data["end_reason"] == "stopped" and data["frames"] > 0
    assert count_frames(str(out)) == data["written"] > 0


def _read_some(proc):
    """One stderr line of a running process (blocks until it prints one)."""
    return proc.stderr.readline()
