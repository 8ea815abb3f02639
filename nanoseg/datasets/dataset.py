"""The dataset object every layout returns: paired files plus the mask decoder."""
import collections

from nanoseg.contract import IGNORE_ID
from nanoseg.datasets.masks import read_image_rgb
from nanoseg.errors import NanosegError

Sample = collections.namedtuple("Sample", ["image_path", "mask_path", "name"])


class SegmentationDataset(object):
    """Paired files plus the decoder that turns a mask file into label space.

    ``class_names[i]`` is label ``i + 1``; ``source_ids[i]`` the id it had in the dataset
    (binary flat masks: 1, "any foreground"); ``colors`` RGB triples or None (palette).
    """

    ignore_id = IGNORE_ID

    def __init__(self, samples, class_names, source_ids, colors, mask_decoder, root=None,
                 layout=None, split=None):
        self.samples = list(samples)
        self.class_names = list(class_names)
        self.source_ids = [int(i) for i in source_ids]
        self.colors = None if colors is None else [list(c) for c in colors]
        self.mask_decoder = mask_decoder
        self.root = root
        self.layout = layout
        self.split = split

    def __len__(self):
        return len(self.samples)

    def load(self, index):
        """(RGB uint8 HxWx3, uint8 HxW labels) of sample ``index``, sizes checked."""
        sample = self.samples[index]
        image = read_image_rgb(sample.image_path)
        labels = self.mask_decoder(sample.mask_path)
        if labels.shape[:2] != image.shape[:2]:
            raise NanosegError(
                "mask {} is {}x{} but its image {} is {}x{}: image and mask must have the "
                "same size (re-export the mask at the image's size)".format(
                    sample.mask_path, labels.shape[1], labels.shape[0], sample.image_path,
                    image.shape[1], image.shape[0]))
        return image, labels

    def contract_classes(self):
        """Keyword arguments for ``nanoseg.contract.Contract.create``: names, ids, colours."""
        return {"class_names": list(self.class_names), "source_ids": list(self.source_ids),
                "colors": None if self.colors is None else [list(c) for c in self.colors]}

    def __repr__(self):
        return "SegmentationDataset({} {} {}: {} samples, classes {})".format(
            self.layout, self.split, self.root, len(self), self.class_names)
