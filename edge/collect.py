"""``run_camera --collect DIR``: keep the frames worth labelling, ready to train on.

The frames go into the flat training layout: ``DIR/images/<stem>.png`` (the camera frame)
and ``DIR/masks/<stem>.png`` (the model's prediction at the frame's size, as an editable
pre-label: 0/255 for a sigmoid model, label ids for softmax), and one row per frame in
``DIR/collected.csv`` (file, source, UTC time, frame index, why). ``train/train.py --data DIR
--layout flat`` trains on the folder as it is, once the masks are corrected.

A frame is kept when the model is unsure (more than ``uncertain`` of its pixels have a top
probability below :data:`UNSURE_BELOW`), when a class appears or disappears (covering at
least :data:`PRESENT_SHARE` of the frame), or every ``every`` seconds; never more than
``max_frames`` per run, never closer than ``gap`` seconds for the first two reasons (a
camera's neighbouring frames are near copies), and never once the disk has less than
:data:`KEEP_FREE_BYTES` free. The sink runs on its own worker (delivery "every"): the
decisions and the PNG writes stay off the inference thread. Python 3.6, numpy + OpenCV.
"""
import csv
import io
import logging
import os
import shutil
import threading
import time

import cv2
import numpy as np

from edge.sinks import Sink
from nanoseg.errors import NanosegError
from nanoseg.files import check_writable

LOG = logging.getLogger(__name__)
UNSURE_BELOW = 0.75         # a pixel whose most likely label has less is "unsure"
PRESENT_SHARE = 0.005       # a class on fewer pixels is noise, not an appearance
KEEP_FREE_BYTES = 64 << 20  # collection stops before the disk is this full
MANIFEST = "collected.csv"
MANIFEST_COLUMNS = ("image", "mask", "source", "time_utc", "frame", "reason",
                    "unsure_share", "classes")
IMAGES, MASKS = "images", "masks"


def top_probability(probs):
    """The probability of each pixel's chosen label (sigmoid: max(p, 1 - p))."""
    if probs.shape[-1] == 1:
        p = probs[..., 0]
        return np.maximum(p, 1.0 - p)
    return probs.max(axis=-1)


def unsure_share(probs):
    """The share of pixels whose chosen label has a probability below UNSURE_BELOW."""
    return float(np.count_nonzero(top_probability(probs) < UNSURE_BELOW)) / \
        max(probs.shape[0] * probs.shape[1], 1)


class CollectSink(Sink):
    """Keeps frames worth labelling in ``folder`` (see the module's docstring)."""

    delivery = "every"
    # One sink per --source, each on its own worker thread: they share the manifest.
    _manifest_lock = threading.Lock()

    def __init__(self, folder, contract, source, uncertain=0.2, every=None, max_frames=200,
                 gap=1.0, clock=time.monotonic, keep_free=KEEP_FREE_BYTES, tag=""):
        if not 0.0 <= uncertain <= 1.0:
            raise NanosegError("--collect-uncertain is a share of pixels in [0, 1] (1: "
                               "off), got {}".format(uncertain))
        if every is not None and every <= 0:
            raise NanosegError("--collect-every must be positive seconds, got {}".format(every))
        if max_frames < 1:
            raise NanosegError("--collect-max must be at least 1, got {}".format(max_frames))
        if gap < 0:
            raise NanosegError("--collect-gap must be 0 or more seconds, got {}".format(gap))
        check_writable(folder, "--collect", folder=True)
        self.folder = folder
        self.contract = contract
        self.source = source
        self.uncertain, self.every, self.max_frames, self.gap = uncertain, every, max_frames, gap
        self.needs_probabilities = uncertain < 1.0
        self._clock = clock
        self._keep_free = keep_free
        self._stamp = time.strftime("%Y%m%d-%H%M%S", time.gmtime())
        if tag:  # several sources: their frame indexes overlap
            self._stamp += "_" + tag
        self._present = None
        self._last_kept = None
        self._last_periodic = None
        self.kept = 0
        self.reasons = {"uncertain": 0, "class_change": 0, "every": 0}
        self.stopped = None
        for sub in (IMAGES, MASKS):
            try:
                os.makedirs(os.path.join(folder, sub), exist_ok=True)
            except OSError as exc:
                raise NanosegError("cannot create --collect folder {}: {}".format(
                    os.path.join(folder, sub), exc))

    # -- deciding -------------------------------------------------------------------------
    def _present_classes(self, small_labels):
        counts = np.bincount(small_labels.ravel(), minlength=self.contract.num_labels)
        least = PRESENT_SHARE * small_labels.size
        return frozenset(label for label in range(1, self.contract.num_labels)
                         if counts[label] >= least)

    def reasons_for(self, result, now):
        """(reasons, unsure share, present classes) of this frame; reasons may be empty."""
        reasons = []
        present = self._present_classes(result.small_labels)
        previous, self._present = self._present, present
        share = None
        if self.needs_probabilities and result.probabilities is not None:
            share = unsure_share(result.probabilities)
            if share > self.uncertain:
                reasons.append("uncertain")
        if previous is not None and present != previous:
            reasons.append("class_change")
        if reasons and self._last_kept is not None and now - self._last_kept < self.gap:
            reasons = []
        if self.every is not None:
            if self._last_periodic is None:
                self._last_periodic = now
            elif now - self._last_periodic >= self.every:
                self._last_periodic = now
                reasons.append("every")
        return reasons, share, present

    def write(self, result):
        if self.stopped:
            return
        now = self._clock()
        reasons, share, present = self.reasons_for(result, now)
        if not reasons:
            return
        if self.kept >= self.max_frames:
            self._stop("--collect-max {} frames kept".format(self.max_frames))
            return
        free = shutil.disk_usage(self.folder).free
        if free < self._keep_free:
            self._stop("less than {} MB free on the disk of {}".format(
                self._keep_free >> 20, self.folder))
            return
        self._keep(result, reasons, share, present)
        self._last_kept = now

    def _stop(self, why):
        self.stopped = why
        LOG.warning("--collect stops (%s): %d frames kept in %s; the run goes on", why,
                    self.kept, self.folder)

    # -- keeping ----------------------------------------------------------------------------
    def pre_label(self, labels):
        """The prediction as a mask the flat layout reads back: 0/255 for sigmoid models
        (binary masks), label ids for softmax (train with --classes name=id ...)."""
        if self.contract.activation == "sigmoid":
            return np.where(labels == 1, 255, 0).astype(np.uint8)
        return labels

    def _keep(self, result, reasons, share, present):
        stem = "{}_{:06d}".format(self._stamp, int(result.index))
        image = os.path.join(self.folder, IMAGES, stem + ".png")
        mask = os.path.join(self.folder, MASKS, stem + ".png")
        for path, pixels in ((image, result.frame), (mask, self.pre_label(result.labels))):
            if not cv2.imwrite(path, pixels):
                raise NanosegError("--collect cannot write {} (disk full or read-only?)".format(
                    path))
        names = self.contract.class_names
        row = [IMAGES + "/" + stem + ".png", MASKS + "/" + stem + ".png", self.source,
               time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()), int(result.index),
               "+".join(reasons), "" if share is None else "{:.4f}".format(share),
               " ".join(names[label] for label in sorted(present))]
        self._append_row(row)
        self.kept += 1
        for reason in reasons:
            self.reasons[reason] += 1

    def _append_row(self, row):
        path = os.path.join(self.folder, MANIFEST)
        buffer = io.StringIO()
        writer = csv.writer(buffer, lineterminator="\n")
        with self._manifest_lock:
            if not os.path.isfile(path):
                writer.writerow(MANIFEST_COLUMNS)
            writer.writerow(row)
            try:
                with open(path, "a") as handle:
                    handle.write(buffer.getvalue())
            except (IOError, OSError) as exc:
                raise NanosegError("--collect cannot append to {}: {}".format(path, exc))

    def counts(self):
        """For the run summary: frames kept, by reason, and why collection stopped."""
        out = {"kept": self.kept, "collect_stopped": self.stopped}
        out.update(("kept_" + reason, count) for reason, count in self.reasons.items())
        return out

    def close(self):
        if self.kept:
            LOG.info("--collect: %d frames kept in %s (%s)", self.kept, self.folder, ", ".join(
                "{} {}".format(count, reason) for reason, count in self.reasons.items()))
