"""A CPU's element-wise kernels at their measured time per element.

The roofline costs an element-wise kernel (kind ``other``) by the bytes it moves, at one bandwidth for all of them.
On a CPU the operators differ far more than their bytes: timed inside real forward passes on this project's Zen 4
host (`simulator.costmodel.kerneltimes`, docs/cost-model.md, "Kernel times inside real models"), batch norm takes
~0.26 ns per element, SiLU ~0.42, an in-place ReLU ~0.10, the same bytes each; the fit priced SiLU, batch norm and
the squeeze-and-excitation means at a third to a half of their time and loaded the difference onto the depthwise
convolutions, which only the networks running those operators have.

So each family of `ELEMENTWISE_FAMILIES` has a rate measured on the device, on synthetic configurations that belong
to no architecture (as the linear layers' rates are, `simulator.costmodel.linear`): the median time per element of
the family's configurations of more than `BIG_ELEMENTS` elements in the device's microbenchmark table (``flexsim
costmodel microbench``, `simulator.costmodel.kernelbench`; about a hundred configurations per family, of 1 to 2048
channels and 1 to 224 pixels a side). A kernel of a rated family then costs at least its largest operand's
elements times the rate (`kernel_elementwise_ns`: the larger of that and its bytes' time, in
`simulator.costmodel.latency`); other kernels, GPUs and CPUs without a microbenchmark table are costed as before.
(A single probe per family, timed by the profiler on one synthetic tensor, was tried first and dropped before any
check: on this host it gave batch norm 0.16 ns per element against the table's 0.25 and the kernels' 0.26 inside
the architectures, and AlexNet's and VGG-16's adaptive pooling keeps its 7x7 input size, a path far slower per
element than the global pooling it probed.)
"""

from __future__ import annotations

import numpy as np


#: The element-wise operators of the built-in architectures, named as the microbenchmark families
#: (`simulator.costmodel.kernels.FAMILIES`); max pooling has its own cost (`latency.pool_window_elems`).
ELEMENTWISE_FAMILIES = ("batch_norm", "relu", "relu_", "hardswish_", "silu_", "sigmoid", "hardsigmoid", "add_",
                        "mul", "mean", "adaptive_avg_pool2d")
#: A microbenchmark configuration counts towards its family's rate from this many elements (smaller ones are
#: mostly their fixed cost, which the cost model has apart: ``kernel_ms + launch_other_ms``).
BIG_ELEMENTS = 1e5


def table_rates(kernel_table) -> dict:
    """ns per element of each family of a microbenchmark table: the median over its configurations of more than
    `BIG_ELEMENTS` elements (batch x channels x height x width of the input)."""
    rates = {}
    for family in ELEMENTWISE_FAMILIES:
        if family not in kernel_table.configs:
            continue
        configs, batch = kernel_table.configs[family], kernel_table.batch[family]
        elements = batch * configs[:, 0] * configs[:, 1] ** 2
        big = elements > BIG_ELEMENTS
        if big.any():
            rates[family] = float(np.median(kernel_table.latency_ms[family][big] * 1e6 / elements[big]))
    return rates


def measured_elementwise_rates(profile, kernels_path=None) -> tuple[dict | None, str]:
    """The element-wise rates (ns per element, by family) of a measured CPU profile and where they come from: the
    microbenchmark table at `kernels_path`, else the profile's committed table; ``(None, why)`` for a GPU or a CPU
    without one."""
    from simulator.costmodel.kernels import load_kernel_table_file, profile_kernel_table

    if profile.kind != "cpu":
        return None, "not a CPU"
    path = profile_kernel_table(profile.name, kernels_path)
    if path is None:
        return None, "no microbenchmark table: costed by bytes"
    return table_rates(load_kernel_table_file(path)), f"the element-wise families of {path.name}"


def kernel_elementwise_ns(table, rates: dict | None) -> np.ndarray:
    """Per sample, ns of each kernel of a rated family at its rate: the elements of its largest operand (inputs and
    output; global pooling and means read far more than they write) times the rate; 0 for other kernels, without
    rates, and for a table without shapes."""
    from simulator.costmodel.kernels import op_family

    if not rates or table.shapes is None:
        return np.zeros(table.n_kernels)
    rate = np.array([rates.get(op_family(op), 0.0) for op in table.op])
    largest = np.maximum.reduce([table.in_elems, table.in2_elems, table.out_elems])
    return np.where(table.kind_mask("other"), rate * largest, 0.0)


def scaled_rates(rates: dict | None, reference_spec, target_spec) -> dict | None:
    """A reference CPU's rates carried to a derived CPU: times the reference's FP32 peak over the target's (an
    element-wise operator's time per element is taken to scale with the host's arithmetic rate, threads included,
    as its other compute does; an assumption, as the efficiencies' carrying over is)."""
    if not rates or target_spec.executes != "cpu":
        return None
    ratio = reference_spec.peak_flops("other", "fp32") / target_spec.peak_flops("other", "fp32")
    return {f: r * ratio for f, r in rates.items()}
