"""Reading a finished recording back: what a video writer kept, whatever it was told.

``cv2.VideoWriter`` reports no failed write: on a full disk it takes every frame and, at
``release()``, cannot write the index (an mp4's moov atom), so the file plays nothing. A file
sink therefore reads its file back after closing it (:func:`kept_frames`) and says what was
kept (:func:`not_finalized`). When the container's index declares every frame, only the
last one is decoded; otherwise every frame is. Python 3.6 + OpenCV.
"""
import os

import cv2



def kept_frames(path, expected):
    """How many of the ``expected`` frames the file at ``path`` plays back (0 when it does
    not open or its first frame does not decode)."""
    if not os.path.isfile(path) or os.path.getsize(path) == 0:
        return 0
    capture = cv2.VideoCapture(path)
    try:
        if not capture.isOpened() or not capture.read()[0]:
            return 0
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


def not_finalized(flag, path, kept, frames):
    """The one-line error for a recording that keeps fewer frames than were written."""
    return ("{} {} was not finalized: {} of the {} frames written play back (is the disk "
            "full? free space or record to another folder)".format(flag, path, kept, frames))
