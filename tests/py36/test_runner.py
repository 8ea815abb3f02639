"""edge/tensorrt/runner.py: buffer planning, and TrtRunner on the stand-in tensorrt + pycuda
modules (tests/tensorrt_standin.py) with the 10.x and the 8.x API: contexts pushed around
every call, buffers freed inside the context, one-line errors."""
import threading

import numpy as np
import pytest

from edge.tensorrt import compat as trt_compat
from edge.tensorrt.runner import BufferPlan, check_input, plan_buffers
from nanoseg.errors import NanosegError
from tests import tensorrt_standin as standin


def test_plan_buffers_sizes_from_the_engine():
    plans = plan_buffers(trt_compat.io_tensors(standin.Engine8()))
    assert plans == [BufferPlan("input", (1, 3, 64, 96), "float32", 1 * 3 * 64 * 96 * 4, True),
                     BufferPlan("probabilities", (1, 64, 96, 1), "float32", 64 * 96 * 4,
                                False)]
    check_input(np.zeros((1, 3, 64, 96), np.float32), plans[0])
    with pytest.raises(NanosegError, match=r"shape \(1, 64, 96, 3\).*expects \(1, 3, 64, 96\)"):
        check_input(np.zeros((1, 64, 96, 3), np.float32), plans[0])
    half = trt_compat.TensorInfo("out", (1, 8, 8, 2), "float16", False)
    assert plan_buffers([trt_compat.io_tensors(standin.Engine8())[0], half])[1].nbytes == 256


def test_plan_buffers_rejects_dynamic_and_multi_input():
    dyn = trt_compat.TensorInfo("input", (-1, 3, 64, 96), "float32", True)
    out = trt_compat.TensorInfo("out", (1, 4), "float32", False)
    with pytest.raises(NanosegError, match="dynamic shape.*static ONNX"):
        plan_buffers([dyn, out])
    two = trt_compat.TensorInfo("input2", (1, 4), "float32", True)
    with pytest.raises(NanosegError, match="2 input"):
        plan_buffers([trt_compat.io_tensors(standin.Engine8())[0], two, out])


@pytest.fixture
def fake_gpu(monkeypatch, tmp_path):
    """Stand-in tensorrt (10.x API) + pycuda installed; -> (cuda, engine file, install)
    where ``install(cuda, trt)`` swaps in other stand-ins."""
    def install(cuda, trt):
        standin.install(monkeypatch, cuda, trt)
    engine_file = str(tmp_path / "model.engine")
    with open(engine_file, "wb") as handle:
        handle.write(b"plan")
    cuda = standin.FakeCuda()
    install(cuda, standin.make_tensorrt("10", cuda=cuda))
    return cuda, engine_file, install


def _x(seed):
    return np.random.RandomState(seed).rand(1, 3, 64, 96).astype(np.float32)


def test_runner_runs_with_addresses_set_once(fake_gpu):
    from edge.tensorrt.runner import TrtRunner
    cuda, engine_file, _ = fake_gpu
    runner = TrtRunner(engine_file)
    assert cuda.log[:2] == [("retain", 0), ("push", "primary", "MainThread")]
    assert cuda.log[-1] == ("pop", "primary") and not cuda.stack
    assert runner.input_shape == (1, 3, 64, 96)
    for seed in range(3):
        (out,) = runner.infer(_x(seed))
        np.testing.assert_allclose(out, _x(seed).sum(axis=1)[..., None], rtol=1e-6)
    calls = runner.engine.context.calls
    assert [c[0] for c in calls] == ["address", "address", "v3", "v3", "v3"]
    assert not cuda.stack          # popped after every call
    with pytest.raises(NanosegError, match=r"shape \(1, 64, 96, 3\).*expects \(1, 3, 64, 96\)"):
        runner.infer(np.zeros((1, 64, 96, 3), np.float32))
    runner.close()


def test_runner_copies_unless_given_its_own_input_buffer(fake_gpu):
    """The buffer itself is used as is; a view that only overlaps it (here reversed) holds
    other values and is copied in, like any other array."""
    from edge.tensorrt.runner import TrtRunner
    _, engine_file, _ = fake_gpu
    with TrtRunner(engine_file) as runner:
        host = runner.input_host_buffer()
        host[...] = _x(2)
        (out,) = runner.infer(host)  # filled in place: no copy needed
        np.testing.assert_allclose(out, _x(2).sum(axis=1)[..., None], rtol=1e-6)
        reversed_view = host[..., ::-1]
        assert np.shares_memory(reversed_view, host)
        (out,) = runner.infer(reversed_view)
        np.testing.assert_allclose(out, _x(2)[..., ::-1].sum(axis=1)[..., None], rtol=1e-6)
        (out,) = runner.infer(_x(3))
        np.testing.assert_allclose(out, _x(3).sum(axis=1)[..., None], rtol=1e-6)


def test_runner_with_the_binding_api(fake_gpu):
    from edge.tensorrt.runner import TrtRunner
    cuda, engine_file, install = fake_gpu
    install(cuda, standin.make_tensorrt("8", cuda=cuda))
    with TrtRunner(engine_file) as runner:
        (out,) = runner.infer(_x(1))
        np.testing.assert_allclose(out, _x(1).sum(axis=1)[..., None], rtol=1e-6)
        devices = [a.address for a in cuda.allocations if a.kind == "device"]
        assert runner.engine.context.calls == [("v2", devices, 42)]


def test_runner_infers_from_a_worker_thread(fake_gpu):
    from edge.tensorrt.runner import TrtRunner
    cuda, engine_file, _ = fake_gpu
    results = []
    with TrtRunner(engine_file) as runner:
        workers = [threading.Thread(target=lambda s=s: results.append((s, runner.infer(_x(s)))),
                                    name="infer-{}".format(s)) for s in range(4)]
        for worker in workers:
            worker.start()
        for worker in workers:
            worker.join()
    assert sorted(s for s, _ in results) == [0, 1, 2, 3]
    for seed, (out,) in results:
        np.testing.assert_allclose(out, _x(seed).sum(axis=1)[..., None], rtol=1e-6)
    pushes = [entry for entry in cuda.log if entry[0] == "push"]
    assert {p[2] for p in pushes} >= {"infer-0", "infer-1", "infer-2", "infer-3"}
    # the lock serialises calls: every push is followed by its pop before the next push
    order = [entry[0] for entry in cuda.log if entry[0] in ("push", "pop")]
    assert order == ["push", "pop"] * (len(order) // 2)


def test_close_frees_everything_inside_the_context_then_releases_it(fake_gpu):
    from edge.tensorrt.runner import TrtRunner
    cuda, engine_file, _ = fake_gpu
    runner = TrtRunner(engine_file)
    runner.infer(_x(0))
    mark = len(cuda.log)
    runner.close()
    tail = cuda.log[mark:]
    assert tail[0] == ("push", "primary", "MainThread")
    assert tail[-2:] == [("pop", "primary"), ("detach", "primary")]
    middle = tail[1:-2]
    assert sorted(middle, key=str) == sorted([("free", "device")] * 2 + [("free", "host")] * 2
                                             + [("stream destroyed", True)], key=str)
    assert all(a.freed for a in cuda.allocations) and len(cuda.allocations) == 4
    assert runner.engine is None and runner.context is None and not cuda.stack
    runner.close()                                           # idempotent
    assert cuda.log[mark:] == tail
    with pytest.raises(NanosegError, match="runner was closed"):
        runner.infer(_x(0))


def test_failed_load_releases_before_detaching(fake_gpu, tmp_path):
    from edge.tensorrt.runner import TrtRunner
    cuda, engine_file, install = fake_gpu
    bad = str(tmp_path / "other.engine")
    with open(bad, "wb") as handle:
        handle.write(b"built by TensorRT 7")
    with pytest.raises(NanosegError, match="could not load .*other.engine.*--force"):
        TrtRunner(bad)
    assert cuda.log[-2:] == [("pop", "primary"), ("detach", "primary")] and not cuda.stack

    class Refusing(standin.Context10):
        def set_tensor_address(self, name, memory):
            return False

    cuda = standin.FakeCuda()
    install(cuda, standin.make_tensorrt("10", cuda=cuda, context_class=Refusing))
    with pytest.raises(NanosegError, match="refused the buffer for tensor 'input'"):
        TrtRunner(engine_file)
    # buffers were allocated before bind() failed: all freed, inside the context
    assert len(cuda.allocations) == 4 and all(a.freed for a in cuda.allocations)
    assert ("stream destroyed", True) in cuda.log
    assert cuda.log[-2:] == [("pop", "primary"), ("detach", "primary")] and not cuda.stack


def test_no_gpu_is_one_line(fake_gpu):
    from convert import build_engine
    from edge.tensorrt.runner import TrtRunner
    cuda, engine_file, install = fake_gpu
    cuda = standin.FakeCuda(init_error="cuInit failed: no CUDA-capable device is detected")
    install(cuda, standin.make_tensorrt("10", cuda=cuda))
    for call in (lambda: TrtRunner(engine_file), build_engine.device_name):
        with pytest.raises(NanosegError) as info:
            call()
        message = str(info.value)
        assert message.startswith("no CUDA GPU visible: cuInit failed: no CUDA-capable device "
                                  "is detected") and "CUDA_VISIBLE_DEVICES" in message
        assert "\n" not in message
    assert cuda.log == []            # nothing retained, nothing to release


def test_old_pycuda_gets_a_context_of_its_own(fake_gpu):
    from edge.tensorrt.runner import TrtRunner
    cuda, engine_file, install = fake_gpu
    cuda = standin.FakeCuda(device_class=standin.OldFakeDevice)
    install(cuda, standin.make_tensorrt("10", cuda=cuda))
    with TrtRunner(engine_file) as runner:
        runner.infer(_x(0))
    names = [entry[1] for entry in cuda.log if entry[0] in ("push", "pop", "detach")]
    assert set(names) == {"own"} and cuda.log[-1] == ("detach", "own") and not cuda.stack
