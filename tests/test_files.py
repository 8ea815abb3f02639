"""nanoseg/files.py: a reader sees the old file or the whole new one, never half of one; and
sample names and checksums are what their callers rely on."""
import hashlib
import os

import pytest

from nanoseg import files


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
