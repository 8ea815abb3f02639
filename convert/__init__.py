"""nanoseg conversion: Keras .h5 -> SavedModel -> ONNX (desktop) -> TensorRT engine (Jetson)."""
