"""Run as a script by tests/test_train.py: validation under MirroredStrategy over two
logical CPUs scores every image of a split that does not fill its last global batch.

Two logical CPUs must be configured before TensorFlow initialises, hence a fresh process.
Prints one JSON line: the distributed and the single-device evaluation of the same input.
"""
import json
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from train import keras_env  # noqa: E402

keras_env.prepare()
import tensorflow as tf  # noqa: E402


def tiny_model():
    inputs = tf.keras.Input((64, 64, 3))
    outputs = tf.keras.layers.Conv2D(1, 3, padding="same", activation="sigmoid")(inputs)
    return tf.keras.Model(inputs, outputs)


def main(nails_dir, count):
    cpu = tf.config.list_physical_devices("CPU")[0]
    tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * 2)
    from nanoseg.contract import Contract
    from nanoseg.normalization import Normalization
    from train.model import compile_model
    from train.pipeline import WrapAroundPadding, make_tf_dataset
    from nanoseg.datasets import SegmentationDataset, open_dataset
    from train.distribute import validation_input
    full = open_dataset(nails_dir, "flat", split="all", classes=["nail"])
    val_set = SegmentationDataset(full.samples[:count], full.class_names, full.source_ids,
                                  None, full.mask_decoder)
    contract = Contract.create(64, 64, ["nail"], "sigmoid", Normalization.named("scale"))
    strategy = tf.distribute.MirroredStrategy(["/cpu:0", "/cpu:1"])
    tf.keras.utils.set_random_seed(0)
    with strategy.scope():
        model = compile_model(tiny_model(), contract)
    data, steps = validation_input(strategy, val_set, contract, 4, 1, 0)
    distributed = model.evaluate(data, steps=steps, verbose=0, return_dict=True)
    single = compile_model(tiny_model(), contract)
    single.set_weights(model.get_weights())
    # Keras averages per-replica batches: one device with the per-replica batch (2) over
    # the same padded images must give the same numbers.
    padded = WrapAroundPadding(val_set, steps * 4)
    reference = single.evaluate(make_tf_dataset(padded, contract, 2, None, False, 0),
                                verbose=0, return_dict=True)
    dropped = single.evaluate(make_tf_dataset(val_set, contract, 2, None, False, 0,
                                              drop_remainder=True), verbose=0, return_dict=True)
    print(json.dumps({"steps": steps, "images": len(padded), "distributed": distributed,
                      "reference": reference, "dropped": dropped}))


if __name__ == "__main__":
    main(sys.argv[1], int(sys.argv[2]))
