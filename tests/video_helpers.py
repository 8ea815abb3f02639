"""Video helpers for tests (Python 3.6 compatible: tests/py36 uses them too)."""
import cv2


def count_frames(path):
    """Frames a reader really decodes from ``path`` (the container's count can lie)."""
    capture = cv2.VideoCapture(str(path))
    count = 0
    while capture.read()[0]:
        count += 1
    capture.release()
    return count
