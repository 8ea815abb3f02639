"""open_dataset through the layout table: a table of bad inputs, each a one-line error naming
the file, class or fix; the table's capabilities drive the train CLI's flag errors."""
import argparse
import os
import subprocess
import sys

import numpy as np
import pytest

from nanoseg.datasets import (LAYOUT_NAMES, LAYOUTS, Sample, SegmentationDataset,
                              detect_layout, layouts, layouts_with, open_dataset)
from nanoseg.datasets.layouts import Layout
from nanoseg.errors import NanosegError
from train import train as train_cli
from train.train import LAYOUT_FLAGS
from tests.dataset_helpers import write_csv, write_image


ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def test_datasets_import_no_tensorflow():
    code = "import sys, nanoseg.datasets; sys.exit('tensorflow' in sys.modules)"
    assert subprocess.call([sys.executable, "-c", code], cwd=ROOT) == 0


def _pair(root, name="a", size=(32, 32), mask_value=255, image_ext=".png"):
    """A flat images/ + masks/ pair with a square of ``mask_value``."""
    image = np.full(size + (3,), 90, dtype=np.uint8)
    mask = np.zeros(size, dtype=np.uint8)
    mask[4:12, 4:12] = mask_value
    write_image(os.path.join(root, "images", name + image_ext), image)
    write_image(os.path.join(root, "masks", name + ".png"), mask)


def _camvid(root, mask):
    """A one-frame CamVid train/ + trainannot/ tree with ``mask``."""
    write_image(os.path.join(root, "train", "f.png"), np.zeros(mask.shape + (3,), np.uint8))
    write_image(os.path.join(root, "trainannot", "f.png"), mask)


def _garbage(path, data=b"this is not an image"):
    """A file with an image name and non-image bytes."""
    folder = os.path.dirname(path)
    if not os.path.isdir(folder):
        os.makedirs(folder)
    with open(path, "wb") as handle:
        handle.write(data)


def case_missing_mask(root):
    _pair(root, "a")
    write_image(os.path.join(root, "images", "b.png"), np.zeros((8, 8, 3), np.uint8))
    return lambda: open_dataset(root, "flat", "all"), ["b.png", "no mask"]


def case_orphan_mask(root):
    _pair(root, "a")
    write_image(os.path.join(root, "masks", "c.png"), np.zeros((8, 8), np.uint8))
    return lambda: open_dataset(root, "flat", "all"), ["c.png", "no image"]


def case_duplicate_stem(root):
    _pair(root, "a")
    write_image(os.path.join(root, "images", "a.jpg"), np.zeros((8, 8, 3), np.uint8))
    return lambda: open_dataset(root, "flat", "all"), ["a.jpg", "same name"]


def case_unreadable_image(root):
    _pair(root, "a")
    os.remove(os.path.join(root, "images", "a.png"))
    _garbage(os.path.join(root, "images", "a.jpg"))
    return lambda: open_dataset(root, "flat", "all").load(0), ["a.jpg", "cannot read image"]


def case_corrupt_mask(root):
    _pair(root, "a")
    _garbage(os.path.join(root, "masks", "a.png"), b"\x89PNG\r\n\x1a\n" + b"\0" * 40)
    return lambda: open_dataset(root, "flat", "all").load(0), ["a.png", "cannot read mask"]


def case_camvid_id_40(root):
    mask = np.full((16, 16), 3, np.uint8)
    mask[0, 0] = 40
    _camvid(root, mask)
    return lambda: open_dataset(root, "camvid", "train").load(0), \
        [os.path.join("trainannot", "f.png"), "[40]"]


def case_camvid_colour_mask(root):
    write_image(os.path.join(root, "train", "f.png"), np.zeros((8, 8, 3), np.uint8))
    colour = np.zeros((8, 8, 3), np.uint8)
    colour[:, :, 2] = 128
    write_image(os.path.join(root, "trainannot", "f.png"), colour)
    return lambda: open_dataset(root, "camvid", "train").load(0), ["f.png", "colours"]


def case_unlisted_id(root):
    _pair(root, "a", mask_value=7)
    return lambda: open_dataset(root, "flat", "all", classes=["nail=1"]).load(0), \
        ["a.png", "[7]", "name=id"]


def case_ids_in_binary_mode(root):
    _pair(root, "a", mask_value=3)
    return lambda: open_dataset(root, "flat", "all").load(0), ["a.png", "name=id"]


def case_size_mismatch(root):
    _pair(root, "a")
    write_image(os.path.join(root, "masks", "a.png"), np.zeros((16, 20), np.uint8))
    return lambda: open_dataset(root, "flat", "all").load(0), \
        ["a.png", "20x16", "32x32", "same size"]


def case_empty_folders(root):
    os.makedirs(os.path.join(root, "images"))
    os.makedirs(os.path.join(root, "masks"))
    return lambda: open_dataset(root, "flat", "all"), ["images", "no image files"]


def case_empty_root(root):
    return lambda: open_dataset(root, "flat", "all"), ["empty", "images/"]


def case_camvid_on_flat_folder(root):
    _pair(root, "a")
    return lambda: open_dataset(root, "camvid", "train"), \
        ["not a camvid dataset", "trainannot", "images/, masks/", "'flat'"]


def case_voc_on_camvid_folder(root):
    _camvid(root, np.zeros((8, 8), np.uint8))
    return lambda: open_dataset(root, "voc", "train"), ["JPEGImages", "'camvid'"]


def case_camvid_missing_split(root):
    _camvid(root, np.zeros((8, 8), np.uint8))
    return lambda: open_dataset(root, "camvid", "test"), ["'test'", "available splits are train"]


def case_class_not_in_camvid(root):
    _camvid(root, np.zeros((8, 8), np.uint8))
    return lambda: open_dataset(root, "camvid", "train", classes=["car", "giraffe"]), \
        ["'giraffe'", "Pedestrian", "Bicyclist"]


def case_class_not_in_voc(root):
    write_image(os.path.join(root, "JPEGImages", "x.jpg"), np.zeros((8, 8, 3), np.uint8))
    write_image(os.path.join(root, "SegmentationClass", "x.png"), np.zeros((8, 8), np.uint8))
    _garbage(os.path.join(root, "ImageSets", "Segmentation", "train.txt"), b"x\n")
    return lambda: open_dataset(root, "voc", "train", classes=["unicorn"]), \
        ["'unicorn'", "person", "tvmonitor"]


def case_voc_listed_but_missing(root):
    os.makedirs(os.path.join(root, "JPEGImages"))
    os.makedirs(os.path.join(root, "SegmentationClass"))
    _garbage(os.path.join(root, "ImageSets", "Segmentation", "train.txt"), b"gone\n")
    return lambda: open_dataset(root, "voc", "train"), ["gone.jpg", "train.txt"]


def case_voc_colour_not_in_palette(root):
    write_image(os.path.join(root, "JPEGImages", "x.jpg"), np.zeros((8, 8, 3), np.uint8))
    write_image(os.path.join(root, "SegmentationClass", "x.png"), np.full((8, 8, 3), 3, np.uint8))
    _garbage(os.path.join(root, "ImageSets", "Segmentation", "train.txt"), b"x\n")
    return lambda: open_dataset(root, "voc", "train").load(0), ["x.png", "(3, 3, 3)"]


def case_csv_missing_file(root):
    _pair(root, "a")
    write_csv(os.path.join(root, "m.csv"), ["image", "mask", "split"],
               [("images/a.png", "masks/a.png", "train"), ("images/gone.png", "masks/a.png",
                                                            "val")])
    return lambda: open_dataset(os.path.join(root, "m.csv"), "csv", "train"), \
        ["m.csv", "gone.png"]


def case_csv_without_mask_column(root):
    _pair(root, "a")
    os.remove(os.path.join(root, "masks", "a.png"))   # no column and nothing beside images/
    write_csv(os.path.join(root, "m.csv"), ["image", "weight"], [("images/a.png", "1")])
    return lambda: open_dataset(os.path.join(root, "m.csv"), "csv", "train"), \
        ["m.csv", "mask column", "row 2"]


def case_mask_invert_with_id_classes(root):
    _pair(root, "a", mask_value=1)
    return lambda: open_dataset(root, "flat", "all", classes=["nail=1"], mask_invert=True), \
        ["mask-invert", "nail=1"]


def case_val_and_valid_folders(root):
    for split in ("train", "val", "valid"):
        _pair(os.path.join(root, split), "a")
    return lambda: open_dataset(root, "flat", "train"), ["valid/ and val/", "keep one"]


def case_folder_split_without_test(root):
    for split in ("train", "valid"):
        _pair(os.path.join(root, split), "a")
    return lambda: open_dataset(root, "flat", "test"), ["no test split folder", "train/"]


def case_ambiguous_class_alias(root):
    _camvid(root, np.zeros((4, 4), np.uint8))
    return lambda: open_dataset(root, "camvid", "train", classes=["car", "Car"]), \
        ["selected twice", "'Car'"]


def case_images_dir_flag_wrong(root):
    _pair(root, "a")
    return lambda: open_dataset(root, "flat", "all", images_dir="photos"), \
        ["photos", "images_dir"]


def case_missing_root(root):
    return lambda: open_dataset(os.path.join(root, "nope"), "flat"), ["nope", "not found"]


def case_unknown_layout(root):
    return lambda: open_dataset(root, "coco"), ["'coco'", "flat, csv, camvid, voc"]


def case_flat_test_split(root):
    _pair(root, "a")
    _pair(root, "b")
    return lambda: open_dataset(root, "flat", "test"), ["no test split"]


def case_bad_val_fraction(root):
    _pair(root, "a")
    _pair(root, "b")
    return lambda: open_dataset(root, "flat", "val", val_fraction=1.5), ["val_fraction", "1.5"]


BAD_CASES = [value for key, value in sorted(globals().items()) if key.startswith("case_")]


@pytest.mark.parametrize("build", BAD_CASES, ids=[c.__name__[5:] for c in BAD_CASES])
def test_bad_input_gives_one_line_error_naming_the_thing(build, tmp_path):
    root = str(tmp_path / "data")
    os.makedirs(root)
    action, expected = build(root)
    with pytest.raises(NanosegError) as info:
        action()
    message = str(info.value)
    assert "\n" not in message, message
    for part in expected:
        assert part in message, "{!r} not in {!r}".format(part, message)


# -- the table: each row's capabilities decide what open_dataset and the train CLI accept ----
def _toy_tree(root, layout):
    """The smallest tree of ``layout``, with a CSV file beside it (detection must still say
    ``layout``: loose CSV files are the weakest sign)."""
    if layout == "flat":
        _pair(root)
    elif layout == "csv":
        _pair(root)
        write_csv(os.path.join(root, "m.csv"), ["image", "mask"], [("images/a.png",
                                                                     "masks/a.png")])
        return os.path.join(root, "m.csv")
    elif layout == "camvid":
        _camvid(root, np.zeros((8, 8), np.uint8))
    else:
        write_image(os.path.join(root, "JPEGImages", "x.jpg"), np.zeros((8, 8, 3), np.uint8))
        write_image(os.path.join(root, "SegmentationClass", "x.png"), np.zeros((8, 8),
                                                                               np.uint8))
        _garbage(os.path.join(root, "ImageSets", "Segmentation", "train.txt"), b"x\n")
    write_csv(os.path.join(root, "class_dict.csv"), ["name"], [("x",)])
    return root


@pytest.mark.parametrize("layout", LAYOUT_NAMES)
def test_every_layout_is_detected_and_opened_through_its_row(layout, tmp_path):
    root = _toy_tree(str(tmp_path), layout)
    assert detect_layout(root) == layout
    dataset = open_dataset(root, layout, split="all" if layout != "voc" else "train")
    assert dataset.layout == layout and len(dataset) == 1


TRAIN_FLAG_CASES = [(name, flag) for name in LAYOUT_NAMES for flag, _, _ in LAYOUT_FLAGS]


@pytest.mark.parametrize("layout,flag", TRAIN_FLAG_CASES,
                         ids=["{}{}".format(n, f) for n, f in TRAIN_FLAG_CASES])
def test_train_cli_takes_a_data_flag_only_where_the_layout_row_allows_it(layout, flag):
    capability = dict((f, c) for f, c, _ in LAYOUT_FLAGS)[flag]
    value = [] if flag == "--mask-invert" else ["x"]
    args = train_cli.parse_args(["--data", "d", "--layout", layout, "--out", "o", flag]
                                + value)
    if getattr(LAYOUTS[layout], capability):
        train_cli.check_args(args)
        return
    with pytest.raises(NanosegError) as info:
        train_cli.check_args(args)
    message = str(info.value)
    assert "\n" not in message and message.startswith(flag + " ")
    assert " {} ".format(layout) in message
    assert "/".join(layouts_with(capability)) in message


def test_train_cli_layout_flag_messages_are_unchanged():
    def refused(*argv):
        args = train_cli.parse_args(["--data", "d", "--out", "o"] + list(argv))
        with pytest.raises(NanosegError) as info:
            train_cli.check_args(args)
        return str(info.value)

    assert refused("--layout", "camvid", "--mask-invert") == \
        "--mask-invert is for binary masks (flat/csv); camvid masks hold class ids"
    assert refused("--layout", "voc", "--split-csv", "s.csv") == \
        "--split-csv is for flat/csv datasets without a split; voc datasets come with " \
        "train/val lists"
    assert refused("--layout", "csv", "--images-dir", "rgb").startswith(
        "--images-dir names the images folder of a flat dataset; csv datasets")


class _ToyOpener(object):
    """A layout opener that records the options open_dataset passed it."""

    def __init__(self):
        self.options = None

    def __call__(self, root, split, classes, **options):
        self.options = options
        return SegmentationDataset([Sample("i", "m", "a")], ["thing"], [1], None, None, root,
                                   "toy", split)


def test_a_new_row_is_all_a_new_layout_needs(tmp_path, monkeypatch):
    opener = _ToyOpener()
    toy = Layout("toy", opener, lambda root: os.path.isdir(os.path.join(root, "toy")),
                 specificity=9, binary_masks=False, seeded_split=True, folders=False,
                 file_root=False)
    monkeypatch.setitem(layouts.LAYOUTS, "toy", toy)
    root = str(tmp_path)
    os.makedirs(os.path.join(root, "toy"))
    _pair(root)                                      # also looks flat: the higher row wins
    assert detect_layout(root) == "toy"
    open_dataset(root, "toy", split_csv="s.csv", images_dir="ignored")
    assert opener.options == {"val_fraction": 0.2, "seed": 0, "split_csv": "s.csv",
                              "split_root": None}
    with pytest.raises(NanosegError, match=r"^mask_invert is for binary masks \(flat/csv\); "
                                           r"toy masks hold class ids"):
        open_dataset(root, "toy", mask_invert=True)
    args = argparse.Namespace(layout="toy", mask_invert=False, split_csv="s.csv",
                              images_dir="rgb", masks_dir=None)
    with pytest.raises(NanosegError, match=r"^--images-dir names the images folder of a flat "
                                           r"dataset; toy datasets"):
        train_cli.check_layout_flags(args)
    args.images_dir = None
    train_cli.check_layout_flags(args)
    with pytest.raises(NanosegError, match="use one of flat, csv, camvid, voc, toy"):
        open_dataset(root, "coco")
