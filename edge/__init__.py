"""nanoseg edge runtime: what runs on the Jetson Nano (Python 3.6, numpy, OpenCV, TensorRT).

Everything in this package must stay importable with only numpy + OpenCV (+ tensorrt/pycuda or
onnxruntime where a backend asks for them), under Python 3.6. Training imports the
preprocessing contract from here so there is exactly one definition of what the model sees.
"""
