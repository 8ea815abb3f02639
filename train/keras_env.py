"""Keras 2 for segmentation_models, set up before TensorFlow is imported.

segmentation_models 1.0.1 runs only on Keras 2: TF 2.15 bundles it; TF >= 2.16 needs the
``tf-keras`` package and ``TF_USE_LEGACY_KERAS=1`` *before* TensorFlow is imported, and
``SM_FRAMEWORK=tf.keras`` must be set before segmentation_models is imported
(``set_framework()`` is too late). CLIs call :func:`prepare` first thing; library code gets
segmentation_models through :func:`import_segmentation_models`.
"""
import contextlib
import importlib
import importlib.util
import os
import sys

from edge.errors import NanosegError

KERAS2_ENV = {
    "SM_FRAMEWORK": "tf.keras",
    "NO_ALBUMENTATIONS_UPDATE": "1",   # albumentations >= 1.4 phones home on import otherwise
    "TF_CPP_MIN_LOG_LEVEL": "2",
}


def prepare(environ=None):
    """Set the variables Keras 2 + segmentation_models need (existing values win).

    TF_USE_LEGACY_KERAS=1 only where the tf-keras package is installed (TF >= 2.16): on TF
    2.15 without it, that variable makes ``tf.keras`` fail with "Keras cannot be imported".
    """
    environ = os.environ if environ is None else environ
    for key, value in KERAS2_ENV.items():
        environ.setdefault(key, value)
    if importlib.util.find_spec("tf_keras") is not None:
        environ.setdefault("TF_USE_LEGACY_KERAS", "1")


def keras_version(tf):
    """The version of the Keras behind ``tf.keras`` (TF 2.15's tf.keras has no __version__)."""
    version = getattr(tf.keras, "__version__", None)
    if version:
        return str(version)
    package = importlib.import_module(tf.keras.__name__.split(".")[0])
    return str(getattr(package, "__version__", "?"))


def import_segmentation_models():
    """Import segmentation_models on Keras 2, or explain in one line why it cannot run."""
    prepare()
    import tensorflow as tf
    version = keras_version(tf)
    if not version.startswith("2."):
        raise NanosegError(
            "TensorFlow {} gives Keras {}, but segmentation_models needs Keras 2: install "
            "tensorflow==2.15.1, or tf-keras and set TF_USE_LEGACY_KERAS=1 before starting "
            "Python".format(tf.__version__, version))
    with contextlib.redirect_stdout(sys.stderr):  # its import banner is not CLI output
        import segmentation_models as sm
    return sm
