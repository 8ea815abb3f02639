"""nanoseg/files.py: a reader sees the old file or the whole new one, never half of one; and
sample names and checksums are what their callers rely on; a path a flag names is
checked writable before the work starts, and a failed write is one line naming it."""
import hashlib
import os

import pytest

from nanoseg import files
from nanoseg.errors import NanosegError


def _leftovers(folder, keep):
    return sorted(name for name in os.listdir(str(folder)) if name != keep)


def test_a_finished_block_replaces_the_file_and_leaves_no_temporary(tmp_path):
    path = str(tmp_path / "contract.json")
    files.write_text_atomic(path, "old")
    with files.atomic_path(path) as tmp:
        assert tmp != path and os.path.dirname(tmp) == str(tmp_path)
        with open(tmp, "w") as handle:
            handle.write("new")
        with open(path) as handle:
            assert handle.read() == "old"  # not replaced before the block ends
    with open(path) as handle:
        assert handle.read() == "new"
    assert _leftovers(tmp_path, "contract.json") == []


def test_a_failing_block_leaves_the_old_file_and_no_temporary(tmp_path):
    path = str(tmp_path / "model.onnx")
    files.write_bytes_atomic(path, b"old model")
    with pytest.raises(RuntimeError, match="disk full"):
        with files.atomic_path(path) as tmp:
            with open(tmp, "wb") as handle:
                handle.write(b"half a mod")
            raise RuntimeError("disk full")
    with open(path, "rb") as handle:
        assert handle.read() == b"old model"
    assert _leftovers(tmp_path, "model.onnx") == []


def test_a_failing_block_before_any_file_leaves_nothing(tmp_path):
    path = str(tmp_path / "new.json")
    with pytest.raises(ValueError):
        with files.atomic_path(path):
            raise ValueError("the writer refused its input")
    assert os.listdir(str(tmp_path)) == []


def test_the_suffix_keeps_the_extension_a_writer_insists_on(tmp_path):
    path = str(tmp_path / "golden.npz")
    with files.atomic_path(path, suffix=".npz") as tmp:
        assert tmp.endswith(".npz") and tmp != path
        with open(tmp, "wb") as handle:
            handle.write(b"npz")
    assert os.listdir(str(tmp_path)) == ["golden.npz"]


def test_write_bytes_atomic_creates_the_folder(tmp_path):
    path = str(tmp_path / "engines" / "nested" / "model.engine")
    assert files.write_bytes_atomic(path, bytearray(b"plan")) == path
    with open(path, "rb") as handle:
        assert handle.read() == b"plan"


def test_sample_names_are_relative_without_extension_with_forward_slashes(tmp_path):
    folder = str(tmp_path)
    assert files.sample_name(os.path.join(folder, "x.jpg"), folder) == "x"
    assert files.sample_name(os.path.join(folder, "day1", "cam.2", "x.png"),
                             folder) == "day1/cam.2/x"


def test_sha256_file_reads_in_chunks_and_matches_hashlib(tmp_path):
    path = str(tmp_path / "weights.h5")
    data = os.urandom(5000)
    with open(path, "wb") as handle:
        handle.write(data)
    expected = hashlib.sha256(data).hexdigest()
    assert files.sha256_file(path) == expected
    assert files.sha256_file(path, chunk=7) == expected  # the last chunk is partial


def _error(path, flag, folder=False):
    with pytest.raises(NanosegError) as info:
        files.check_writable(path, flag, folder=folder)
    assert "\n" not in str(info.value)
    return str(info.value)


def test_check_writable_passes_a_writable_folder_and_leaves_nothing_behind(tmp_path):
    files.check_writable(str(tmp_path / "run.json"), "--summary")
    files.check_writable(str(tmp_path / "masks" / "day1"), "--save-masks", folder=True)
    files.check_writable(str(tmp_path), "--save-masks", folder=True)
    assert os.listdir(str(tmp_path)) == []  # no probe left, no folder made


def test_check_writable_names_the_flag_and_a_missing_folder(tmp_path):
    missing = tmp_path / "missing"
    assert _error(str(missing / "run.json"), "--summary") == \
        "--summary folder {} does not exist: create it first".format(missing)


def test_check_writable_refuses_a_path_under_a_file_and_a_file_for_a_folder(tmp_path):
    plain = tmp_path / "notes.txt"
    plain.write_text("x")
    assert _error(str(plain / "out.mp4"), "--save-video") == \
        "--save-video {}: {} is not a folder".format(plain / "out.mp4", plain)
    assert _error(str(plain / "masks"), "--save-masks", folder=True) == \
        "--save-masks {}: {} is not a folder".format(plain / "masks", plain)
    assert _error(str(plain), "--save-masks", folder=True) == \
        "--save-masks {} is a file: name a folder".format(plain)
    assert _error(str(tmp_path), "--json") == "--json {} is a folder: name a file".format(
        tmp_path)


def test_check_writable_refuses_a_read_only_folder_even_for_root(read_only_folder):
    target = os.path.join(read_only_folder, "run.json")
    assert _error(target, "--summary") == "--summary {}: cannot write into folder {} " \
        "(Read-only file system): pick a writable one".format(target, read_only_folder)
    assert "cannot write into folder {} (Read-only".format(read_only_folder) in _error(
        os.path.join(read_only_folder, "masks", "day1"), "--save-masks", folder=True)


def test_a_failed_text_write_is_one_line_naming_the_flag_and_path(tmp_path, read_only_folder):
    path = str(tmp_path / "run.json")
    files.write_text_for_flag(path, "{}\n", "--summary")
    with open(path) as handle:
        assert handle.read() == "{}\n"
    target = os.path.join(read_only_folder, "run.json")
    with pytest.raises(NanosegError) as info:
        files.write_text_for_flag(target, "{}\n", "--summary")
    assert str(info.value) == "cannot write --summary {}: Read-only file system".format(target)
    gone = str(tmp_path / "gone" / "run.json")
    with pytest.raises(NanosegError, match="^cannot write --json .*gone/run.json: No such"):
        files.write_text_for_flag(gone, "{}\n", "--json")


def test_a_full_disk_during_an_atomic_write_names_the_file_and_leaves_no_temporary(
        nearly_full_folder):
    target = os.path.join(nearly_full_folder, "model.onnx")
    with pytest.raises(OSError) as raised:
        files.write_bytes_atomic(target, b"\0" * (256 * 1024))
    assert raised.value.filename == target
    assert files.write_failure(raised.value) == "cannot write {}: No space left on device: " \
        "free space there (or make it writable) and run again".format(target)
    assert os.listdir(nearly_full_folder) == []


def test_an_h5py_write_on_a_full_disk_is_named_from_its_message(nearly_full_folder):
    import h5py
    import numpy as np
    target = os.path.join(nearly_full_folder, "model.h5")
    with pytest.raises(OSError) as raised:
        with h5py.File(target, "w") as handle:
            handle["weights"] = np.random.RandomState(0).rand(100000)
    assert files.write_failure(raised.value).startswith(
        "cannot write {}: No space left on device".format(target))


def test_errors_that_are_not_failed_writes_are_left_alone():
    assert files.write_failure(ValueError("bad shape")) is None
    assert files.write_failure(OSError(2, "No such file or directory", "/x")) is None
    assert files.write_failure(RuntimeError("Read-only file system: '/data/x.pb'")) == \
        "cannot write /data/x.pb: Read-only file system: free space there (or make it " \
        "writable) and run again"
