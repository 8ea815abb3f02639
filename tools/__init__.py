"""Tools above every layer: synthetic data, backbone comparison, the input-pipeline benchmark."""
