"""Reading a finished recording back: what a video writer kept, whatever it was told.

``cv2.VideoWriter`` reports no failed write: on a full disk it takes every frame and, at
``release()``, cannot write the index (an mp4's moov atom), so the file plays nothing. A file
sink therefore reads its file back after closing it (:func:`kept_frames`) and says what was
kept (:func:`not_finalized`). When the container's index declares every frame, only the
last one is decoded; otherwise every frame is. An OpenCV that cannot decode the file at all
(a GStreamer-only build whose decoder outputs GPU memory, say) is not a failed recording: an
mp4/mov is then judged by its boxes (complete, with the moov index), another container is
reported as not verified. Python 3.6 + OpenCV.
"""
import os
import struct

import cv2



MP4_EXTENSIONS = (".mp4", ".mov", ".m4v")


def kept_frames(path, expected):
    """How many of the ``expected`` frames the file at ``path`` plays back: 0 when it is
    missing or empty, or cannot be decoded and is an mp4 without a complete index; None when
    this OpenCV cannot decode it and its container cannot be judged (not verified)."""
    if not os.path.isfile(path) or os.path.getsize(path) == 0:
        return 0
    capture = cv2.VideoCapture(path)
    try:
        if not capture.isOpened() or not capture.read()[0]:
            return by_structure(path, expected)
        declared = int(capture.get(cv2.CAP_PROP_FRAME_COUNT) or 0)
        if declared >= expected and (expected == 1 or (
                capture.set(cv2.CAP_PROP_POS_FRAMES, expected - 1) and capture.read()[0])):
            return expected
        # no index, or one that holds fewer (some backends estimate it): count by decoding
        capture.release()
        capture = cv2.VideoCapture(path)
        count = 0
        while count < expected and capture.read()[0]:
            count += 1
        return count
    finally:
        capture.release()


def by_structure(path, expected):
    """For a file OpenCV cannot decode: ``expected`` when it is an mp4/mov whose top-level
    boxes are complete and hold the moov index (what a full disk or a missing EOS never
    writes), else 0; None for other containers (nothing to judge by)."""
    if os.path.splitext(path)[1].lower() not in MP4_EXTENSIONS:
        return None
    return expected if mp4_is_complete(path) else 0


def mp4_is_complete(path):
    """True when the file is a sequence of whole ISO-BMFF boxes, one of them ``moov``."""
    size = os.path.getsize(path)
    seen_moov = False
    with open(path, "rb") as handle:
        offset = 0
        while offset < size:
            handle.seek(offset)
            header = handle.read(16)
            if len(header) < 8:
                return False
            box_size, kind = struct.unpack(">I4s", header[:8])
            if box_size == 1:  # 64-bit size follows the type
                if len(header) < 16:
                    return False
                box_size = struct.unpack(">Q", header[8:16])[0]
            elif box_size == 0:  # the box runs to the end of the file
                box_size = size - offset
            if box_size < 8 or offset + box_size > size:
                return False
            seen_moov = seen_moov or kind == b"moov"
            offset += box_size
    return seen_moov


def not_finalized(flag, path, kept, frames):
    """The one-line error for a recording that keeps fewer frames than were written."""
    return ("{} {} was not finalized: {} of the {} frames written play back (is the disk "
            "full? free space or record to another folder)".format(flag, path, kept, frames))
