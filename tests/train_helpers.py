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
