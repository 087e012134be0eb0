"""Stand-ins for what unit tests cannot run: OBS's ``obspython`` (:mod:`.obs`)."""
