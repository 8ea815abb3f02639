"""Drawing the segmentation over the camera frame: class colours, a legend, FPS and timings.

Colours come from the contract (RGB, converted to OpenCV's BGR here, once). numpy + OpenCV
4.1 drawing calls only, so the Jetson renders exactly what the desktop shows.
"""
import cv2
import numpy as np

FONT = cv2.FONT_HERSHEY_SIMPLEX
TEXT_COLOR = (255, 255, 255)
SHADOW_COLOR = (0, 0, 0)


def bgr_palette(contract):
    """(256, 3) uint8 BGR lookup table: contract colours by label id, the rest black."""
    lut = np.zeros((256, 3), dtype=np.uint8)
    colors = contract.colors
    lut[:len(colors)] = colors[:, ::-1]
    return lut


def colorize(labels, palette):
    """uint8 label map (H,W) -> BGR colour image (H,W,3) through the palette."""
    return palette[labels]


def blend(frame, labels, palette, alpha=0.5):
    """The frame with every non-background pixel tinted by its class colour.

    Background (label 0) stays untouched so the scene stays readable; ``alpha`` is the
    weight of the class colour.
    """
    alpha = float(min(max(alpha, 0.0), 1.0))
    out = frame.copy()
    mask = labels > 0
    if alpha == 0.0 or not mask.any():
        return out
    tinted = cv2.addWeighted(frame, 1.0 - alpha, colorize(labels, palette), alpha, 0.0)
    out[mask] = tinted[mask]
    return out


def _text(image, text, origin, scale=0.5):
    """Readable text on any background: a dark shadow under white letters."""
    x, y = origin
    cv2.putText(image, text, (x + 1, y + 1), FONT, scale, SHADOW_COLOR, 2, cv2.LINE_AA)
    cv2.putText(image, text, (x, y), FONT, scale, TEXT_COLOR, 1, cv2.LINE_AA)


def draw_legend(image, contract, palette, present=None):
    """Colour swatches with class names at the right, below the statistics (in place).

    ``present`` (a set of label ids) marks the classes visible in this frame with ``*``.
    """
    line = 18
    width = 14 + max(len(name) for name in contract.class_names) * 9
    x0 = max(image.shape[1] - width - 8, 0)
    for label, name in enumerate(contract.class_names):
        y = 50 + label * line  # below the two statistics lines
        color = tuple(int(c) for c in palette[label])
        cv2.rectangle(image, (x0, y), (x0 + 12, y + 12), color, -1)
        cv2.rectangle(image, (x0, y), (x0 + 12, y + 12), TEXT_COLOR, 1)
        mark = "*" if present is not None and label in present else ""
        _text(image, name + mark, (x0 + 18, y + 11), 0.45)
    return image


def draw_stats(image, fps, stage_ms):
    """FPS and per-stage milliseconds in the top-left corner (in place)."""
    _text(image, "{:.1f} FPS".format(fps or 0.0), (8, 20), 0.6)
    parts = ["{} {:.1f}".format(name, ms) for name, ms in stage_ms]
    if parts:
        _text(image, "ms: " + "  ".join(parts), (8, 40), 0.45)
    return image


def render(frame, labels, contract, palette, alpha=0.5, fps=None, stage_ms=()):
    """The display frame: overlay, legend, statistics. ``labels`` has the frame's size."""
    out = blend(frame, labels, palette, alpha)
    present = set(int(v) for v in np.flatnonzero(np.bincount(labels.ravel())))
    draw_legend(out, contract, palette, present)
    draw_stats(out, fps, stage_ms)
    return out
