"""Layout ``camvid``: SegNet-style ``train/ trainannot/ val/ valannot/ test/ testannot/``,
pixel = class id 0..11 (11 Unlabelled, ignored unless asked for by name)."""
import os

from nanoseg.contract import IGNORE_ID
from nanoseg.datasets.classes import class_list, select_classes
from nanoseg.datasets.dataset import SegmentationDataset
from nanoseg.datasets.masks import IdMaskDecoder
from nanoseg.datasets.pairing import pair_files, subfolders, wrong_layout
from nanoseg.errors import NanosegError

CAMVID_CLASSES = ("Sky", "Building", "Pole", "Road", "Pavement", "Tree", "SignSymbol",
                  "Fence", "Car", "Pedestrian", "Bicyclist")
CAMVID_UNLABELLED = 11
# Unlabelled is ignored unless asked for by name (the CamVid tutorial lists it as a class).
CAMVID_SELECTABLE = CAMVID_CLASSES + ("Unlabelled",)
CAMVID_COLORS = ((128, 128, 128), (128, 0, 0), (192, 192, 128), (128, 64, 128), (60, 40, 222),
                 (128, 128, 0), (192, 128, 128), (64, 64, 128), (64, 0, 128), (64, 64, 0),
                 (0, 128, 192), (0, 0, 0))
# Other spellings the tutorials use, each naming exactly one class ('sign symbol' or
# 'sign_symbol' need no entry: names are compared without case, spaces, '_' and '-').
CAMVID_ALIASES = {"unlabeled": "Unlabelled", "void": "Unlabelled", "sign": "SignSymbol",
                  "sidewalk": "Pavement", "cyclist": "Bicyclist"}
CAMVID_SPLIT_FOLDERS = {"train": ("train", "trainannot"), "val": ("val", "valannot"),
                        "test": ("test", "testannot")}


def looks_like(root):
    """At least one split's image folder and its annot folder."""
    if not os.path.isdir(root):
        return False
    lower = {d.lower() for d in subfolders(root)}
    return any({a, b} <= lower for a, b in CAMVID_SPLIT_FOLDERS.values())


def open_camvid(root, split, classes):
    """SegNet-style CamVid: chosen classes -> 1..N, the rest 0, Unlabelled (11) -> 255."""
    expected = "train/ + trainannot/ (and val/ valannot/, test/ testannot/)"
    folders = {d.lower(): d for d in subfolders(root)}
    available = [s for s, pair in CAMVID_SPLIT_FOLDERS.items()
                 if all(f in folders for f in pair)]
    if not available:
        raise wrong_layout(root, "camvid", expected)
    if split != "all" and split not in available:
        raise NanosegError("{} has no {}/ + {}annot/ folders for split {!r}: available splits "
                           "are {}".format(root, split, split, split, ", ".join(available)))
    pairs = [CAMVID_SPLIT_FOLDERS[s] for s in (available if split == "all" else [split])]
    samples = []
    for image_folder, mask_folder in pairs:
        samples.extend(pair_files(os.path.join(root, folders[image_folder]),
                                  os.path.join(root, folders[mask_folder])))
    chosen = select_classes(class_list(classes) or list(CAMVID_CLASSES), CAMVID_SELECTABLE,
                            "camvid", CAMVID_ALIASES)
    mapping = {i: 0 for i in range(len(CAMVID_CLASSES))}
    mapping[CAMVID_UNLABELLED] = IGNORE_ID
    mapping.update((source_id, label + 1) for label, source_id in enumerate(chosen))
    decoder = IdMaskDecoder(mapping, "CamVid", "CamVid annotations hold ids 0..11; is this the "
                            "trainannot/ folder of a CamVid copy?")
    return SegmentationDataset(samples, [CAMVID_SELECTABLE[i] for i in chosen], chosen,
                               [CAMVID_COLORS[i] for i in chosen], decoder, root, "camvid", split)
