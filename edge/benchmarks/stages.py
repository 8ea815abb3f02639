"""Timing one host stage at a time on a 720p frame: inference, preprocessing and its OpenCV
lower bound, rendering and its lower bound, encoding, decoding."""
import os
import time

import cv2
import numpy as np

from edge import overlay
from edge.benchmarks.standin import fixed_labels
from nanoseg.errors import NanosegError
from nanoseg.preprocess import INTERPOLATIONS, preprocess_image
from nanoseg.timing import latency_stats, time_calls, time_interleaved

FRAME_SIZE = (720, 1280)  # a 720p camera frame (height, width)
STAGE_TEXT = [("capture", 1.0), ("pre", 0.5), ("infer", 33.0), ("post", 0.1), ("render", 2.0)]


def benchmark_backend(backend, runs, warmup):
    """Batch-1 inference on a preprocessed random frame (weights do not care about pixels);
    also the process CPU time per call (``cpu_ms``: 0 for the host-only stand-in)."""
    contract = backend.contract
    frame = np.random.RandomState(0).randint(0, 256, FRAME_SIZE + (3,), dtype=np.uint8)
    x = preprocess_image(frame, contract, "BGR")
    stats = latency_stats(time_calls(lambda: backend.infer(x), runs, warmup))
    stats["cpu_ms"] = stats["cpu_median_ms"]
    return stats


def opencv_lower_bound(frame, contract):
    """The least any preprocessing must do: resize, BGR->RGB, one multiply to float32."""
    small = cv2.resize(frame, (contract.width, contract.height),
                       interpolation=INTERPOLATIONS[contract.interpolation])
    small = cv2.cvtColor(small, cv2.COLOR_BGR2RGB)
    return small.astype(np.float32) * np.float32(contract.normalization.scale)


def as_720p(frame):
    if frame is None:
        frame = np.random.RandomState(1).randint(0, 256, FRAME_SIZE + (3,), dtype=np.uint8)
    return cv2.resize(frame, (FRAME_SIZE[1], FRAME_SIZE[0]))


def benchmark_preprocessing(contract, runs, warmup, frame=None, out=None):
    """(contract preprocessing stats, OpenCV lower bound stats) on a 1280x720 BGR frame,
    preprocessing into ``out`` (the backend's input buffer) as the runtime does."""
    frame = as_720p(frame)
    ours, bare = time_interleaved([lambda: preprocess_image(frame, contract, "BGR", out=out),
                                   lambda: opencv_lower_bound(frame, contract)], runs, warmup)
    return latency_stats(ours), latency_stats(bare)


def benchmark_render(contract, runs, warmup, frame=None):
    """(render stats, render lower bound stats): the overlay of the fixed label map (every
    class visible) with legend and statistics, beside one bare cv2.addWeighted."""
    frame = as_720p(frame)
    renderer = overlay.Renderer(contract, 0.5)
    labels = fixed_labels(contract)
    other = frame[::-1].copy()
    ours, bare = time_interleaved([
        lambda: renderer.render(frame, labels, 30.0, STAGE_TEXT),
        lambda: cv2.addWeighted(frame, 0.5, other, 0.5, 0.0)], runs, warmup)
    return latency_stats(ours), latency_stats(bare), renderer.render(frame, labels, 30.0,
                                                                    STAGE_TEXT)


def benchmark_encode(rendered, runs, warmup, folder):
    """(mp4v frame write stats, JPEG encode stats) of a rendered 720p frame."""
    path = os.path.join(folder, "encode.mp4")
    writer = cv2.VideoWriter(path, cv2.VideoWriter_fourcc(*"mp4v"), 30.0,
                             (rendered.shape[1], rendered.shape[0]))
    if not writer.isOpened():
        raise NanosegError("this OpenCV cannot write mp4v to {}: the encode row needs "
                           "it".format(path))
    try:
        mp4 = time_calls(lambda: writer.write(rendered), runs, warmup)
    finally:
        writer.release()
    params = [int(cv2.IMWRITE_JPEG_QUALITY), 80]
    jpeg = time_calls(lambda: cv2.imencode(".jpg", rendered, params), runs, warmup)
    return latency_stats(mp4), latency_stats(jpeg)


def decode_cpu_ms(video, max_frames):
    """Process CPU ms per frame of decoding ``video`` alone (part of the loop's capture)."""
    capture = cv2.VideoCapture(video)
    frames, cpu = 0, time.process_time()
    while frames < max_frames and capture.read()[0]:
        frames += 1
    cpu = time.process_time() - cpu
    capture.release()
    return round(cpu * 1000.0 / max(frames, 1), 3)


def first_frame(video):
    """The video's first frame, to time preprocessing on real pixels (None if unreadable)."""
    capture = cv2.VideoCapture(video)
    ok, frame = capture.read()
    capture.release()
    return frame if ok else None
