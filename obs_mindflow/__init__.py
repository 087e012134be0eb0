"""MindFlow for OBS: watches the streamer's own face and reports, live and afterwards, how the session went
emotionally. Self-monitoring, not a diagnosis; everything stays on the streamer's machine."""

__version__ = "0.1.0"
