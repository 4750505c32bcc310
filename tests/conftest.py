"""Settings for every test folder."""

from __future__ import annotations

from hypothesis import settings

# CI shares 2 cores: time limits per example would fail slow runs, not wrong code.
# Property tests still bound their work with max_examples.
settings.register_profile("airlock", deadline=None, print_blob=True)
settings.load_profile("airlock")
