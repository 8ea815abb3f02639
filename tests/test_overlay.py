"""The cheap renderer draws what the old full-frame renderer drew, on real street frames.

``reference_render`` below is the renderer as it was before the 720p work moved to the
model's resolution (numpy fancy/boolean indexing over the whole frame, the legend drawn
on every frame): the test compares the product's output with it pixel by pixel.
"""
import glob
import os

import cv2
import numpy as np
import pytest

from edge import overlay
from nanoseg.errors import NanosegError
from nanoseg.contract import Contract
from nanoseg.normalization import Normalization
from nanoseg.preprocess import resize_mask

CAMVID_CLASSES = (("road", 3), ("car", 8), ("pedestrian", 9), ("building", 1))
SIZE_720P = (1280, 720)
STAGES = [("capture", 1.25), ("pre", 0.5), ("infer", 21.0), ("post", 0.1), ("render", 2.0)]


# -- the straightforward full-resolution renderer, kept verbatim as the reference ----------
def reference_blend(frame, labels, palette, alpha=0.5):
    alpha = float(min(max(alpha, 0.0), 1.0))
    out = frame.copy()
    mask = labels > 0
    if alpha == 0.0 or not mask.any():
        return out
    tinted = cv2.addWeighted(frame, 1.0 - alpha, palette[labels], alpha, 0.0)
    out[mask] = tinted[mask]
    return out


def reference_render(frame, labels, contract, palette, alpha=0.5, fps=None, stage_ms=()):
    out = reference_blend(frame, labels, palette, alpha)
    present = set(int(v) for v in np.flatnonzero(np.bincount(labels.ravel())))
    overlay.draw_legend(out, contract, palette, present)
    overlay.draw_stats(out, fps, stage_ms)
    return out


def camvid_contract(size=(128, 128)):
    return Contract.create(size[0], size[1], [name for name, _ in CAMVID_CLASSES], "softmax",
                           Normalization.named("imagenet"))


def camvid_pairs(camvid_dir, count, size=(128, 128)):
    """(720p BGR frame, model-size label map) from real CamVid images and annotations."""
    names = sorted(glob.glob(os.path.join(camvid_dir, "train", "*.png")))[:count]
    pairs = []
    for path in names:
        image = cv2.imread(path, cv2.IMREAD_COLOR)
        annot = cv2.imread(path.replace(os.sep + "train" + os.sep, os.sep + "trainannot" +
                                        os.sep), cv2.IMREAD_GRAYSCALE)
        labels = np.zeros(annot.shape, np.uint8)
        for label, (_, source_id) in enumerate(CAMVID_CLASSES, 1):
            labels[annot == source_id] = label
        frame = cv2.resize(image, SIZE_720P, interpolation=cv2.INTER_LINEAR)
        pairs.append((frame, resize_mask(labels, size)))
    return pairs


@pytest.fixture(scope="module")
def street(camvid_dir):
    return camvid_pairs(camvid_dir, 6)


def legend_box(renderer, frame, labels):
    return renderer.legend(frame.shape, overlay.present_labels(labels, frame.shape)).box


@pytest.mark.parametrize("alpha", [0.5, 0.3, 1.0, 0.0])
def test_render_matches_the_old_renderer_on_real_frames(street, alpha):
    """Identical pixels outside the legend; inside it, anti-aliased text edges may differ
    by OpenCV's integer rounding of its own blending (the sprite blends in float)."""
    contract = camvid_contract()
    renderer = overlay.Renderer(contract, alpha)
    for frame, small in street:
        before = frame.copy()
        new = renderer.render(frame, small, 24.5, STAGES)
        old = reference_render(frame, resize_mask(small, frame.shape[:2]), contract,
                               renderer.palette, alpha, 24.5, STAGES)
        assert np.array_equal(frame, before)  # the camera frame is never drawn on
        box = legend_box(renderer, frame, small)
        diff = np.abs(new.astype(np.int16) - old.astype(np.int16))
        inside = diff[box].copy()
        diff[box] = 0
        assert diff.max() == 0, "pixels outside the legend changed"
        # measured on these frames: at most 6 levels, on about 10 % of the box (its text edges)
        assert inside.max() <= 8 and np.count_nonzero(inside) <= 0.15 * inside.size
        assert overlay.present_labels(small, frame.shape) == set(
            np.unique(resize_mask(small, frame.shape[:2])).tolist())


def test_blend_of_the_small_map_equals_blending_the_upscaled_map(street):
    """The overlay itself (no text) is bit-identical, also all-background and all-class."""
    contract = camvid_contract()
    palette = overlay.bgr_palette(contract)
    frame, small = street[0]
    for labels in (small, np.zeros_like(small), np.full_like(small, 2)):
        full = resize_mask(labels, frame.shape[:2])
        assert np.array_equal(overlay.blend(frame, labels, palette, 0.5),
                              reference_blend(frame, full, palette, 0.5))
        assert np.array_equal(overlay.blend(frame, full, palette, 0.5),
                              reference_blend(frame, full, palette, 0.5))


def test_the_legend_is_drawn_once_per_frame_size_and_visible_classes(street):
    contract = camvid_contract()
    renderer = overlay.Renderer(contract)
    frame, small = street[0]
    renderer.render(frame, small)
    first = renderer.legend(frame.shape, overlay.present_labels(small, frame.shape))
    renderer.render(frame, small)
    assert renderer.legend(frame.shape, overlay.present_labels(small, frame.shape)) is first
    assert len(renderer._sprites) == 1


def full_frame_sprite(contract, palette, frame_shape, present):
    """The straightforward sprite: the legend drawn over two whole frames."""
    black = np.zeros(frame_shape[:2] + (3,), np.uint8)
    white = np.full(frame_shape[:2] + (3,), 255, np.uint8)
    overlay.draw_legend(black, contract, palette, present)
    overlay.draw_legend(white, contract, palette, present)
    touched = np.any((black != 0) | (white != 255), axis=2)
    rows, cols = np.flatnonzero(touched.any(axis=1)), np.flatnonzero(touched.any(axis=0))
    if rows.size == 0:
        return None, None, None
    box = (slice(rows[0], rows[-1] + 1), slice(cols[0], cols[-1] + 1))
    return box, black[box], white[box]


@pytest.mark.parametrize("names", [[name for name, _ in CAMVID_CLASSES],
                                   ["WWWWWWWWWW", "mmm", "Mj"],
                                   ["class{}".format(i) for i in range(14)]],
                         ids=["camvid", "wide letters", "14 classes"])
def test_a_sprite_drawn_on_the_legend_box_equals_one_drawn_on_the_whole_frame(names):
    """Also where the frame cuts the legend off (narrow or short frames)."""
    contract = Contract.create(32, 32, names, "softmax", Normalization.named("scale"))
    palette = overlay.bgr_palette(contract)
    for shape in ((720, 1280), (360, 480), (120, 64), (60, 300), (40, 20), (30, 400)):
        for present in (set(), set(range(len(names)))):
            box, black, white = full_frame_sprite(contract, palette, shape, present)
            sprite = overlay.LegendSprite(contract, palette, shape, present)
            assert sprite.box == box, (shape, present)
            if box is not None:
                low = black.astype(np.float32)
                assert np.array_equal(sprite.offset, low + np.float32(0.5))
                assert np.array_equal(sprite.gain, (white.astype(np.float32) - low) / 255.0)


def test_a_full_sprite_cache_drops_the_least_recently_used_legend(street):
    contract = camvid_contract()
    renderer = overlay.Renderer(contract)
    renderer.MAX_SPRITES = 2
    first = renderer.legend((720, 1280), {0})
    second = renderer.legend((720, 1280), {0, 1})
    assert renderer.legend((720, 1280), {0}) is first  # used again: now the most recent
    renderer.legend((720, 1280), {0, 2})  # the cache is full: drops ``second`` only
    assert renderer.legend((720, 1280), {0}) is first
    assert len(renderer._sprites) == 2
    assert renderer.legend((720, 1280), {0, 1}) is not second


def test_a_new_sprite_draws_on_canvases_of_the_legend_size_not_the_frame(monkeypatch):
    contract = camvid_contract()
    palette = overlay.bgr_palette(contract)
    canvases = []
    real_draw = overlay.draw_legend

    def draw(image, *args, **kwargs):
        canvases.append(image.shape)
        return real_draw(image, *args, **kwargs)
    monkeypatch.setattr(overlay, "draw_legend", draw)
    sprite = overlay.LegendSprite(contract, palette, (720, 1280), {0, 1})
    rows, cols = sprite.box
    assert len(canvases) == 2
    for height, width, _ in canvases:  # the measured box plus a few pixels of margin
        assert height <= rows.stop - rows.start + 2 * sprite.PAD
        assert width <= cols.stop - cols.start + 2 * sprite.PAD


def test_visualize_mask_shows_the_class_colours_alone_with_the_legend():
    """--visualize mask: jetson-inference's mask view, the frame itself nowhere in it."""
    contract = Contract.create(12, 16, ["nail", "skin"], "softmax",
                               Normalization.named("scale"))
    labels = np.zeros((12, 16), np.uint8)
    labels[2:6, 3:9], labels[7:11, 10:14] = 1, 2
    frame = np.full((240, 320, 3), 77, np.uint8)
    masked = overlay.Renderer(contract, 0.5, "mask").overlay(frame, labels)
    palette = overlay.bgr_palette(contract)
    colours = cv2.resize(palette[labels], (320, 240), interpolation=cv2.INTER_NEAREST)
    left = slice(0, overlay.legend_x0(contract, 320))  # the legend is on the right
    assert np.array_equal(masked[:, left], colours[:, left])
    assert not np.array_equal(overlay.Renderer(contract, 0.5).overlay(frame, labels)[:, left],
                              colours[:, left])
    with pytest.raises(NanosegError, match="--visualize must be one of overlay mask"):
        overlay.Renderer(contract, 0.5, "edges")
