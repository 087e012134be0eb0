"""End-to-end tests that drive a real OBS Studio under Xvfb (see obs_harness.py)."""
