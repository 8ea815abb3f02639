"""Several real videos and a street contract for the multi-source, statistics and dashboard
tests (no trained model: the host-only stand-in returns a fixed label map, so every class
share is known exactly)."""
import glob
import os

import cv2
import numpy as np

from edge.benchmarks.standin import HostOnlyStandIn, fixed_labels
from nanoseg.contract import Contract
from nanoseg.normalization import Normalization

STREET_CLASSES = ["road", "car", "sign"]


def street_contract(size=(96, 128)):
    """A softmax contract with three classes (four labels with background)."""
    return Contract.create(size[0], size[1], STREET_CLASSES, "softmax",
                           Normalization.named("scale"))


def standin_backend(milliseconds=2.0, contract=None):
    return HostOnlyStandIn(contract or street_contract(), milliseconds)


def expected_shares(contract, ignored=()):
    """The class shares of the stand-in's fixed label map, counted here with numpy."""
    labels = fixed_labels(contract)
    counts = np.bincount(labels.ravel(), minlength=contract.num_labels).astype(float)
    for label in ignored:
        counts[label] = 0
    return dict((name, counts[label] / counts.sum())
                for label, name in enumerate(contract.class_names) if label not in ignored)


def write_camvid_videos(folder, camvid_dir, count=2, frames=8):
    """``count`` mp4 videos of ``frames`` consecutive CamVid frames each (different frames
    per video); their paths."""
    images = sorted(glob.glob(os.path.join(camvid_dir, "train", "*.png")))
    paths = []
    for video in range(count):
        path = str(folder.joinpath("street{}.mp4".format(video)))
        writer = cv2.VideoWriter(path, cv2.VideoWriter_fourcc(*"mp4v"), 10.0, (480, 360))
        for name in images[video * frames:(video + 1) * frames]:
            writer.write(cv2.resize(cv2.imread(name, cv2.IMREAD_COLOR), (480, 360)))
        writer.release()
        paths.append(path)
    return paths
