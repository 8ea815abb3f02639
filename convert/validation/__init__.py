"""convert/validate.py's jobs: measuring one format (measure.py), the reference and the
gate (reference.py), the whole validation of a bundle (run.py), the reports (report.py).

Python 3.6 (it runs on the Jetson); TensorFlow, onnxruntime and tensorrt are imported only
when a format needs them (through edge.backends' table).
"""
