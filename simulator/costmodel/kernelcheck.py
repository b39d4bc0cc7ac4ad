"""Kernel times measured inside real forward passes (`simulator.costmodel.kerneltimes`) against the cost model's
kernels: which kinds of kernels the model gets wrong on a device, where its calls do not say.

The cost model's parameters are fitted on every point of a measured profile of the same device (in-sample: this
diagnoses the model's form, not its leave-one-architecture-out accuracy), and each kernel of each measured call is
predicted as the model costs it: its roofline time plus the fixed cost per kernel (``kernel_ms``), plus on a CPU
the host's cost of the kernel (``launch_*_ms``; a CPU runs its kernels itself, and the hook times them whole).
Reported per operator: the measured and predicted totals and the spread of per-kernel ratios; per call: what the
call costs beyond its kernels, measured and predicted. NumPy only (reading a file, fitting, pricing).
"""

from __future__ import annotations

from collections import defaultdict

import numpy as np

from simulator.costmodel.layers import DTYPE_BYTES, KINDS, known_tables, load_table
from simulator.costmodel.points import untabled_models, untabled_note
from simulator.errors import FlexsimError, malformed, require

SCHEMA = "flexsim-kernel-times/1"
#: A kernel predicted within this factor of its measured time counts as close (per-kernel times vary more than
#: whole calls: a kernel of a few microseconds is timed to a microsecond).
CLOSE = 0.25
#: Times from a kernel-times file are refused from here on (a day; their sums must stay finite).
MAX_MS = 8.64e7


def read_kernel_times(path) -> dict:
    """A kernel-times file (``flexsim costmodel kernel-times``), checked: every entry a committed model's table at
    its batch size (or a user's model's table given with `simulator.costmodel.layers.given_tables`, traced on the
    input the entry records), one finite time >= 0 per kernel; FlexsimError naming the file and what is wrong."""
    from simulator.io import read_json

    obj, where = read_json(path, "kernel times"), f"kernel times {path}"
    require(isinstance(obj, dict) and obj.get("schema") == SCHEMA, f"{where}: not a kernel-times file (schema "
            f"{SCHEMA!r} expected: the output of flexsim costmodel kernel-times)")
    try:
        require(isinstance(obj["device"], dict) and isinstance(obj["device"]["name"], str),
                f"{where}: device.name must be a string")
        entries = obj["entries"]
        require(isinstance(entries, list) and entries, f"{where}: entries must be a non-empty list")
        return {**obj, "entries": [_checked_entry(e, f"{where}, entry {i}") for i, e in enumerate(entries)]}
    except (KeyError, TypeError, ValueError, AttributeError) as exc:
        raise malformed(where, exc) from None


def _checked_entry(entry: dict, where: str) -> dict:
    from simulator.policies import is_finite_number
    from simulator.profiler.session import MAX_BATCH

    require(isinstance(entry, dict), f"{where}: an object expected")
    model, dtype, batch = entry["model"], entry["dtype"], entry["batch"]
    require(isinstance(model, str), f"{where}: model must be a string")
    require(model in known_tables(), f"{where}: no layer table for model {model!r} (have: {', '.join(known_tables())}"
            "; a model of yours: give its table, --table)")
    require(isinstance(dtype, str) and dtype in DTYPE_BYTES, f"{where}: dtype {dtype!r} must be one of "
            f"{', '.join(DTYPE_BYTES)}")
    require(isinstance(batch, int) and not isinstance(batch, bool) and 1 <= batch <= MAX_BATCH,
            f"{where}: batch must be an integer from 1 to {MAX_BATCH}")
    full = load_table(model)
    _check_input(entry, full, where)
    table = full.at(batch)
    for field in ("kernel_ms", "call_ms"):
        values = entry[field] if field == "kernel_ms" else [entry[field]]
        require(isinstance(values, list) and all(is_finite_number(v) and 0 <= v < MAX_MS for v in values),
                f"{where}: {field} must hold times from 0 to {MAX_MS:g} ms")
    require(len(entry["kernel_ms"]) == table.n_kernels, f"{where}: {len(entry['kernel_ms'])} kernel times for "
            f"{model}, whose layer table has {table.n_kernels} kernels at batch {batch}")
    # the timed kernels' names as recorded: one per time, not compared with the table's (they differ by device)
    ops = entry.get("ops", [""] * table.n_kernels)
    require(isinstance(ops, list) and len(ops) == table.n_kernels and all(isinstance(o, str) for o in ops),
            f"{where}: ops must name each of the {table.n_kernels} kernels timed")
    return {**entry, "kernel_ms": np.asarray(entry["kernel_ms"], dtype=float), "call_ms": float(entry["call_ms"])}


def _check_input(entry: dict, table, where: str) -> None:
    """FlexsimError unless a user's model's entry was measured on the input its given table was traced on (the
    entry's ``input_shape`` and ``input_tokens``, which kernel-times records for users' models only)."""
    from simulator.models.user import input_words

    if "input_shape" not in entry and "input_tokens" not in entry:
        return
    shape, tokens = entry.get("input_shape"), entry.get("input_tokens")
    require(isinstance(shape, list) and all(isinstance(n, int) and not isinstance(n, bool) for n in shape)
            and (tokens is None or isinstance(tokens, int) and not isinstance(tokens, bool)),
            f"{where}: input_shape must be a list of integers and input_tokens an integer")
    require((shape, tokens) == (list(table.input_shape), table.input_tokens), f"{where}: {entry['model']} was "
            f"measured on {input_words(shape, tokens)}, its layer table traced on "
            f"{input_words(table.input_shape, table.input_tokens)}: trace it on the input it was measured on")


def joined(files: list[dict]) -> dict:
    """Several kernel-times files (`read_kernel_times`) of one device as one: their entries end to end; FlexsimError
    for files of different devices or a call (model, dtype, batch size) measured twice."""
    for other in files[1:]:
        differ = _identity_differs(files[0]["device"], other["device"])
        require(not differ, f"kernel times of different devices ({differ}): give one device's")
    entries = [e for f in files for e in f["entries"]]
    calls = [(e["model"], e["dtype"], e["batch"]) for e in entries]
    twice = next((c for i, c in enumerate(calls) if c in calls[:i]), None)
    require(twice is None, f"kernel times: {twice} is measured twice (give each call once)")
    return {**files[0], "entries": entries}


def _identity_differs(one: dict, other: dict) -> str | None:
    """The first fact naming a device on which two device records differ, as ``key: a / b`` (None where none does):
    its name, then the facts both record that a profile update compares
    (`simulator.profiler.session.identity_differences`: two CPUs may share a name)."""
    from simulator.profiler.session import identity_differences

    differ = (["name"] if one.get("name") != other.get("name") else []) + identity_differences(one, other)
    return f"{differ[0]}: {one.get(differ[0])!r} / {other.get(differ[0])!r}" if differ else None


def kernel_comparison(times: dict, profile) -> dict:
    """Each measured kernel of `times` (`read_kernel_times`) beside the cost model's time for it, with parameters
    fitted on every point of `profile` (a measured profile of the same device): ``kernels`` (per kernel: model,
    dtype, batch, op, kind, measured and predicted ms) and ``calls`` (per entry: measured call and kernel sum,
    predicted call and kernel sum, ms)."""
    from simulator.costmodel.derive import fitted_reference, reference_spec
    from simulator.costmodel.latency import call_work, launch_ms, work_latency_ms, work_roofline_ms

    device = profile.device.get("name")
    differ = _identity_differs(times["device"], profile.device)
    require(not differ, f"kernel times measured on another device than profile {profile.name}'s ({differ}): "
            f"compare a device's kernels with its own profile ({_own_profiles(times['device'])})")
    spec = reference_spec(profile)
    params = fitted_reference(profile, spec)[0]
    kernels, calls = [], []
    for e in times["entries"]:
        table = load_table(e["model"]).at(e["batch"])
        work = call_work(table, e["batch"], e["dtype"], "eager", spec)
        predicted = work_roofline_ms(work, params) + params.kernel_ms
        if work.on_cpu:
            predicted = predicted + launch_ms(work.kind, params, work.native)
        kernels += [{"model": e["model"], "dtype": e["dtype"], "batch": e["batch"], "op": op, "kind": KINDS[k],
                     "measured_ms": float(m), "predicted_ms": float(p)}
                    for op, k, m, p in zip(table.op, table.kind, e["kernel_ms"], predicted)]
        calls.append({"model": e["model"], "dtype": e["dtype"], "batch": e["batch"], "measured_ms": e["call_ms"],
                      "measured_kernels_ms": float(e["kernel_ms"].sum()),
                      "predicted_ms": float(work_latency_ms(work, params)[0]),
                      "predicted_kernels_ms": float(predicted.sum())})
    return {"profile": profile.name, "device": device, "params": params.to_json(), "kernels": kernels,
            "calls": calls, "untabled": untabled_models(profile)}


def _own_profiles(device: dict) -> str:
    """Where to find a profile of `device`: the shipped measured profiles of the same device, or how to make one."""
    from simulator.profiles import load_profile, shipped_profiles

    same = []
    for name in shipped_profiles():
        try:
            profile = load_profile(name)
        except FlexsimError:
            continue                                     # a broken shipped file is another command's error
        if profile.provenance.get("source") == "measured" and not _identity_differs(device, profile.device):
            same.append(name)
    return (f"shipped for this device: {', '.join(same)}" if same else
            "none is shipped for this device: measure one with flexsim profile")


def by_operator(kernels: list[dict]) -> dict:
    """Per operator and kind (``convolution (dwconv)``): kernels, measured and predicted totals (ms), the median
    of per-kernel ratios predicted / measured and the share of kernels within `CLOSE` of their time."""
    groups = defaultdict(list)
    for k in kernels:
        groups[f"{k['op']} ({k['kind']})"].append(k)
    out = {}
    for name, ks in sorted(groups.items(), key=lambda g: -sum(k["measured_ms"] for k in g[1])):
        measured = np.array([k["measured_ms"] for k in ks])
        predicted = np.array([k["predicted_ms"] for k in ks])
        ratio = predicted / np.maximum(measured, 1e-9)
        out[name] = {"n": len(ks), "measured_ms": float(measured.sum()), "predicted_ms": float(predicted.sum()),
                     "median_ratio": float(np.median(ratio)),
                     "close": float(np.mean(np.abs(ratio - 1) <= CLOSE))}
    return out


def markdown(comparison: dict, path: str) -> str:
    """The comparison as Markdown: per operator, then per call."""
    left_out = comparison.get("untabled")
    lines = [f"Kernel times ({path}) against the cost model fitted on every point of profile "
             f"`{comparison['profile']}` ({comparison['device']}; in-sample, a check of the model's form). A kernel "
             f"is close when predicted within ±{CLOSE:.0%} of its measured time.", "",
             *([untabled_note(left_out, "Left out of the fit"), ""] if left_out else []),
             "| operator (kind) | kernels | measured ms | predicted ms | predicted / measured | median per-kernel "
             "ratio | close |", "|---|---|---|---|---|---|---|"]
    for name, s in by_operator(comparison["kernels"]).items():
        lines.append(f"| {name} | {s['n']} | {s['measured_ms']:.3f} | {s['predicted_ms']:.3f} | "
                     f"{s['predicted_ms'] / max(s['measured_ms'], 1e-9):.2f} | {s['median_ratio']:.2f} | "
                     f"{s['close']:.0%} |")
    lines += ["", "| model | dtype | batch | call ms: measured / predicted | kernels ms: measured / predicted | "
              "beyond the kernels ms: measured / predicted |", "|---|---|---|---|---|---|"]
    for c in comparison["calls"]:
        lines.append(f"| {c['model']} | {c['dtype']} | {c['batch']} | {c['measured_ms']:.3f} / "
                     f"{c['predicted_ms']:.3f} | {c['measured_kernels_ms']:.3f} / {c['predicted_kernels_ms']:.3f} | "
                     f"{c['measured_ms'] - c['measured_kernels_ms']:.3f} / "
                     f"{c['predicted_ms'] - c['predicted_kernels_ms']:.3f} |")
    return "\n".join(lines) + "\n"

