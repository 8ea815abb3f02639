"""What a training run learns from: the train/val datasets and the contract they give."""
import logging

LOG = logging.getLogger(__name__)


def open_datasets(args):
    """(train, val) SegmentationDatasets with the same classes and a reproducible split."""
    from nanoseg.datasets import open_dataset
    common = dict(classes=args.classes, images_dir=args.images_dir, masks_dir=args.masks_dir,
                  val_fraction=args.val_fraction, seed=args.seed, split_csv=args.split_csv,
                  mask_invert=args.mask_invert)
    return (open_dataset(args.data, args.layout, split="train", **common),
            open_dataset(args.data, args.layout, split="val", **common))


def log_binary_class(dataset, mask_invert):
    """Say which mask value became the class and how much of the pictures it covers.

    A class covering most pixels usually means the masks mark the object dark (or the
    background bright): --mask-invert flips that, and the log says so before training.
    """
    from nanoseg.datasets import binary_class_summary
    text, share = binary_class_summary(dataset)
    if text is None:
        return
    LOG.info("binary masks: %s", text)
    if share > 0.5:
        LOG.warning("class %r covers %.0f%% of the pixels: if the masks mark it with the %s "
                    "value, %s --mask-invert", dataset.class_names[0], 100 * share,
                    "bright" if mask_invert else "dark", "drop" if mask_invert else "pass")


def make_contract(dataset, args):
    """The contract: input size, normalization of the backbone, classes of the dataset."""
    from nanoseg.contract import Contract
    from train.backbones import resolve_normalization
    from train.model import check_backbone, check_size, resolve_encoder_weights
    check_backbone(args.backbone)
    check_size(args.size)
    resolve_encoder_weights(args.encoder_weights)
    normalization, channel_order = resolve_normalization(args.normalization, args.backbone)
    activation = "sigmoid" if len(dataset.class_names) == 1 else "softmax"
    return Contract.create(args.size[0], args.size[1], activation=activation,
                           normalization=normalization, channel_order=channel_order,
                           backbone=args.backbone, **dataset.contract_classes())
