"""edge/benchmark.py's jobs: the host-only stand-in backend (standin.py), timing each host
stage (stages.py), the runtime loops with their sinks and a local viewer client (loops.py,
stream_client.py), the goals the host path is judged by (goals.py) and the scenarios that
make the table (scenarios.py). numpy + OpenCV: runs on the Jetson too (Python 3.6).
"""
