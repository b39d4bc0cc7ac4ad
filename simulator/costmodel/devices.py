"""The device table: datasheet figures of the devices the cost model derives profiles for.

Peaks are dense (no 2:4 sparsity) and in TFLOP/s: ``fp32`` and ``fp16`` on the general-purpose cores (CUDA
cores; NEON/AVX on a CPU), ``tf32_tensor`` and ``fp16_tensor`` on tensor cores. Where a datasheet gives only sparse
or INT8 figures, the dense FP16 tensor figure is derived from it (sparse = 2 x dense; INT8 = 2 x FP16 on Ampere
tensor cores) and the note says so. Jetson power modes follow NVIDIA's nvpmodel configuration (active GPU TPCs,
GPU and memory clock caps per mode). Memory bandwidth is the DRAM peak in GB/s; ``power_w`` the board/module
power envelope (TDP or power-mode budget).

Which unit runs which kernel (PyTorch defaults): dense convolutions on tensor cores (fp32 as TF32: cuDNN's
``allow_tf32`` is on by default), linear layers on tensor cores in fp16 but on CUDA cores in fp32 (matmul TF32 is off
by default), depthwise convolutions on the general-purpose cores.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from simulator.errors import require
from simulator.policies import is_finite_number

H100_SOURCES = ("NVIDIA H100 Tensor Core GPU datasheet (SXM5: FP32 67, TF32 989*, FP16 1979* TFLOPS, *sparse; "
                "3.35 TB/s; up to 700 W), "
                "https://resources.nvidia.com/en-us-tensor-core/nvidia-tensor-core-gpu-datasheet",
                "NVIDIA Hopper architecture whitepaper, table of H100 SXM5 peak rates (FP16 non-tensor 133.8 TFLOPS), "
                "https://resources.nvidia.com/en-us-tensor-core/gtc22-whitepaper-hopper")
ORIN_BRIEF = ("NVIDIA Jetson AGX Orin Series Technical Brief v1.2: GA10B GPU, 16 SMs x 128 CUDA cores (5.3 FP32 "
              "TFLOPS at 1.3 GHz), 64 tensor cores (170 sparse INT8 TOPS -> 42.5 dense FP16 TFLOPS, i.e. 2048 dense "
              "FP16 FLOP/clock/SM), LPDDR5 256-bit 204.8 GB/s, https://www.nvidia.com/content/dam/en-zz/Solutions/"
              "gtcf21/jetson-orin/nvidia-jetson-agx-orin-technical-brief.pdf")
NVPMODEL = ("NVIDIA nvpmodel configurations (nvpmodel_p3701_0000.conf for AGX Orin, nvpmodel_p3767_0000.conf for "
            "Orin NX 16GB, nvpmodel_p3767_0003.conf for Orin Nano 8GB), as shipped in Jetson Linux; mirrored at "
            "https://github.com/LineageOS/android_device_nvidia_concord/tree/lineage-23.0/nvpmodel")


#: fp32 lanes of the vector registers PyTorch's CPU kernels use, by its CPU capability
#: (``torch.backends.cpu.get_cpu_capability()``, recorded by the profiler since 2026-12-07 as
#: ``device.cpu_capability``): oneDNN's blocked layouts hold a convolution's output channels in blocks of this many.
CHANNEL_BLOCK = {"AVX512": 16, "AVX2": 8}


@dataclass(frozen=True, kw_only=True)
class DeviceSpec:
    """Datasheet figures of one device (or one power mode of it)."""

    name: str
    label: str
    kind: str
    executes: str  # "gpu": host launches kernels asynchronously; "cpu": the host runs them itself
    peak_tflops: dict
    mem_bw_gbs: float
    power_w: float | None
    notes: str = ""
    sources: tuple[str, ...] = field(default=())
    threads: int = 1  # CPUs: the intra-op threads PyTorch runs with (it picks convolution paths by it)
    channel_block: int | None = None  # CPUs: fp32 lanes of oneDNN's channel blocks (`latency.channel_padding`)

    def peak_flops(self, kernel_kind: str, dtype: str) -> float:
        """Peak FLOP/s of the unit that runs a kernel of `kernel_kind` in `dtype` (see the module docstring)."""
        half = dtype in ("fp16", "bf16")
        if kernel_kind == "conv":
            keys = ("fp16_tensor", "fp16", "fp32") if half else ("tf32_tensor", "fp32")
        elif kernel_kind == "matmul":
            keys = ("fp16_tensor", "fp16", "fp32") if half else ("fp32",)
        else:
            keys = ("fp16", "fp32") if half else ("fp32",)
        return 1e12 * next(self.peak_tflops[k] for k in keys if k in self.peak_tflops)

    def to_json(self) -> dict:
        return {"name": self.name, "label": self.label, "kind": self.kind, "executes": self.executes,
                "peak_tflops": dict(self.peak_tflops), "mem_bw_gbs": self.mem_bw_gbs, "power_w": self.power_w,
                "notes": self.notes, "sources": list(self.sources),
                **({"threads": self.threads} if self.executes == "cpu" else {})}


def _orin(name: str, label: str, sms: int, gpu_mhz: float, mem_bw_gbs: float, power_w: float, notes: str,
          sources=(ORIN_BRIEF, NVPMODEL)) -> DeviceSpec:
    """An Orin (GA10B) GPU configuration: per SM and clock, 256 FP32, 512 FP16 (packed half2), 1024 TF32 and 2048
    FP16 tensor FLOP (dense)."""
    ghz_sm = sms * gpu_mhz / 1e3
    return DeviceSpec(name=name, label=label, kind="embedded", executes="gpu",
                      peak_tflops={"fp32": 0.256 * ghz_sm, "fp16": 0.512 * ghz_sm, "tf32_tensor": 1.024 * ghz_sm,
                                   "fp16_tensor": 2.048 * ghz_sm},
                      mem_bw_gbs=mem_bw_gbs, power_w=power_w,
                      notes=f"{sms} SMs at {gpu_mhz:g} MHz. {notes} FP16 on CUDA cores assumed 2x FP32 (packed half2).",
                      sources=sources)


#: Dense peaks (TFLOP/s) of the GH100 at its SXM clocks, which the H100 SXM5 and the H200 SXM share.
GH100_SXM_TFLOPS = {"fp32": 66.9, "fp16": 133.8, "tf32_tensor": 494.7, "fp16_tensor": 989.4}

H200_SOURCES = ("NVIDIA H200 Tensor Core GPU datasheet / product page (SXM: FP32 67, TF32 989*, FP16 1979* TFLOPS, "
                "*sparse; 141 GB HBM3e, 4.8 TB/s; up to 700 W), https://www.nvidia.com/en-us/data-center/h200/",
                H100_SOURCES[1])

DEVICES: dict[str, DeviceSpec] = {d.name: d for d in (
    DeviceSpec(name="h200-sxm", label="NVIDIA H200 SXM 141GB HBM3e", kind="datacenter", executes="gpu",
               peak_tflops=GH100_SXM_TFLOPS,
               mem_bw_gbs=4800.0, power_w=700.0,
               notes="the H100 SXM5's GH100 die and clocks (its whitepaper's FP16 non-tensor rate) with HBM3e; "
                     "dense = half the datasheet's sparse tensor figures. The measured board reported 132 SMs and "
                     "139.8 GB, and its name without 'NVL' (the 600 W PCIe card)",
               sources=H200_SOURCES),
    DeviceSpec(name="h100-sxm", label="NVIDIA H100 SXM5 80GB HBM3", kind="datacenter", executes="gpu",
               peak_tflops=GH100_SXM_TFLOPS,
               mem_bw_gbs=3350.0, power_w=700.0, notes="dense = half the datasheet's sparse tensor figures",
               sources=H100_SOURCES),
    DeviceSpec(name="a100-sxm", label="NVIDIA A100 SXM4 80GB", kind="datacenter", executes="gpu",
               peak_tflops={"fp32": 19.5, "fp16": 78.0, "tf32_tensor": 156.0, "fp16_tensor": 312.0},
               mem_bw_gbs=2039.0, power_w=400.0, notes="dense tensor figures (datasheet gives sparse in addition)",
               sources=("NVIDIA A100 Tensor Core GPU datasheet (FP32 19.5, TF32 156, FP16 312 TFLOPS dense; 80GB SXM "
                        "2,039 GB/s; 400 W), https://www.nvidia.com/content/dam/en-zz/Solutions/Data-Center/a100/pdf/"
                        "nvidia-a100-datasheet-us-nvidia-1758950-r4-web.pdf",
                        "NVIDIA A100 (Ampere) architecture whitepaper: FP16 non-tensor 78 TFLOPS, "
                        "https://images.nvidia.com/aem-dam/en-zz/Solutions/data-center/nvidia-ampere-architecture-"
                        "whitepaper.pdf")),
    DeviceSpec(name="l4", label="NVIDIA L4 24GB", kind="datacenter", executes="gpu",
               peak_tflops={"fp32": 30.3, "fp16": 30.3, "tf32_tensor": 60.0, "fp16_tensor": 121.0},
               mem_bw_gbs=300.0, power_w=72.0,
               notes="dense = half the datasheet's sparse TF32 120 / FP16 242; Ada FP16 on CUDA cores = FP32 rate",
               sources=("NVIDIA L4 Tensor Core GPU datasheet (FP32 30.3, TF32 120*, FP16 242* TFLOPS, *sparse; "
                        "300 GB/s; 72 W), https://resources.nvidia.com/en-us-data-center-overview/l4-gpu-datasheet",)),
    DeviceSpec(name="t4", label="NVIDIA T4 16GB", kind="datacenter", executes="gpu",
               peak_tflops={"fp32": 8.1, "fp16": 16.2, "fp16_tensor": 65.0},
               mem_bw_gbs=320.0, power_w=70.0,
               notes="Turing: no TF32 (fp32 convolutions on CUDA cores); FP16 on CUDA cores 2x FP32",
               sources=("NVIDIA T4 datasheet (FP32 8.1, mixed FP16/FP32 tensor 65 TFLOPS; 320 GB/s; 70 W), "
                        "https://www.nvidia.com/content/dam/en-zz/Solutions/Data-Center/tesla-t4/"
                        "t4-tensor-core-datasheet-951643.pdf",)),
    _orin("agx-orin-15w", "NVIDIA Jetson AGX Orin 64GB, 15 W mode", 6, 408.0, 136.5, 15.0,
          "nvpmodel MODE_15W: 3 of 8 TPCs, GPU cap 408 MHz, memory clock cap 2133 MHz (204.8 x 2133/3200 GB/s)."),
    _orin("agx-orin-30w", "NVIDIA Jetson AGX Orin 64GB, 30 W mode", 8, 612.0, 204.8, 30.0,
          "nvpmodel MODE_30W: 4 of 8 TPCs, GPU cap 612 MHz, memory uncapped."),
    _orin("agx-orin-50w", "NVIDIA Jetson AGX Orin 64GB, 50 W mode", 16, 816.0, 204.8, 50.0,
          "nvpmodel MODE_50W: 8 of 8 TPCs, GPU cap 816 MHz, memory uncapped."),
    _orin("agx-orin-maxn", "NVIDIA Jetson AGX Orin 64GB, MAXN", 16, 1300.0, 204.8, 60.0,
          "nvpmodel MAXN: all TPCs, GPU at its 1.3 GHz maximum; 60 W is the module's maximum power (technical "
          "brief). MLPerf Inference edge results are submitted in this mode."),
    _orin("orin-nx-16gb", "NVIDIA Jetson Orin NX 16GB, MAXN", 8, 918.0, 102.4, 25.0,
          "nvpmodel MAXN: 4 TPCs (1024 CUDA cores, 32 tensor cores), GPU max 918 MHz; LPDDR5 128-bit 102.4 GB/s; "
          "10-25 W module (datasheet).",
          sources=("NVIDIA Jetson Orin NX Series datasheet (1024 CUDA cores, 32 tensor cores, GPU max 918 MHz, "
                   "102.4 GB/s, 10-25 W), https://developer.nvidia.com/embedded/downloads#?search=Jetson%20Orin%20NX",
                   NVPMODEL, ORIN_BRIEF + " (the same GA10B SM: its per-SM, per-clock rates)")),
    _orin("orin-nano-8gb", "NVIDIA Jetson Orin Nano 8GB, 15 W", 8, 625.0, 68.0, 15.0,
          "1024 CUDA cores, 32 tensor cores, GPU max 625 MHz, LPDDR5 68 GB/s, 7-15 W (original, not the 'Super' "
          "firmware: 1020 MHz, 102 GB/s, 25 W).",
          sources=("NVIDIA Jetson Orin Nano Series datasheet (1024 CUDA cores, 32 tensor cores, 625 MHz, 68 GB/s, "
                   "7-15 W; 40 sparse INT8 TOPS = 4 x 10.2 dense FP16 TFLOPS), "
                   "https://developer.nvidia.com/embedded/downloads#?search=Jetson%20Orin%20Nano", NVPMODEL,
                   ORIN_BRIEF + " (the same GA10B SM: its per-SM, per-clock rates)")),
    DeviceSpec(name="jetson-nano", label="NVIDIA Jetson Nano 4GB, 10 W (MAXN)", kind="embedded", executes="gpu",
               peak_tflops={"fp32": 0.236, "fp16": 0.472}, mem_bw_gbs=25.6, power_w=10.0,
               notes="Maxwell, 128 CUDA cores at 921.6 MHz, no tensor cores; LPDDR4 64-bit 25.6 GB/s; 5/10 W modes",
               sources=("NVIDIA Jetson Nano module datasheet / developer page (128-core Maxwell, 472 GFLOPS FP16, "
                        "25.6 GB/s, 5 W/10 W), https://developer.nvidia.com/embedded/jetson-nano",)),
    DeviceSpec(name="rpi5", label="Raspberry Pi 5 (BCM2712, 4x Cortex-A76 at 2.4 GHz)", kind="embedded",
               executes="cpu", peak_tflops={"fp32": 0.1536, "fp16": 0.3072}, mem_bw_gbs=17.1, power_w=None, threads=4,
               notes="peak = 4 cores x 2.4 GHz x 2 NEON 128-bit FMA pipes (16 FP32 FLOP/clock/core; FP16 2x); "
                     "LPDDR4X-4267 on a 32-bit bus = 17.1 GB/s. No sourced power envelope: energy not derived.",
               sources=("Raspberry Pi 5 product brief (BCM2712, quad Cortex-A76 at 2.4 GHz, LPDDR4X-4267), "
                        "https://datasheets.raspberrypi.com/rpi5/raspberry-pi-5-product-brief.pdf",
                        "Arm Cortex-A76 Software Optimization Guide (two 128-bit ASIMD/FP pipelines, FMA on both), "
                        "https://developer.arm.com/documentation/pjdoc466751330-7215/latest/")),
)}


def device_spec(name: str) -> DeviceSpec:
    """The device table entry `name`; FlexsimError listing the known ones."""
    require(name in DEVICES, f"unknown device {name!r} (known: {', '.join(DEVICES)})")
    return DEVICES[name]


def _positive(x) -> bool:
    """A finite number > 0 (`policies.is_finite_number`: not a bool, nor an int beyond the float range)."""
    return is_finite_number(x) and x > 0


def measured_cpu_spec(profile) -> DeviceSpec:
    """A device spec for a measured CPU profile, from the attainable peaks its profiler measured (no datasheet)."""
    peaks = profile.device.get("measured_peaks")
    require(isinstance(peaks, dict) and "peak_gflops" in peaks and "mem_bw_gbs" in peaks,
            f"profile {profile.name}: device.measured_peaks is missing (re-measure it with flexsim profile)")
    gflops, bandwidth = peaks["peak_gflops"], peaks["mem_bw_gbs"]
    require(isinstance(gflops, dict) and gflops and all(isinstance(d, str) and _positive(g) for d, g in gflops.items()),
            f"profile {profile.name}: device.measured_peaks.peak_gflops = {gflops!r:.80} must map dtypes to numbers "
            "> 0")
    require(_positive(bandwidth), f"profile {profile.name}: device.measured_peaks.mem_bw_gbs = {bandwidth!r:.40} must "
            "be a number > 0")
    return DeviceSpec(name=profile.name, label=profile.device.get("name", profile.name), kind=profile.kind,
                      executes="cpu", peak_tflops={d: g / 1e3 for d, g in peaks["peak_gflops"].items()},
                      mem_bw_gbs=float(peaks["mem_bw_gbs"]), power_w=None,
                      notes=f"attainable peaks measured on the host: {peaks.get('method', '')}",
                      sources=(f"profile {profile.name} (measured)",), threads=int(profile.device.get("threads", 1)),
                      channel_block=CHANNEL_BLOCK.get(profile.device.get("cpu_capability")))
