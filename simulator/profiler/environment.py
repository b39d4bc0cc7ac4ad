"""Facts about the host and the device being measured: names, core counts, software versions."""

from __future__ import annotations

import os
import platform
from pathlib import Path

import numpy as np


def cpuinfo_field(field: str, cpuinfo: Path = Path("/proc/cpuinfo")) -> str | None:
    """The first value of `field` in ``/proc/cpuinfo`` (None where absent)."""
    try:
        for line in cpuinfo.read_text().splitlines():
            key, _, value = line.partition(":")
            if key.strip().lower() == field:
                return value.strip()
    except OSError:
        pass        # no /proc/cpuinfo (not Linux): the field is unknown
    return None


def cpu_model_name() -> str:
    """The CPU's model name (``/proc/cpuinfo``), else what `platform` says."""
    return cpuinfo_field("model name") or platform.processor() or platform.machine()


def host_facts() -> dict:
    """CPU, logical cores, operating system and Python of this host."""
    return {"cpu": cpu_model_name(), "logical_cores": os.cpu_count(), "os": platform.platform(),
            "python": platform.python_version()}


def software_versions(torch) -> dict:
    """Versions of the software that ran the models."""
    versions = {"torch": torch.__version__, "numpy": np.__version__, "python": platform.python_version()}
    if torch.version.cuda:
        versions["cuda"] = torch.version.cuda
    if torch.backends.cudnn.is_available():
        versions["cudnn"] = torch.backends.cudnn.version()
    try:
        import torchvision
        versions["torchvision"] = torchvision.__version__
    except Exception:  # noqa: BLE001 -- absent or built against another torch
        pass
    return versions


def device_facts(torch, device: str, kind: str | None, threads: int) -> dict:
    """Name and kind of the measured device (kind: cpu for the CPU; datacenter unless told for a GPU)."""
    if device == "cpu":
        return {"name": cpu_model_name(), "kind": kind or "cpu", "threads": threads,
                "logical_cores": os.cpu_count(), "machine": platform.machine(),
                "cpu_family": cpuinfo_field("cpu family"), "cpu_model": cpuinfo_field("model"),
                "cpu_capability": cpu_capability(torch)}
    props = torch.cuda.get_device_properties(device)
    return {"name": props.name, "kind": kind or "datacenter", "memory_gb": round(props.total_memory / 2**30, 1),
            "multiprocessors": props.multi_processor_count, "compute_capability": f"{props.major}.{props.minor}",
            "host_cpu": cpu_model_name()}


def cpu_capability(torch) -> str | None:
    """The vector instruction set PyTorch's CPU kernels run with here (``AVX512``, ``AVX2``, ``DEFAULT``, ...), or
    None where this PyTorch cannot say: the cost model sizes oneDNN's channel blocks by it
    (`simulator.costmodel.devices.CHANNEL_BLOCK`)."""
    get = getattr(getattr(torch.backends, "cpu", None), "get_cpu_capability", None)
    return None if get is None else str(get())


def default_profile_name(device: dict) -> str:
    """A file-friendly profile name, e.g. ``cpu-amd-epyc-2c`` or ``nvidia-h100-80gb-hbm3``."""
    words = "".join(c if c.isalnum() else "-" for c in device["name"].lower()).split("-")
    stem = "-".join(w for w in words if w and w not in ("r", "tm", "processor", "cpu", "core"))
    if device["kind"] == "cpu":
        return f"cpu-{stem}-{device['logical_cores']}c"
    return stem
