"""Build (once) and locate a Python 3.6 virtual environment like a Jetson Nano's.

JetPack 4.6 runs Python 3.6 with OpenCV 4.1.1 and nanoseg pins numpy 1.19.4 there (1.19.5 here:
the same API; its aarch64 wheel is the one that crashes on Jetsons); the edge code must run there.
This machine image carries CPython 3.6.15 (pyenv); we build ``.cache/venv36`` from it with
the pins in tests/requirements-py36.txt and reuse it while that file is unchanged.
"""
import hashlib
import os
import shutil
import subprocess

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
VENV36 = os.path.join(ROOT, ".cache", "venv36")
REQUIREMENTS = os.path.join(ROOT, "tests", "requirements-py36.txt")
PIP_FOR_PY36 = "pip==21.3.1"  # the last pip for 3.6; older ones miss manylinux2014 wheels
JETSON_FILES = os.path.join(ROOT, "jetson", "jetson-files.txt")


def jetson_paths():
    """The paths jetson/deploy.sh copies to the Jetson (the one definition of that set)."""
    with open(JETSON_FILES) as handle:
        lines = [line.split("#")[0].strip() for line in handle]
    return [line for line in lines if line]


def find_python36():
    """Path of a working CPython 3.6 interpreter, or None.

    Each candidate is run, not just found: a pyenv shim named python3.6 exists even where it
    refuses to start.
    """
    candidates = [os.environ.get("NANOSEG_PYTHON36")]
    pyenv = shutil.which("pyenv")
    if pyenv:
        try:
            prefix = subprocess.run([pyenv, "prefix", "3.6.15"], capture_output=True,
                                    text=True, timeout=30).stdout.strip()
            candidates.append(os.path.join(prefix, "bin", "python3.6") if prefix else None)
        except (OSError, subprocess.SubprocessError):
            pass
    candidates.append(shutil.which("python3.6"))
    for path in candidates:
        if path and os.path.isfile(path) and _is_python36(path):
            return path
    return None


def _is_python36(path):
    try:
        result = subprocess.run([path, "-c", "import sys; print(sys.version_info[:2])"],
                                capture_output=True, text=True, timeout=30)
    except (OSError, subprocess.SubprocessError):
        return False
    return result.returncode == 0 and result.stdout.strip() == "(3, 6)"


def _stamp():
    with open(REQUIREMENTS, "rb") as handle:
        return hashlib.sha256(handle.read()).hexdigest()


def ensure_venv36(python36):
    """Create/refresh the venv; return its python. Raises RuntimeError with pip's output."""
    venv_python = os.path.join(VENV36, "bin", "python")
    stamp_path = os.path.join(VENV36, ".requirements.sha256")
    if os.path.isfile(venv_python) and os.path.isfile(stamp_path):
        with open(stamp_path) as handle:
            if handle.read().strip() == _stamp():
                return venv_python
    steps = [
        [python36, "-m", "venv", "--clear", VENV36],
        [venv_python, "-m", "pip", "install", "--quiet", PIP_FOR_PY36],
        [venv_python, "-m", "pip", "install", "--quiet", "-r", REQUIREMENTS],
    ]
    for step in steps:
        result = subprocess.run(step, capture_output=True, text=True, timeout=900)
        if result.returncode != 0:
            raise RuntimeError("building the Python 3.6 venv failed at {}:\n{}".format(
                " ".join(step), (result.stdout + result.stderr)[-3000:]))
    with open(stamp_path, "w") as handle:
        handle.write(_stamp())
    return venv_python
