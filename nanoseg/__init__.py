"""nanoseg: the shared core every layer imports (Python 3.6, numpy + OpenCV only).

The contract and preprocessing, the bundle, dataset readers, metrics, parity checks,
timing, errors and the command-line helpers. Nothing here imports edge/, train/, convert/
or tools/; nothing here acts on import.
"""
