"""``--host-only MS``: a stand-in for inference that sleeps and returns a fixed label map."""
import time

import numpy as np

from edge.backends import Backend


def fixed_labels(contract):
    """A label map of the contract's size with every label in vertical bands (0 included)."""
    columns = np.arange(contract.width) * contract.num_labels // contract.width
    return np.repeat(columns.astype(np.uint8)[None, :], contract.height, axis=0)


def labels_to_probabilities(labels, contract):
    """Probabilities (H,W,C) whose labels (probabilities_to_labels) are ``labels``."""
    if contract.activation == "sigmoid":
        return (labels == 1).astype(np.float32)[:, :, None]
    return np.eye(contract.output_channels, dtype=np.float32)[labels]


class HostOnlyStandIn(Backend):
    """``--host-only MS``: a sleep of MS ms instead of inference, returning a fixed label map.

    A measurement tool, not a backend: it stands in for a GPU that takes MS ms and leaves
    the CPU free, so the benchmark shows what the host path costs beside it.
    """

    name = "host-only"

    def __init__(self, contract, milliseconds):
        Backend.__init__(self, contract, contract)
        self.seconds = float(milliseconds) / 1000.0
        self._probs = labels_to_probabilities(fixed_labels(contract), contract)

    def infer(self, x):
        time.sleep(self.seconds)
        return self._probs

    def describe(self):
        return "host-only stand-in: sleep {:g} ms, fixed label map".format(
            self.seconds * 1000.0)
