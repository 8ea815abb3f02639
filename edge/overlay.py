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
    """uint8 label map (H,W) -> BGR colour image (H,W,3) through the palette (cv2.LUT)."""
    return cv2.LUT(cv2.cvtColor(labels, cv2.COLOR_GRAY2BGR), palette.reshape(1, 256, 3))


def _to_size(image, width, height):
    """``image`` at (width, height) by nearest neighbour: how label maps reach the frame."""
    if image.shape[0] == height and image.shape[1] == width:
        return image
    return cv2.resize(image, (width, height), interpolation=cv2.INTER_NEAREST)


def blend(frame, labels, palette, alpha=0.5):
    """The frame with every non-background pixel tinted by its class colour.

    Background (label 0) stays untouched so the scene stays readable; ``alpha`` is the
    weight of the class colour. ``labels`` may be the model's small map: it is coloured
    at its own size and upscaled once by nearest neighbour (the same pixels as colouring
    the upscaled map), and the 720p work is three OpenCV calls: upscale, addWeighted,
    a masked copy of the background back from the frame.
    """
    alpha = float(min(max(alpha, 0.0), 1.0))
    height, width = frame.shape[:2]
    background = cv2.compare(labels, 0, cv2.CMP_EQ)  # 255 where label 0 (small map)
    if alpha == 0.0 or cv2.countNonZero(background) == background.size:
        return frame.copy()
    colour = _to_size(colorize(labels, palette), width, height)
    out = cv2.addWeighted(frame, 1.0 - alpha, colour, alpha, 0.0)
    if cv2.countNonZero(background):
        cv2.copyTo(frame, _to_size(background, width, height), out)
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


def present_labels(labels, frame_shape):
    """The label ids visible in the frame, counted on the (small) label map.

    Upscaling by nearest neighbour keeps every source pixel, so the small map has the same
    classes as the frame-size one; only when the frame is smaller is the map resized first.
    """
    height, width = frame_shape[:2]
    if labels.shape[0] > height or labels.shape[1] > width:
        labels = _to_size(labels, width, height)
    return set(int(v) for v in np.flatnonzero(np.bincount(labels.ravel())))


class LegendSprite(object):
    """The legend drawn once (for one frame size and set of visible classes), then pasted.

    The anti-aliased text blends with what is under it, so the legend is drawn twice, over
    black and over white; every pixel of the result is then ``under * A + C`` with
    ``A = (white - black) / 255`` and ``C = black``, and pasting is that on the legend's
    small box. Opaque and untouched pixels are exact; anti-aliased edge pixels can differ
    from drawing on the frame by OpenCV's integer rounding (at most a few levels).
    """

    def __init__(self, contract, palette, frame_shape, present):
        height, width = frame_shape[:2]
        black = np.zeros((height, width, 3), np.uint8)
        white = np.full((height, width, 3), 255, np.uint8)
        draw_legend(black, contract, palette, present)
        draw_legend(white, contract, palette, present)
        touched = np.any((black != 0) | (white != 255), axis=2)
        rows, cols = np.flatnonzero(touched.any(axis=1)), np.flatnonzero(touched.any(axis=0))
        if rows.size == 0:
            self.box = None
            return
        y0, y1, x0, x1 = rows[0], rows[-1] + 1, cols[0], cols[-1] + 1
        self.box = (slice(y0, y1), slice(x0, x1))
        low = black[self.box].astype(np.float32)
        self.gain = (white[self.box].astype(np.float32) - low) / np.float32(255.0)
        self.offset = low + np.float32(0.5)  # + 0.5: round to nearest in the cast

    def paste(self, image):
        """Draw the legend onto ``image`` (in place)."""
        if self.box is None:
            return image
        region = image[self.box]
        mixed = region.astype(np.float32) * self.gain + self.offset
        region[...] = np.clip(mixed, 0, 255).astype(np.uint8)
        return image


class Renderer(object):
    """The display frame for one contract: palette and legend sprites are made once.

    ``render`` is what users see: the class overlay, the legend (visible classes marked
    with ``*``) and the statistics; the runtime calls it once per frame on its render
    thread with the model-size label map.
    """

    MAX_SPRITES = 64  # legends kept (frame size x visible classes): bounded memory

    def __init__(self, contract, alpha=0.5):
        self.contract = contract
        self.alpha = float(min(max(alpha, 0.0), 1.0))
        self.palette = bgr_palette(contract)
        self._sprites = {}

    def legend(self, frame_shape, present):
        key = (frame_shape[0], frame_shape[1], frozenset(present))
        sprite = self._sprites.get(key)
        if sprite is None:
            if len(self._sprites) >= self.MAX_SPRITES:
                self._sprites.clear()
            sprite = self._sprites[key] = LegendSprite(self.contract, self.palette,
                                                       frame_shape, present)
        return sprite

    def render(self, frame, labels, fps=None, stage_ms=()):
        """Overlay, legend, statistics; ``labels`` at the model's or the frame's size."""
        out = blend(frame, labels, self.palette, self.alpha)
        self.legend(frame.shape, present_labels(labels, frame.shape)).paste(out)
        draw_stats(out, fps, stage_ms)
        return out


def render(frame, labels, contract, palette, alpha=0.5, fps=None, stage_ms=()):
    """One display frame without a kept :class:`Renderer` (draws the legend directly)."""
    out = blend(frame, labels, palette, alpha)
    draw_legend(out, contract, palette, present_labels(labels, frame.shape))
    draw_stats(out, fps, stage_ms)
    return out
