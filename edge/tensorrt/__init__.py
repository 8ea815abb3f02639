"""TensorRT on the Jetson: version differences (compat), the engine runner, the engine cache,
the backend.

tensorrt and pycuda are imported only inside functions, so this package imports anywhere.
"""
