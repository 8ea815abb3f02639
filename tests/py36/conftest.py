"""Fixtures for tests that must also pass under the Jetson's Python 3.6.

These tests import only numpy, cv2, onnxruntime, pytest and edge.*. Under the desktop
suite they get the session's exported bundle; under Python 3.6 (run by
tests/test_python36.py) the bundle is made by the desktop process and passed in
NANOSEG_TEST_BUNDLE, because there is no TensorFlow to train one.
"""
import os
import sys

import pytest


@pytest.fixture(scope="session")
def exported_bundle(request):
    path = os.environ.get("NANOSEG_TEST_BUNDLE")
    if path:
        return path
    if sys.version_info < (3, 9):
        pytest.skip("NANOSEG_TEST_BUNDLE is not set: under Python 3.6 these tests are run "
                    "by tests/test_python36.py with a bundle the desktop suite exported")
    return request.getfixturevalue("exported_nails_bundle")
