"""convert/check_onnx.py on tiny models built with onnx.helper: what TensorRT 8.0/8.2 rejects.

(The exported Unet passing it is in tests/test_export_onnx.py, which has a trained bundle.)
"""
import numpy as np
import pytest

from convert import check_onnx, trt_ops

onnx = pytest.importorskip("onnx")
from onnx import TensorProto, helper, numpy_helper  # noqa: E402


def make_model(nodes, inputs=None, outputs=None, initializers=(), opset=13):
    """A one-graph model; default I/O: x (1,3,8,8) float -> y (1,3,16,16) float."""
    inputs = inputs or [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 3, 8, 8])]
    outputs = outputs or [helper.make_tensor_value_info("y", TensorProto.FLOAT,
                                                        [1, 3, 16, 16])]
    graph = helper.make_graph(nodes, "tiny", inputs, outputs, list(initializers))
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)])


def upsample(ctm="asymmetric", nearest_mode="floor", mode="nearest", scale=2.0):
    node = helper.make_node("Resize", ["x", "roi", "scales"], ["y"], name="up", mode=mode,
                            nearest_mode=nearest_mode, coordinate_transformation_mode=ctm)
    inits = [numpy_helper.from_array(np.zeros(0, np.float32), "roi"),
             numpy_helper.from_array(np.asarray([1, 1, scale, scale], np.float32), "scales")]
    return node, inits


def good_model(**kwargs):
    node, inits = upsample()
    return make_model([node], initializers=inits, **kwargs)


def test_good_model_passes_and_runs():
    model = good_model()
    onnx.checker.check_model(model)
    assert check_onnx.check_model(model) == []
    ort = pytest.importorskip("onnxruntime")
    x = np.arange(192, dtype=np.float32).reshape(1, 3, 8, 8)
    (y,) = ort.InferenceSession(model.SerializeToString()).run(None, {"x": x})
    assert np.array_equal(y, x.repeat(2, axis=2).repeat(2, axis=3))
    assert "opset 13, 1 nodes (Resize 1)" in check_onnx.summarize(model)


def test_opset_15_fails():
    problems = check_onnx.check_model(good_model(opset=15))
    assert problems == ["opset 15 is above 13 (TensorRT 8.0/8.2 parse opsets up to 13): "
                        "re-export with convert/export_onnx.py --opset 13"]


def test_dynamic_batch_fails():
    node, inits = upsample()
    model = make_model([node], initializers=inits, inputs=[
        helper.make_tensor_value_info("x", TensorProto.FLOAT, ["batch", 3, 8, 8])])
    (problem,) = check_onnx.check_model(model)
    assert "input 'x' has dynamic shape ['batch', 3, 8, 8]" in problem
    assert "static batch 1" in problem


def test_batch_4_and_float16_io_fail():
    node, inits = upsample()
    model = make_model([node], initializers=inits, outputs=[
        helper.make_tensor_value_info("y", TensorProto.FLOAT16, [4, 3, 16, 16])])
    problems = check_onnx.check_model(model)
    assert any("output 'y' is FLOAT16, not float32" in p for p in problems)
    assert any("output 'y' has batch 4" in p for p in problems)


def test_argmax_fails_with_the_reason():
    node = helper.make_node("ArgMax", ["x"], ["y"], name="labels", axis=1, keepdims=1)
    model = make_model([node], outputs=[
        helper.make_tensor_value_info("y", TensorProto.INT64, [1, 1, 8, 8])])
    problems = check_onnx.check_model(model)
    assert any(p.startswith("node 0 'labels' (ArgMax): nanoseg keeps ArgMax out of exported "
                            "graphs") for p in problems), problems
    assert any("output 'y' is INT64, not float32" in p for p in problems)


def test_unsupported_op_fails():
    node = helper.make_node("NonZero", ["x"], ["y"], name="nz")
    model = make_model([node], outputs=[
        helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 3, 8, 8])])
    assert check_onnx.check_model(model) == [
        "node 0 'nz' (NonZero): NonZero is not in TensorRT 8.0/8.2's ONNX operator table "
        "(convert/trt_ops.py): replace the layer that makes it"]
    assert "NonZero" not in trt_ops.SUPPORTED_OPS and "Conv" in trt_ops.SUPPORTED_OPS


@pytest.mark.parametrize("ctm, mode, nearest_mode", [
    ("half_pixel", "linear", "round_prefer_floor"),   # Keras bilinear UpSampling2D
    ("pytorch_half_pixel", "linear", "round_prefer_floor"),
    ("align_corners", "linear", "floor"),
    ("asymmetric", "nearest", "ceil"),
    ("half_pixel", "nearest", "round_prefer_ceil"),
    ("align_corners", "nearest", "round_prefer_floor"),
    ("tf_half_pixel_for_nn", "nearest", "round_prefer_floor"),
])
def test_resize_modes_both_parsers_import_pass(ctm, mode, nearest_mode):
    node, inits = upsample(ctm=ctm, mode=mode, nearest_mode=nearest_mode)
    assert check_onnx.check_model(make_model([node], initializers=inits)) == []


@pytest.mark.parametrize("kwargs, message", [
    ({"ctm": "tf_half_pixel_for_nn"}, "coordinate_transformation_mode=tf_half_pixel_for_nn "
                                      "with nearest_mode=floor is not accepted"),
    ({"ctm": "tf_half_pixel_for_nn", "mode": "linear"}, "with nearest_mode=floor"),
    ({"ctm": "tf_crop_and_resize"}, "coordinate_transformation_mode=tf_crop_and_resize"),
    ({"mode": "cubic"}, "mode=cubic"),
])
def test_resize_attributes_the_parsers_refuse_fail(kwargs, message):
    node, inits = upsample(**kwargs)
    problems = check_onnx.check_model(make_model([node], initializers=inits))
    assert len(problems) == 1 and message in problems[0], problems


def test_resize_scales_must_be_constant_unless_sizes_are_given():
    node = helper.make_node("Resize", ["x", "roi", "scales"], ["y"], name="up",
                            mode="nearest", coordinate_transformation_mode="asymmetric",
                            nearest_mode="floor")
    roi = numpy_helper.from_array(np.zeros(0, np.float32), "roi")
    scales = numpy_helper.from_array(np.asarray([1, 1, 2, 2], np.float32), "scales")
    as_input = [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 3, 8, 8]),
                helper.make_tensor_value_info("scales", TensorProto.FLOAT, [4])]
    problems = check_onnx.check_model(make_model([node], inputs=as_input,
                                                 initializers=[roi]))
    assert [p for p in problems if "(Resize)" in p] == [
        "node 0 'up' (Resize): input 2 ('scales') must be an initializer for TensorRT 8.0: "
        "export with a static shape"], problems
    constant = helper.make_node("Constant", [], ["scales"], name="k", value=scales)
    assert check_onnx.check_model(make_model([constant, node], initializers=[roi])) == []
    by_size = helper.make_node("Resize", ["x", "roi", "", "sizes"], ["y"], name="up",
                               mode="nearest", coordinate_transformation_mode="asymmetric",
                               nearest_mode="floor")
    sizes = helper.make_node("Shape", ["x"], ["sizes"], name="size")   # not a constant
    assert check_onnx.check_model(make_model([sizes, by_size], initializers=[roi])) == []


def test_linear_resize_of_a_leading_axis_fails():
    node, inits = upsample(mode="linear", ctm="half_pixel")
    inits[1] = numpy_helper.from_array(np.asarray([2, 1, 1, 2], np.float32), "scales")
    (problem,) = check_onnx.check_model(make_model([node], initializers=inits))
    assert "linear resize with scales [2.0, 1.0, 1.0, 2.0]" in problem


def test_clip_bounds_must_be_initializers_and_pad_at_most_two_axes():
    relu6 = helper.make_node("Clip", ["x", "lo", "hi"], ["c"], name="relu6")
    pad = helper.make_node("Pad", ["c", "pads"], ["y"], name="pad")
    pads = numpy_helper.from_array(np.asarray([0, 1, 4, 4, 0, 0, 4, 4], np.int64), "pads")
    lo = numpy_helper.from_array(np.asarray(0, np.float32), "lo")
    model = make_model([relu6, pad], initializers=[pads, lo], inputs=[
        helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 3, 8, 8]),
        helper.make_tensor_value_info("hi", TensorProto.FLOAT, [])])
    problems = check_onnx.check_model(model)
    assert any("'relu6' (Clip): input 2 ('hi') must be an initializer" in p for p in problems)
    assert any("'pad' (Pad): pads [0, 1, 4, 4, 0, 0, 4, 4] pad 3 axes" in p
               for p in problems), problems


def pad_model(pads, value=None, mode="constant", pads_input=False, value_node=False):
    """x (1,3,8,8) -> Pad -> y; pads an initializer (or a graph input), value optional."""
    names = ["x", "pads"] + (["value"] if value is not None else [])
    node = helper.make_node("Pad", names, ["y"], name="pad", mode=mode)
    inputs = [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 3, 8, 8])]
    nodes, inits = [node], []
    if pads_input:
        inputs.append(helper.make_tensor_value_info("pads", TensorProto.INT64, [8]))
    else:
        inits.append(numpy_helper.from_array(np.asarray(pads, np.int64), "pads"))
    if value is not None:
        tensor = numpy_helper.from_array(np.asarray(value, np.float32), "value")
        if value_node:
            nodes.insert(0, helper.make_node("Constant", [], ["value"], name="v",
                                             value=tensor))
        else:
            inits.append(tensor)
    out = [helper.make_tensor_value_info("y", TensorProto.FLOAT, None)]
    return make_model(nodes, inputs=inputs, outputs=out, initializers=inits)


def pad_problems(*args, **kwargs):
    """The Pad node's problems (the outputs' unknown shape is another check's business)."""
    return [p for p in check_onnx.check_model(pad_model(*args, **kwargs)) if "(Pad)" in p]


def test_pad_on_any_two_axes_with_a_constant_zero_passes():
    assert pad_problems([0, 1, 0, 2, 0, 1, 0, 2]) == []            # C and W
    assert pad_problems([0, 0, 1, 1, 0, 0, 1, 1], value=0.0) == []
    assert pad_problems([0, 0, 1, 1, 0, 0, 1, 1], value=0.0, value_node=True) == []
    assert pad_problems([0] * 8, mode="reflect") == []              # a no-op: an identity


def test_pad_the_parsers_refuse_fails():
    assert pad_problems([1, 1, 1, 0, 0, 0, 0, 0]) == [
        "node 0 'pad' (Pad): pads [1, 1, 1, 0, 0, 0, 0, 0] pad 3 axes (TensorRT 8.0 pads at "
        "most 2): pad in two steps or re-export"]
    assert pad_problems([0, 0, 1, 1, 0, 0, 1, 1], mode="reflect") == [
        "node 0 'pad' (Pad): Pad mode=reflect (TensorRT 8.0 supports zero padding only): use "
        "ZeroPadding2D"]
    assert pad_problems([0, 0, 1, 1, 0, 0, 1, 1], value=1.0, value_node=True) == [
        "node 1 'pad' (Pad): Pad constant value 1.0 (TensorRT 8.0 pads with zeros only): use "
        "ZeroPadding2D"]
    assert pad_problems([0, 0, -1, 0, 0, 0, 0, 0]) == [
        "node 0 'pad' (Pad): pads [0, 0, -1, 0, 0, 0, 0, 0] crop (TensorRT 8.2 refuses "
        "negative pads): crop with a Slice (Cropping2D)"]
    assert pad_problems(None, pads_input=True) == [
        "node 0 'pad' (Pad): input 1 ('pads') must be an initializer for TensorRT 8.0: export "
        "with a static shape"]


def test_cli_exit_status(tmp_path, capsys):
    good, bad = str(tmp_path / "good.onnx"), str(tmp_path / "bad.onnx")
    onnx.save(good_model(), good)
    onnx.save(good_model(opset=15), bad)
    assert check_onnx.main(check_onnx.parse_args([good])) == 0
    assert "OK:" in capsys.readouterr().out
    assert check_onnx.main(check_onnx.parse_args([bad])) == 1
    out = capsys.readouterr().out
    assert "FAIL opset 15" in out and "1 problem(s)" in out


def test_unreadable_files_are_one_line(tmp_path):
    from nanoseg import cli
    garbage = tmp_path / "garbage.onnx"
    garbage.write_bytes(b"\x00\x01 not protobuf at all \xff" * 10)
    for path, message in ((str(tmp_path / "missing.onnx"), "ONNX file not found"),
                          (str(garbage), "is not a readable ONNX model")):
        with pytest.raises(check_onnx.NanosegError, match=message):
            check_onnx.load_onnx(path)
    assert cli.run(check_onnx.main, check_onnx.parse_args,
                   [str(tmp_path / "missing.onnx")]) == 2


def test_a_folder_is_named_as_one_with_the_file_to_pass(tmp_path):
    from nanoseg import cli
    folder = tmp_path / "bundle"
    folder.mkdir()
    with pytest.raises(check_onnx.NanosegError, match="is a folder with no .onnx file"):
        check_onnx.load_onnx(str(folder))
    for name in ("model_fp16.onnx", "model.onnx"):
        onnx.save(good_model(), str(folder / name))
    expected = "{} is a folder: pass the ONNX file, e.g. {} or {}".format(
        folder, folder / "model.onnx", folder / "model_fp16.onnx")
    with pytest.raises(check_onnx.NanosegError) as info:
        check_onnx.load_onnx(str(folder))
    assert str(info.value) == expected
    assert cli.run(check_onnx.main, check_onnx.parse_args, [str(folder)]) == 2


def test_require_trt_compatible_summarizes():
    node = helper.make_node("NonZero", ["x"], ["y"], name="nz")
    model = make_model([node], opset=15, outputs=[
        helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 3, 8, 8])])
    with pytest.raises(check_onnx.NanosegError, match=r"m.onnx would not parse.*opset 15.*"
                                                       r"\+1 more: run convert/check_onnx.py"):
        check_onnx.require_trt_compatible(model, "m.onnx")


def test_topk_k_and_dropout_mode_must_be_initializers():
    """onnx-tensorrt's TopK importer asserts K is weights; Dropout's training_mode likewise."""
    def topk_model(k_is_initializer):
        node = helper.make_node("TopK", ["x", "k"], ["y", "idx"], name="top", axis=3)
        k = numpy_helper.from_array(np.asarray([4], np.int64), "k")
        inputs = [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 3, 8, 8])]
        if not k_is_initializer:
            inputs.append(helper.make_tensor_value_info("k", TensorProto.INT64, [1]))
        return make_model([node], inputs=inputs, initializers=[k] if k_is_initializer else [],
                          outputs=[helper.make_tensor_value_info("y", TensorProto.FLOAT,
                                                                 [1, 3, 8, 4]),
                                   helper.make_tensor_value_info("idx", TensorProto.INT64,
                                                                 [1, 3, 8, 4])])
    problems = check_onnx.check_model(topk_model(True))
    assert not [p for p in problems if "(TopK)" in p], problems   # only the int64 idx output
    problems = check_onnx.check_model(topk_model(False))
    assert any("'top' (TopK): input 1 ('k') must be an initializer" in p for p in problems)

    def dropout_model(mode_is_initializer):
        node = helper.make_node("Dropout", ["x", "ratio", "mode"], ["y"], name="drop")
        ratio = numpy_helper.from_array(np.asarray(0.2, np.float32), "ratio")
        mode = numpy_helper.from_array(np.asarray(False), "mode")
        inputs = [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 3, 8, 8])]
        if not mode_is_initializer:
            inputs.append(helper.make_tensor_value_info("mode", TensorProto.BOOL, []))
        return make_model([node], inputs=inputs,
                          initializers=[ratio, mode] if mode_is_initializer else [ratio],
                          outputs=[helper.make_tensor_value_info("y", TensorProto.FLOAT,
                                                                 [1, 3, 8, 8])])
    assert check_onnx.check_model(dropout_model(True)) == []      # imported as an identity
    problems = check_onnx.check_model(dropout_model(False))
    assert "node 0 'drop' (Dropout): input 2 ('mode') must be an initializer for TensorRT " \
        "8.0: export with a static shape" in problems, problems


def test_softmax_cross_entropy_loss_is_not_in_the_82_table():
    node = helper.make_node("SoftmaxCrossEntropyLoss", ["x", "labels"], ["y"], name="loss")
    model = make_model([node], inputs=[
        helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 3, 8, 8]),
        helper.make_tensor_value_info("labels", TensorProto.INT64, [1, 8, 8])],
        outputs=[helper.make_tensor_value_info("y", TensorProto.FLOAT, [])])
    problems = check_onnx.check_model(model)
    assert any("(SoftmaxCrossEntropyLoss): SoftmaxCrossEntropyLoss is not in TensorRT "
               "8.0/8.2's ONNX operator table" in p for p in problems), problems
