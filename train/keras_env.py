"""Keras 2 for segmentation_models, set up before TensorFlow is imported.

segmentation_models 1.0.1 runs only on Keras 2: TF 2.15 bundles it; TF >= 2.16 needs the
``tf-keras`` package and ``TF_USE_LEGACY_KERAS=1`` *before* TensorFlow is imported, and
``SM_FRAMEWORK=tf.keras`` must be set before segmentation_models is imported
(``set_framework()`` is too late). CLIs call :func:`prepare` first thing; library code gets
segmentation_models through :func:`import_segmentation_models`.
"""
import os

from edge.errors import NanosegError

KERAS2_ENV = {
    "SM_FRAMEWORK": "tf.keras",
    "TF_USE_LEGACY_KERAS": "1",
    "NO_ALBUMENTATIONS_UPDATE": "1",   # albumentations >= 1.4 phones home on import otherwise
    "TF_CPP_MIN_LOG_LEVEL": "2",
}


def prepare(environ=None):
    """Set the variables Keras 2 + segmentation_models need (existing values win)."""
    environ = os.environ if environ is None else environ
    for key, value in KERAS2_ENV.items():
        environ.setdefault(key, value)


def import_segmentation_models():
    """Import segmentation_models on Keras 2, or explain in one line why it cannot run."""
    prepare()
    import tensorflow as tf
    keras_version = getattr(tf.keras, "__version__", "?")
    if not str(keras_version).startswith("2."):
        raise NanosegError(
            "TensorFlow {} gives Keras {}, but segmentation_models needs Keras 2: install "
            "tensorflow==2.15.1, or tf-keras and set TF_USE_LEGACY_KERAS=1 before starting "
            "Python".format(tf.__version__, keras_version))
    import segmentation_models as sm
    return sm
