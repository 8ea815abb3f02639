"""train/backbones.py: each backbone's normalization, written down as contract numbers, is
segmentation_models' own ``get_preprocessing``; normalization names resolve or fail in one line.
"""
import os

import cv2
import numpy as np
import pytest

from nanoseg.errors import NanosegError
from nanoseg.normalization import Normalization
from nanoseg.preprocess import reorder_channels, resize_image
from tests.contract_helpers import SIZE
from train import keras_env
from train.backbones import backbone_names, normalization_for, resolve_normalization


def _real_images(nails_dir, camvid_dir):
    """RGB images of several sizes: nails (JPEG, many sizes) and CamVid (480x360 PNG)."""
    names = sorted(os.listdir(os.path.join(nails_dir, "images")))[:3]
    paths = [os.path.join(nails_dir, "images", n) for n in names]
    paths.append(os.path.join(camvid_dir, "train", sorted(
        os.listdir(os.path.join(camvid_dir, "train")))[0]))
    return [cv2.cvtColor(cv2.imread(p), cv2.COLOR_BGR2RGB) for p in paths]


def test_backbone_normalization_matches_segmentation_models(nails_dir, camvid_dir):
    sm = keras_env.import_segmentation_models()
    from segmentation_models.backbones.backbones_factory import Backbones
    assert sorted(backbone_names()) == sorted(Backbones.models_names())
    images = [resize_image(im, SIZE) for im in _real_images(nails_dir, camvid_dir)]
    for backbone in backbone_names():
        normalization, order = normalization_for(backbone)
        assert normalization.name.startswith("backbone:")
        reference = sm.get_preprocessing(backbone)
        for image in images:
            expected = np.asarray(reference(image.copy()), dtype=np.float32)
            ours = normalization.apply(reorder_channels(image, "RGB", order))
            assert np.allclose(ours, expected, atol=1e-4), backbone


def test_resolve_normalization_names_and_errors():
    assert resolve_normalization("scale", "vgg16") == (Normalization.named("scale"), "RGB")
    assert resolve_normalization("imagenet", "vgg16")[0] == Normalization.named("imagenet")
    normalization, order = resolve_normalization("backbone", "vgg19")
    assert (normalization.name, order) == ("backbone:caffe", "BGR")
    with pytest.raises(NanosegError, match="unknown normalization 'zscore'"):
        resolve_normalization("zscore", "resnet18")
    with pytest.raises(NanosegError, match="unknown backbone 'resnet19'.*resnet18"):
        resolve_normalization("backbone", "resnet19")
