"""flexsim: a hardware-aware simulator of flexible DNN inference.

The public API::

    from simulator import simulate, sweep, RunConfig, prepare, run_inputs
    from simulator import load_cache, load_profile, policies

`simulate` runs a configuration end to end, `sweep` every combination of some fields' values; `prepare` builds the
arrays both engines consume and `run_inputs` runs them on the Numba engine or the SimPy reference engine.
"""

from simulator import policies
from simulator.config import RunConfig
from simulator.errors import FlexsimError
from simulator.logits import LogitCache, load_cache
from simulator.profiles import Profile, load_profile
from simulator.run import prepare, run_inputs, simulate
from simulator.sweep import sweep

__all__ = ["simulate", "sweep", "prepare", "run_inputs", "RunConfig", "FlexsimError", "LogitCache", "load_cache",
           "Profile", "load_profile", "policies"]
__version__ = "0.1.0"
