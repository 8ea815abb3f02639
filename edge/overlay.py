"""Drawing the segmentation over the camera frame: class colours, a legend, FPS and timings.

Colours come from the contract (RGB, converted to OpenCV's BGR here, once). numpy + OpenCV
4.1 drawing calls only, so the Jetson renders exactly what the desktop shows.
"""
import collections

import cv2
import numpy as np

from nanoseg.errors import NanosegError

VISUALIZATIONS = ("overlay", "mask")  # --visualize, as jetson-inference's segnet names them
FONT = cv2.FONT_HERSHEY_SIMPLEX
TEXT_COLOR = (255, 255, 255)
SHADOW_COLOR = (0, 0, 0)
LEGEND_TOP = 50  # y of the first swatch: below the two statistics lines
LEGEND_LINE = 18  # px per class
LEGEND_SCALE = 0.45  # font scale of the class names


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


def legend_x0(contract, frame_width):
    """x of the legend's swatches: its estimated width from the right edge of the frame."""
    width = 14 + max(len(name) for name in contract.class_names) * 9
    return max(frame_width - width - 8, 0)


def legend_texts(contract, present=None):
    """The class names as drawn: those in ``present`` (label ids) marked with ``*``."""
    return [name + ("*" if present is not None and label in present else "")
            for label, name in enumerate(contract.class_names)]


def draw_legend(image, contract, palette, present=None, origin=None):
    """Colour swatches with class names at the right, below the statistics (in place).

    ``present`` (a set of label ids) marks the classes visible in this frame with ``*``.
    ``origin`` is (x, y) of the first swatch in ``image``: by default the frame's layout
    (right edge, below the statistics); a sprite passes where that lands on its canvas.
    """
    if origin is None:
        origin = (legend_x0(contract, image.shape[1]), LEGEND_TOP)
    x0, top = origin
    for label, text in enumerate(legend_texts(contract, present)):
        y = top + label * LEGEND_LINE
        color = tuple(int(c) for c in palette[label])
        cv2.rectangle(image, (x0, y), (x0 + 12, y + 12), color, -1)
        cv2.rectangle(image, (x0, y), (x0 + 12, y + 12), TEXT_COLOR, 1)
        _text(image, text, (x0 + 18, y + 11), LEGEND_SCALE)
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
    Both drawings are made on a canvas of the legend's extent only (the layout is known:
    :func:`legend_x0`, LEGEND_TOP, one LEGEND_LINE per class, the names' text size), cut
    where the frame ends, so a new sprite costs the legend's pixels, not a frame's.
    """

    PAD = 6  # px around the measured extent: the shadow, anti-aliasing

    def __init__(self, contract, palette, frame_shape, present):
        top, bottom, left, right = self.extent(contract, frame_shape, present)
        self.box = None
        if bottom <= top or right <= left:
            return
        shape = (bottom - top, right - left, 3)
        black, white = np.zeros(shape, np.uint8), np.full(shape, 255, np.uint8)
        origin = (legend_x0(contract, frame_shape[1]) - left, LEGEND_TOP - top)
        draw_legend(black, contract, palette, present, origin)
        draw_legend(white, contract, palette, present, origin)
        touched = np.any((black != 0) | (white != 255), axis=2)
        rows, cols = np.flatnonzero(touched.any(axis=1)), np.flatnonzero(touched.any(axis=0))
        if rows.size == 0:
            return
        inner = (slice(rows[0], rows[-1] + 1), slice(cols[0], cols[-1] + 1))
        self.box = (slice(top + rows[0], top + rows[-1] + 1),
                    slice(left + cols[0], left + cols[-1] + 1))
        low = black[inner].astype(np.float32)
        self.gain = (white[inner].astype(np.float32) - low) / np.float32(255.0)
        self.offset = low + np.float32(0.5)  # + 0.5: round to nearest in the cast

    @classmethod
    def extent(cls, contract, frame_shape, present):
        """(top, bottom, left, right) in the frame that holds everything draw_legend draws."""
        height, width = frame_shape[:2]
        x0 = legend_x0(contract, width)
        sizes = [cv2.getTextSize(text, FONT, LEGEND_SCALE, 2)
                 for text in legend_texts(contract, present)]
        text_width = max(size[0][0] for size in sizes)
        descent = max(size[1] for size in sizes)
        last_row = LEGEND_TOP + (len(sizes) - 1) * LEGEND_LINE
        return (max(LEGEND_TOP - cls.PAD, 0),
                min(last_row + 11 + 1 + descent + cls.PAD, height),
                max(x0 - cls.PAD, 0),
                min(x0 + 18 + 1 + text_width + cls.PAD, width))

    def paste(self, image):
        """Draw the legend onto ``image`` (in place)."""
        if self.box is None:
            return image
        region = image[self.box]
        mixed = region.astype(np.float32) * self.gain + self.offset
        region[...] = np.clip(mixed, 0, 255).astype(np.uint8)
        return image


def hiding_table(hidden):
    """A uint8 lookup table sending the label ids in ``hidden`` to background (0), or None."""
    hidden = [int(label) for label in hidden]
    if not hidden:
        return None
    table = np.arange(256, dtype=np.uint8)
    table[hidden] = 0
    return table


class Renderer(object):
    """The display frame for one contract: palette and legend sprites are made once.

    ``render`` is what users see: the class overlay, the legend (visible classes marked
    with ``*``) and the statistics; ``hidden`` label ids are drawn as background
    (``--ignore-class``); the runtime calls it once per frame on its render
    thread with the model-size label map.
    """

    MAX_SPRITES = 64  # legends kept (frame size x visible classes): bounded memory

    def __init__(self, contract, alpha=0.5, visualize="overlay", hidden=()):
        if visualize not in VISUALIZATIONS:
            raise NanosegError("--visualize must be one of {}, got {!r}".format(
                " ".join(VISUALIZATIONS), visualize))
        self.visualize = visualize
        self.contract = contract
        self.alpha = float(min(max(alpha, 0.0), 1.0))
        self.palette = bgr_palette(contract)
        self._hide = hiding_table(hidden)
        self._sprites = collections.OrderedDict()  # least recently used first

    def legend(self, frame_shape, present):
        """The sprite for this frame size and visible classes; a full cache drops only the
        least recently used one (clearing it all would redraw every legend in a burst)."""
        key = (frame_shape[0], frame_shape[1], frozenset(present))
        sprite = self._sprites.get(key)
        if sprite is not None:
            self._sprites.move_to_end(key)
            return sprite
        while len(self._sprites) >= self.MAX_SPRITES:
            self._sprites.popitem(last=False)
        sprite = self._sprites[key] = LegendSprite(self.contract, self.palette, frame_shape,
                                                   present)
        return sprite

    def overlay(self, frame, labels):
        """Class overlay and legend, no statistics; ``labels`` at the model's or the frame's
        size (the Python API's picture: a script has no FPS to show)."""
        if self._hide is not None:  # --ignore-class: drawn as background, not in the legend
            labels = cv2.LUT(labels, self._hide)
        if self.visualize == "mask":  # jetson-inference's mask view: class colours alone
            out = _to_size(colorize(labels, self.palette), frame.shape[1], frame.shape[0])
        else:
            out = blend(frame, labels, self.palette, self.alpha)
        self.legend(frame.shape, present_labels(labels, frame.shape)).paste(out)
        return out

    def render(self, frame, labels, fps=None, stage_ms=()):
        """Overlay, legend, statistics; ``labels`` at the model's or the frame's size."""
        return draw_stats(self.overlay(frame, labels), fps, stage_ms)


def render(frame, labels, contract, palette, alpha=0.5, fps=None, stage_ms=()):
    """One display frame without a kept :class:`Renderer` (draws the legend directly)."""
    out = blend(frame, labels, palette, alpha)
    draw_legend(out, contract, palette, present_labels(labels, frame.shape))
    draw_stats(out, fps, stage_ms)
    return out
