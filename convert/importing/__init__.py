"""Bringing a Keras model trained elsewhere into a nanoseg bundle (convert/import_model.py).

``load`` reads the three forms a segmentation_models user has (full .h5, weights +
architecture flags, model.json + weights), ``shape`` reads what the model knows and makes
it the model nanoseg exports (fixed input size, float32, probabilities in label order),
``images`` finds the golden images, ``write`` writes the bundle.
"""
