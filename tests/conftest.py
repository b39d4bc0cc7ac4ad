"""Shared test settings: Hypothesis profiles (CI runs the default; FLEXSIM_HYPOTHESIS=thorough for more)."""

import os

from hypothesis import HealthCheck, settings

settings.register_profile("default", deadline=None, max_examples=60,
                          suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
settings.register_profile("thorough", deadline=None, max_examples=1000,
                          suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
settings.load_profile(os.environ.get("FLEXSIM_HYPOTHESIS", "default"))
