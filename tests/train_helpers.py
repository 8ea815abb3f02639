"""Train a tiny real bundle through the CLI's own functions (for session/module fixtures).

Tiny on purpose (96x96, mobilenetv2 without ImageNet weights, 3 epochs): the machine is
shared and the point is a complete, loadable bundle, not accuracy.
"""
import os


def train_args(out_dir, data_dir, layout, classes=None, backbone="mobilenetv2",
               size=(96, 96), epochs=3, batch=4, extra_args=()):
    """The argv list train/train.py would get for this run."""
    argv = ["--data", str(data_dir), "--layout", layout, "--backbone", backbone,
            "--size", str(size[0]), str(size[1]), "--epochs", str(epochs),
            "--batch", str(batch), "--encoder-weights", "none", "--verbose", "2",
            "--out", str(out_dir)]
    if classes:
        argv += ["--classes"] + [str(c) for c in classes]
    return argv + [str(a) for a in extra_args]


def train_small_bundle(out_dir, data_dir, layout, classes=None, backbone="mobilenetv2",
                       size=(96, 96), epochs=3, batch=4, extra_args=()):
    """Run ``train.train.main`` on a small configuration and return the bundle path."""
    from train import train as train_cli
    args = train_cli.parse_args(train_args(out_dir, data_dir, layout, classes, backbone,
                                           size, epochs, batch, extra_args))
    status = train_cli.main(args)
    assert status == 0, "train/train.py returned {}".format(status)
    return os.path.abspath(str(out_dir))


def make_tutorial_layout(nails_dir, root, train_count=6, valid_count=3, invert=False):
    """The nail tutorial's own layout from real nails files: ROOT/train/{images,masks},
    ROOT/valid/{images,masks} and make_csv_file's ROOT/csv_file/{train,valid}.csv (columns
    ``images`` = a file name under <split>/images and ``train`` = 1/0, no mask column).

    ``invert``: masks saved as PNG with 255 - value (membrane-style: the dark value is the
    nail). Returns {split folder: [image file names]}.
    """
    import csv
    import shutil

    import cv2
    names = sorted(os.listdir(os.path.join(nails_dir, "images")))[:train_count + valid_count]
    chosen = {"train": names[:train_count], "valid": names[train_count:]}
    for split, files in chosen.items():
        for kind in ("images", "masks"):
            os.makedirs(os.path.join(root, split, kind), exist_ok=True)
        for name in files:
            shutil.copy(os.path.join(nails_dir, "images", name),
                        os.path.join(root, split, "images", name))
            mask = os.path.join(nails_dir, "labels", name)
            if invert:
                stem = os.path.splitext(name)[0]
                assert cv2.imwrite(os.path.join(root, split, "masks", stem + ".png"),
                                   255 - cv2.imread(mask, cv2.IMREAD_GRAYSCALE))
            else:
                shutil.copy(mask, os.path.join(root, split, "masks", name))
    os.makedirs(os.path.join(root, "csv_file"), exist_ok=True)
    for split, flag in (("train", 1), ("valid", 0)):
        with open(os.path.join(root, "csv_file", split + ".csv"), "w", newline="") as handle:
            writer = csv.writer(handle)
            writer.writerow(["images", "train"])
            writer.writerows([name, flag] for name in chosen[split])
    return chosen
