"""Jetson set-up scripts and the platform check (run as scripts: python3 jetson/check_platform.py)."""
