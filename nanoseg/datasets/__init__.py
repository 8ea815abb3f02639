"""Datasets: the folders users really have -> (RGB uint8 image, uint8 label mask) pairs.

Every layout yields masks already in nanoseg's label space (``0`` background, ``1..N`` the
chosen classes in order, ``255`` ignored), so training, evaluation and the edge never see a
dataset's own ids or colours. The layouts and what each allows are one table
(:mod:`nanoseg.datasets.layouts`); each layout is one module (flat, csv_layout, camvid, voc).

Decoding is OpenCV (Pillow only to read palette indices of VOC PNGs). No TensorFlow here:
this package must stay cheap to import (the benchmark and the CLIs list datasets with it).
Each problem a user can fix raises a one-line :class:`NanosegError` naming the file or class.
"""
from nanoseg.datasets.dataset import Sample, SegmentationDataset
from nanoseg.datasets.layouts import (LAYOUT_NAMES, LAYOUTS, detect_layout, layout_row,
                                      layouts_with, open_dataset)
from nanoseg.datasets.masks import binary_class_summary
from nanoseg.datasets.recipe import DatasetRecipe
from nanoseg.datasets.splits import SPLITS, read_split_csv, split_samples, write_split_csv

__all__ = ["DatasetRecipe", "LAYOUTS", "LAYOUT_NAMES", "SPLITS", "Sample", "SegmentationDataset",
           "binary_class_summary", "detect_layout", "layout_row", "layouts_with", "open_dataset",
           "read_split_csv", "split_samples", "write_split_csv"]
