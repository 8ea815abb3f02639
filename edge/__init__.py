"""nanoseg's runtime: what runs on the Jetson Nano (Python 3.6, numpy, OpenCV, TensorRT).

Sources, backends (TensorRT in edge/tensorrt), rendering, sinks and outputs, the pipeline,
run_camera.py and benchmark.py. It imports the shared core (nanoseg/) and nothing above it:
the Keras backend is registered by name from train/.
"""
