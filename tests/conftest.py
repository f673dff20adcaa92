"""Suite-wide settings. Under CI, hypothesis explores a fixed set of examples (the same
on every run, so a run can be repeated exactly); locally it explores afresh each time."""

from __future__ import annotations

import os

from hypothesis import settings

settings.register_profile("ci", derandomize=True, database=None)
if os.environ.get("CI"):
    settings.load_profile("ci")
