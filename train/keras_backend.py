"""The Keras backend: a bundle's model.h5 behind the edge's backend interface (desktop only).

edge.backends imports this module by name for ``--backend keras``, so the runtime never
imports the training layer (and the Jetson, which has no train/, never needs it).
"""
from edge.backends import Backend, as_bundle
from nanoseg.bundle import MODEL_H5
from train import keras_env


class KerasBackend(Backend):
    """Keras ``model.h5`` through train.model (desktop debugging; imports TensorFlow)."""

    name = "keras"

    def __init__(self, bundle):
        bundle = as_bundle(bundle)
        contract = bundle.contract()
        path = bundle.require(MODEL_H5, "it is written by train/train.py")
        Backend.__init__(self, contract, contract.copy(layout="NHWC"))
        keras_env.prepare()
        from train.model import load_model_for_inference, predict_probabilities
        self.model = load_model_for_inference(path)
        self._predict = predict_probabilities

    def _run(self, batch):
        return self._predict(self.model, batch)
