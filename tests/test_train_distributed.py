"""A real 2-worker MultiWorkerMirroredStrategy run on loopback: two processes, TF_CONFIG.

Each worker runs ``python3 train/train.py --strategy multiworker`` with its own TF_CONFIG;
gradients are all-reduced over gRPC between them. Only the chief (worker 0) writes the
bundle; the other trains in a temporary folder that it deletes.
"""
import json
import os
import socket
import subprocess
import sys

import numpy as np

from nanoseg.contract import load_contract
from tests.train_helpers import train_args

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def free_ports(count):
    """Ports the OS says are free right now (bound together so they differ)."""
    sockets = [socket.socket() for _ in range(count)]
    try:
        for sock in sockets:
            sock.bind(("127.0.0.1", 0))
        return [sock.getsockname()[1] for sock in sockets]
    finally:
        for sock in sockets:
            sock.close()


def test_two_workers_train_one_epoch_and_the_chief_bundle_loads(tmp_path, nails_dir):
    workers = ["127.0.0.1:{}".format(port) for port in free_ports(2)]
    out = tmp_path / "bundle"
    argv = train_args(out, nails_dir, "flat", ["nail"], size=(64, 64), epochs=1, batch=2,
                      extra_args=["--strategy", "multiworker"])
    procs = []
    for index in range(2):
        env = dict(os.environ, CUDA_VISIBLE_DEVICES="-1", TF_CONFIG=json.dumps(
            {"cluster": {"worker": workers}, "task": {"type": "worker", "index": index}}))
        log = open(str(tmp_path / "worker{}.log".format(index)), "w")
        procs.append((subprocess.Popen([sys.executable, "train/train.py"] + argv, cwd=ROOT,
                                       env=env, stdout=log, stderr=subprocess.STDOUT), log))
    codes = []
    try:
        for proc, _ in procs:
            codes.append(proc.wait(timeout=900))
    finally:
        for proc, log in procs:
            if proc.poll() is None:
                proc.kill()
            log.close()
    logs = [(tmp_path / "worker{}.log".format(i)).read_text() for i in range(2)]
    assert codes == [0, 0], "\n----\n".join(text[-3000:] for text in logs)
    assert "2 replica(s), 2 worker(s), global batch 4" in logs[0]
    contract = load_contract(str(out / "contract.json"))
    assert contract.extra["strategy"] == "multiworker" and contract.extra["replicas"] == 2
    assert not os.path.exists(str(out) + ".partial")

    from train.model import load_model_for_inference, predict_probabilities
    model = load_model_for_inference(str(out / "model.h5"))
    probs = predict_probabilities(model, np.zeros((1, 64, 64, 3), np.float32))
    assert probs.shape == (1, 64, 64, 1) and np.isfinite(probs).all()
