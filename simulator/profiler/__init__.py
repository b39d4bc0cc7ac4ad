"""The profiler: measures real models on this host (CPU, or a CUDA GPU when there is one) and writes device
profiles (schema v1, ``simulator.profiles``).

PyTorch is imported lazily, inside the functions that measure: simulating never needs it.

Python API::

    from simulator.profiler import MeasureSettings, ProfileRequest, profile_models, profile_module

    entry = profile_module(my_module, input_shape=(3, 224, 224), batch_sizes=(1, 2, 4))   # a ModelEntry
    profile = profile_models(ProfileRequest(models=("fmnist-cnn-w32",), batch_sizes=(1, 2, 4)), name="my-cpu")
"""

from simulator.profiler.session import ProfileRequest, profile_models, profile_module
from simulator.profiler.settings import MeasureSettings

__all__ = ["MeasureSettings", "ProfileRequest", "profile_models", "profile_module"]
