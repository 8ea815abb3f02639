"""A synthetic nail dataset (and video) that the project generates itself, for the demo.

Each scene is a textured, coloured background (gradients, stripes, blotches, noise) with
distractor shapes, two to five skin-coloured fingers, and a nail at each fingertip: a
rounded, rotated superellipse with polish colour, shading, a glossy highlight, a lighter free
edge and a darker rim. The mask is exactly the filled nail polygon, so labels are exact.

Why it is learnable but not trivial: nails differ from the background by shape and by their
structure (highlight, rim, free edge, sitting on a finger), while their colours vary and
also occur in the background and the distractors, so no single colour threshold finds them.
Foreground is ~5-20% of pixels. Everything is drawn from ``numpy.random.RandomState`` seeded
by ``(seed, index)``: the same seed gives byte-identical files.
"""
import json
import logging
import os
import shutil

import cv2
import numpy as np

from nanoseg.files import write_text_atomic
from nanoseg.errors import NanosegError

LOG = logging.getLogger(__name__)

GENERATOR_VERSION = 1
MANIFEST = "synthetic.json"
JPEG_QUALITY = 92
SKIN_TONES = ((224, 172, 140), (198, 134, 103), (241, 194, 161), (160, 105, 75),
              (110, 72, 52), (232, 185, 160))  # RGB
POLISH_COLORS = ((200, 30, 60), (235, 120, 160), (230, 200, 190), (120, 40, 140),
                 (40, 60, 160), (250, 90, 40), (180, 180, 190), (30, 30, 35), (240, 150, 150))


def _rng(seed, index):
    """A RandomState for image ``index`` of ``seed``: images do not depend on ``count``."""
    return np.random.RandomState([int(seed) & 0xFFFFFFFF, int(index) & 0xFFFFFFFF, 7])


def _random_color(rng):
    """A saturated-or-muted random RGB colour (float32 3-vector)."""
    hue = rng.randint(0, 180)
    sat = rng.randint(40, 256)
    val = rng.randint(60, 256)
    hsv = np.uint8([[[hue, sat, val]]])
    return cv2.cvtColor(hsv, cv2.COLOR_HSV2RGB)[0, 0].astype(np.float32)


# -- backgrounds ---------------------------------------------------------------------------
def _background(rng, height, width):
    """A float32 RGB texture: a gradient, stripes or blotches, two colours, plus noise.

    Drawn with a palette that sometimes includes skin and polish colours, so colour alone
    cannot separate nails from background.
    """
    first = _random_color(rng)
    second = _random_color(rng) if rng.rand() < 0.7 else \
        np.float32(POLISH_COLORS[rng.randint(len(POLISH_COLORS))])
    ys, xs = np.mgrid[0:height, 0:width].astype(np.float32)
    angle = rng.uniform(0, np.pi)
    along = (xs * np.cos(angle) + ys * np.sin(angle)) / float(max(height, width))
    kind = rng.randint(3)
    if kind == 0:    # linear gradient
        weight = np.clip(along - along.min(), 0, None) / max(float(np.ptp(along)), 1e-6)
    elif kind == 1:  # stripes, soft or hard
        period = rng.uniform(0.05, 0.25)
        weight = 0.5 + 0.5 * np.sin(2 * np.pi * along / period + rng.uniform(0, 2 * np.pi))
        if rng.rand() < 0.5:
            weight = (weight > 0.5).astype(np.float32)
    else:            # blotches: low-resolution noise blown up
        cells = rng.rand(rng.randint(3, 8), rng.randint(3, 8)).astype(np.float32)
        weight = cv2.resize(cells, (width, height), interpolation=cv2.INTER_CUBIC)
        weight = np.clip(weight, 0, 1)
    image = first[None, None, :] * (1 - weight[:, :, None]) + second[None, None, :] * \
        weight[:, :, None]
    grain = rng.normal(0, rng.uniform(4, 14), (height, width, 1)).astype(np.float32)
    return image + grain


def _distractors(rng, image, count):
    """Rectangles, circles, triangles and lines in random colours (never in the mask)."""
    height, width = image.shape[:2]
    for _ in range(count):
        color = tuple(float(v) for v in (_random_color(rng) if rng.rand() < 0.6 else
                                         POLISH_COLORS[rng.randint(len(POLISH_COLORS))]))
        kind = rng.randint(4)
        x, y = int(rng.randint(0, width)), int(rng.randint(0, height))
        size = int(rng.randint(6, max(8, min(height, width) // 5)))
        if kind == 0:
            cv2.rectangle(image, (x, y), (x + size, y + int(size * rng.uniform(0.4, 1.5))),
                          color, -1)
        elif kind == 1:
            cv2.circle(image, (x, y), size // 2, color, -1)
        elif kind == 2:
            points = np.int32([[x, y], [x + size, y + size // 3], [x + size // 4, y + size]])
            cv2.fillPoly(image, [points], color)
        else:
            end = (x + int(rng.randint(-size * 2, size * 2)), y + int(rng.randint(-size * 2,
                                                                                   size * 2)))
            cv2.line(image, (x, y), end, color, int(rng.randint(1, 4)))


# -- fingers and nails -------------------------------------------------------------------------
def _nail_polygon(center, half_length, half_width, angle, exponent=2.6, points=48):
    """Outline of a rounded, rotated superellipse (int32 N x 2, x/y pixel coordinates)."""
    t = np.linspace(0, 2 * np.pi, points, endpoint=False)
    cos_t, sin_t = np.cos(t), np.sin(t)
    u = half_length * np.sign(cos_t) * np.abs(cos_t) ** (2.0 / exponent)
    v = half_width * np.sign(sin_t) * np.abs(sin_t) ** (2.0 / exponent)
    ca, sa = np.cos(angle), np.sin(angle)
    x = center[0] + u * ca - v * sa
    y = center[1] + u * sa + v * ca
    return np.round(np.stack([x, y], axis=1)).astype(np.int32)


def _layout_nails(rng, height, width):
    """Nail centres/sizes/angles for one scene: 2-5 nails, ~5-20% of the image in total."""
    count = int(rng.randint(2, 6))
    short = float(min(height, width))
    target = rng.uniform(0.06, 0.15) * height * width / count   # area of one nail
    nails = []
    for _ in range(count):
        aspect = rng.uniform(1.2, 1.7)
        half_width = np.sqrt(target / (np.pi * aspect)) * rng.uniform(0.85, 1.15)
        half_length = half_width * aspect
        half_width, half_length = min(half_width, short * 0.2), min(half_length, short * 0.3)
        margin = half_length + 2
        center = (rng.uniform(margin, width - margin), rng.uniform(margin, height - margin))
        nails.append({"center": center, "half_length": half_length, "half_width": half_width,
                      "angle": rng.uniform(0, 2 * np.pi),
                      "skin": np.float32(SKIN_TONES[rng.randint(len(SKIN_TONES))]) *
                      np.float32(rng.uniform(0.85, 1.1)),
                      "polish": _nail_color(rng), "exponent": rng.uniform(2.2, 3.2),
                      "free_edge": rng.uniform(0.55, 0.75)})
    return nails


def _nail_color(rng):
    """Polish, a natural nail (pinkish skin) or any colour: nails are not one colour."""
    choice = rng.rand()
    if choice < 0.5:
        color = np.float32(POLISH_COLORS[rng.randint(len(POLISH_COLORS))])
    elif choice < 0.8:
        color = np.float32((235, 180, 175))
    else:
        color = _random_color(rng)
    return np.clip(color * np.float32(rng.uniform(0.85, 1.1)), 0, 255)


def _along(x, y, angle, distance):
    """The integer pixel ``distance`` from (x, y) in direction ``angle``."""
    return (int(round(x + np.cos(angle) * distance)), int(round(y + np.sin(angle) * distance)))


def _draw_finger(image, nail):
    """A thick, round-capped skin stroke from the nail back towards (and past) the edge."""
    cx, cy = nail["center"]
    angle, length = nail["angle"], nail["half_length"]
    back = _along(cx, cy, angle, -6.0 * length)
    tip = _along(cx, cy, angle, 0.9 * length)
    thickness = max(3, int(round(nail["half_width"] * 2.9)))
    cv2.line(image, back, tip, tuple(float(v) for v in nail["skin"]), thickness)
    # a soft darker edge line along one side: fingers are round, not flat
    shade = tuple(float(v) for v in nail["skin"] * np.float32(0.8))
    offset = (-np.sin(angle) * thickness * 0.4, np.cos(angle) * thickness * 0.4)
    cv2.line(image, (int(back[0] + offset[0]), int(back[1] + offset[1])),
             (int(tip[0] + offset[0] * 0.5), int(tip[1] + offset[1] * 0.5)), shade,
             max(1, thickness // 5))


def _draw_nail(image, mask, nail):
    """Fill the nail (image and mask from one polygon), then shade inside the mask only."""
    height, width = mask.shape
    polygon = _nail_polygon(nail["center"], nail["half_length"], nail["half_width"],
                            nail["angle"], exponent=nail["exponent"])
    own = np.zeros((height, width), dtype=np.uint8)
    cv2.fillPoly(own, [polygon], 1)
    inside = own.astype(bool)
    mask[inside] = 255
    ys, xs = np.nonzero(inside)
    cx, cy = nail["center"]
    ca, sa = np.cos(nail["angle"]), np.sin(nail["angle"])
    u = ((xs - cx) * ca + (ys - cy) * sa) / nail["half_length"]     # -1 cuticle .. 1 tip
    v = (-(xs - cx) * sa + (ys - cy) * ca) / nail["half_width"]     # -1 .. 1 across
    shade = 1.08 - 0.22 * v ** 2 + 0.06 * u                          # rounded, lit from tip
    color = nail["polish"][None, :] * shade[:, None].astype(np.float32)
    free_edge = u > nail["free_edge"]                               # lighter free edge
    color[free_edge] = color[free_edge] * 0.45 + np.float32((250, 245, 235)) * 0.55
    highlight = np.exp(-((u + 0.1) ** 2 / 0.18 + (v + 0.35) ** 2 / 0.02))
    color += highlight[:, None].astype(np.float32) * 110.0
    image[ys, xs] = color
    cv2.polylines(image, [polygon], True, tuple(float(c) for c in nail["polish"] * 0.55), 1)


def render_scene(rng, size, nails=None, background=None):
    """(RGB uint8 image, uint8 0/255 mask) of one scene; ``nails`` from _layout_nails.

    ``background`` (float32 HxWx3, distractors included) lets the video reuse a panning
    texture; otherwise a new one is drawn.
    """
    height, width = size
    if background is None:
        image = _background(rng, height, width)
        _distractors(rng, image, int(rng.randint(2, 7)))
    else:
        image = background.copy()
    nails = _layout_nails(rng, height, width) if nails is None else nails
    for nail in nails:
        _draw_finger(image, nail)
    mask = np.zeros((height, width), dtype=np.uint8)
    for nail in nails:
        _draw_nail(image, mask, nail)
    image = cv2.GaussianBlur(image, (3, 3), rng.uniform(0.3, 0.9))
    image += rng.normal(0, rng.uniform(2, 6), image.shape).astype(np.float32)
    image *= np.float32(rng.uniform(0.8, 1.15))                    # exposure
    return np.clip(np.round(image), 0, 255).astype(np.uint8), mask


# -- the dataset on disk -----------------------------------------------------------------------
def _check_size(size):
    """(height, width) as ints >= 32, or a one-line error naming --size."""
    try:
        height, width = (int(v) for v in size)
    except (TypeError, ValueError):
        raise NanosegError("size must be two integers H W, got {!r}".format(size))
    if height < 32 or width < 32:
        raise NanosegError("size {}x{} is too small for nail-like shapes: use --size of at "
                           "least 32 32".format(height, width))
    return height, width


def _write_png_or_jpg(path, rgb_or_gray):
    """Encode with OpenCV (deterministic for a given OpenCV build) and write the bytes."""
    ext = os.path.splitext(path)[1].lower()
    image = rgb_or_gray if rgb_or_gray.ndim == 2 else cv2.cvtColor(rgb_or_gray,
                                                                   cv2.COLOR_RGB2BGR)
    params = [cv2.IMWRITE_JPEG_QUALITY, JPEG_QUALITY] if ext == ".jpg" else \
        [cv2.IMWRITE_PNG_COMPRESSION, 3]
    ok, encoded = cv2.imencode(ext, image, params)
    if not ok:
        raise NanosegError("OpenCV could not encode {}".format(path))
    with open(path, "wb") as handle:
        handle.write(encoded.tobytes())


def _manifest(count, size, seed, image_format):
    """The parameters that decide every byte: equal manifests mean equal files."""
    return {"generator": "nanoseg.synthetic", "version": GENERATOR_VERSION, "count": count,
            "size": list(size), "seed": int(seed), "image_format": image_format}


def _existing_manifest(out_dir):
    """The manifest of a folder we generated before, or None if ``out_dir`` is not ours."""
    path = os.path.join(out_dir, MANIFEST)
    if not os.path.isfile(path):
        return None
    try:
        with open(path, "r") as handle:
            return json.load(handle)
    except ValueError:
        return None


def make_synthetic_dataset(out_dir, count=60, size=(192, 256), seed=0, image_format="jpg"):
    """Write ``count`` synthetic pairs to ``out_dir`` in the flat layout; return the manifest.

    ``images/synth_0000.jpg`` + ``masks/synth_0000.png`` (0/255) and ``synthetic.json`` with
    the parameters and the foreground fraction. A folder already generated with the same
    parameters is reused; one generated with others is replaced; anything else is refused,
    so a wrong --out never deletes user data. Written to a temporary folder, then renamed.
    """
    if int(count) < 1:
        raise NanosegError("count must be at least 1, got {}".format(count))
    if image_format not in ("jpg", "png"):
        raise NanosegError("image_format must be jpg or png, got {!r}".format(image_format))
    height, width = _check_size(size)
    out_dir = os.path.abspath(str(out_dir))
    wanted = _manifest(int(count), (height, width), seed, image_format)
    existing = _existing_manifest(out_dir)
    if existing is not None and {k: existing.get(k) for k in wanted} == wanted:
        LOG.info("reusing synthetic dataset %s (same parameters)", out_dir)
        return existing
    if os.path.isdir(out_dir) and os.listdir(out_dir) and existing is None:
        raise NanosegError("{} exists and is not a synthetic dataset (no {}): choose an empty "
                           "or new --out folder".format(out_dir, MANIFEST))
    tmp = "{}.tmp{}".format(out_dir, os.getpid())
    if os.path.isdir(tmp):
        shutil.rmtree(tmp)
    fractions = _write_pairs(tmp, int(count), (height, width), seed, image_format)
    wanted["foreground_fraction"] = round(float(np.mean(fractions)), 4)
    write_text_atomic(os.path.join(tmp, MANIFEST), json.dumps(wanted, indent=2) + "\n")
    if os.path.isdir(out_dir):
        shutil.rmtree(out_dir)   # ours (it has synthetic.json) or empty
    os.rename(tmp, out_dir)
    LOG.info("wrote %d synthetic pairs (%dx%d, seed %s, foreground %.1f%%) to %s", count,
             height, width, seed, 100 * wanted["foreground_fraction"], out_dir)
    return wanted


def _write_pairs(folder, count, size, seed, image_format):
    """Render and write the pairs; return each mask's foreground fraction."""
    os.makedirs(os.path.join(folder, "images"))
    os.makedirs(os.path.join(folder, "masks"))
    fractions = []
    for index in range(count):
        image, mask = render_scene(_rng(seed, index), size)
        name = "synth_{:04d}".format(index)
        _write_png_or_jpg(os.path.join(folder, "images", name + "." + image_format), image)
        _write_png_or_jpg(os.path.join(folder, "masks", name + ".png"), mask)
        fractions.append(float(np.count_nonzero(mask)) / mask.size)
    return fractions


# -- the video ---------------------------------------------------------------------------------
def _animate(nails, step, frames, height, width, phases):
    """The nails of frame ``step``: each drifts on its own ellipse and slowly turns."""
    moved = []
    for nail, (phase, radius, turn) in zip(nails, phases):
        t = 2 * np.pi * step / float(max(frames, 1)) + phase
        margin = nail["half_length"] + 2
        cx = np.clip(nail["center"][0] + radius * np.cos(t), margin, width - margin)
        cy = np.clip(nail["center"][1] + radius * 0.6 * np.sin(t), margin, height - margin)
        moved.append(dict(nail, center=(cx, cy), angle=nail["angle"] + turn * np.sin(t)))
    return moved


def make_synthetic_video(path, frames=90, size=(240, 320), seed=0, fps=15.0):
    """Write an mp4 (mp4v) of a synthetic scene whose fingers move and the texture pans.

    For the demo's edge run (a file source stands in for the camera); deterministic per seed.
    Returns the number of frames written.
    """
    height, width = _check_size(size)
    if int(frames) < 1:
        raise NanosegError("frames must be at least 1, got {}".format(frames))
    folder = os.path.dirname(os.path.abspath(path))
    if not os.path.isdir(folder):
        os.makedirs(folder)
    rng = _rng(seed, 10 ** 6)
    pan = max(8, width // 8)
    texture = _background(rng, height, width + pan)
    _distractors(rng, texture, int(rng.randint(3, 9)))
    nails = _layout_nails(rng, height, width)
    phases = [(rng.uniform(0, 2 * np.pi), rng.uniform(4, width / 10.0), rng.uniform(0.1, 0.5))
              for _ in nails]
    writer = cv2.VideoWriter(path, cv2.VideoWriter_fourcc(*"mp4v"), float(fps), (width, height))
    if not writer.isOpened():
        raise NanosegError("OpenCV cannot write mp4v video to {} (is the folder writable and "
                           "the name .mp4?)".format(path))
    try:
        for step in range(int(frames)):
            shift = int(round(pan * (0.5 + 0.5 * np.sin(2 * np.pi * step / float(frames)))))
            background = np.ascontiguousarray(texture[:, shift:shift + width])
            image, _ = render_scene(_rng(seed, 10 ** 6 + 1 + step), (height, width),
                                    _animate(nails, step, int(frames), height, width, phases),
                                    background)
            writer.write(cv2.cvtColor(image, cv2.COLOR_RGB2BGR))
    finally:
        writer.release()
    LOG.info("wrote %d-frame synthetic video %s (%dx%d @ %s fps)", frames, path, width, height,
             fps)
    return int(frames)
