"""The cost model's accuracy report: leave-one-architecture-out on every measured profile, and the comparison of
derived embedded latencies with published MLPerf Inference results. Rendered as Markdown."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from simulator.costmodel.accuracy import (accuracy_report, leave_one_architecture_out,
                                          leave_one_architecture_out_kernels, summarise)
from simulator.costmodel.derive import derive_profile, reference_spec
from simulator.costmodel.devices import device_spec
from simulator.costmodel.kernels import KernelPredictor, cross_validate, has_kernel_table, load_kernel_table
from simulator.costmodel.linear import measured_linear_params
from simulator.costmodel.points import (POINT_QUANTILE, point_statistics, profile_points, untabled_models,
                                        untabled_note)
from simulator.errors import require
from simulator.profiles import PROFILES_DIR, load_profile

#: ResNet-50 SingleStream 90th-percentile latency (ms), MLPerf Inference v3.1 edge, closed division, NVIDIA's
#: submissions (TensorRT, INT8, MAXN power mode), https://mlcommons.org/benchmarks/inference-edge/ (v3.1 results).
MLPERF_RESNET50_P90_MS = {"agx-orin-maxn": 0.64, "orin-nx-16gb": 1.08}


def profile_accuracy(profile, kernels_path=None) -> dict:
    """Leave-one-architecture-out summary of one measured profile, with its noise indicators: batch doublings
    that got faster, and the agreement with a re-measurement where one is committed (`repeatability`). A CPU's
    linear-layer rates come from its own measurements (`linear.measured_linear_params`; `kernels_path`: a
    microbenchmark table of the same device, for a profile without linear probes or a table of its own)."""
    points, spec = profile_points(profile), reference_spec(profile)
    archs = sorted({p.arch for p in points})
    require(len(archs) >= 2, f"accuracy: profile {profile.name} measured {len(archs)} model(s) with a layer table "
            f"({', '.join(archs) or 'none'}); leaving one out needs two or more (measure built-in models beside "
            "yours, and give your models' tables with --table)")
    linear, linear_source = measured_linear_params(profile, spec, kernels_path)
    predictions = leave_one_architecture_out(points, spec, fixed=linear)
    out = {"profile": profile.name, "device": profile.device.get("name"), **accuracy_report(predictions),
           "linear_rates": {"source": linear_source, **(linear or {})},
           "batch_doubling_drops": batch_doubling_drops(points), "predictions": predictions,
           "untabled": untabled_models(profile)}
    retest = retest_path(profile.name)
    if retest.exists():
        out["repeatability"] = {**repeatability(profile, load_profile(retest)),
                                "retest_file": retest.relative_to(PROFILES_DIR.parent).as_posix()}
    if profile.kind == "cpu" and has_kernel_table(profile.name):
        out["kernel_model"] = kernel_model_accuracy(profile.name, points)
    return out


def kernel_model_accuracy(profile_name: str, points) -> dict:
    """Leave-one-architecture-out summary of the kernel model of a measured CPU profile, with the predictor's
    leave-one-configuration-out accuracy on its own microbenchmark table."""
    table = load_kernel_table(profile_name)
    predictions = leave_one_architecture_out_kernels(points, KernelPredictor(table))
    errors = cross_validate(table)
    return {**accuracy_report(predictions), "predictions": predictions, "n_measurements": table.n_measurements,
            "configurations": table.provenance.get("configurations"), "measure_s": table.provenance.get("measure_s"),
            "kernels_cross_validated": summarise(np.concatenate(list(errors.values()))),
            "kernels_cross_validated_by_family": {f: summarise(e) for f, e in sorted(errors.items())}}


def retest_path(profile_name: str) -> Path:
    """Where a re-measurement of a shipped profile is committed (``profiles/raw/<name>-retest.json``)."""
    return PROFILES_DIR / "raw" / f"{profile_name}-retest.json"


def repeatability(profile, retest) -> dict:
    """How well two measurements of the same configurations agree: per statistic (the median and the points'
    quantile, `points.POINT_QUANTILE`), `summarise` of ``retest / profile - 1`` over every (model, batch) both
    measured. No model can be checked against measurements more finely than they repeat."""
    pairs = [(point_statistics(entry), point_statistics(retest.models[name].batches[batch]))
             for name, model in profile.models.items() if name in retest.models
             for batch, entry in model.batches.items() if batch in retest.models[name].batches]
    require(pairs, f"repeatability: {retest.name} re-measured none of {profile.name}'s (model, batch) entries")
    first, again = np.array([p[0] for p in pairs]), np.array([p[1] for p in pairs])
    return {"retest": retest.name, "date": retest.provenance.get("date"),
            "median": summarise(again[:, 1] / first[:, 1] - 1), "point": summarise(again[:, 0] / first[:, 0] - 1)}


def batch_doubling_drops(points) -> dict:
    """How often the measured latency fell by more than 10% when the batch size doubled (same architecture, dtype
    and mode): more work taking less time is measurement noise, a floor under any model's error."""
    latency = {(p.arch, p.dtype, p.mode, p.batch): p.latency_ms for p in points}
    pairs = [(v, latency[k[:3] + (2 * k[3],)]) for k, v in latency.items() if k[:3] + (2 * k[3],) in latency]
    drops = sum(after < 0.9 * before for before, after in pairs)
    return {"pairs": len(pairs), "drops_over_10pct": int(drops)}


def mlperf_comparison(reference) -> list[dict]:
    """Derived ResNet-50 batch-1 latency (fp16, CUDA graph and eager) against MLPerf's SingleStream p90."""
    rows = []
    for device, mlperf_ms in MLPERF_RESNET50_P90_MS.items():
        derived = derive_profile(device, device_spec(device), reference, batch_sizes=(1,), models=("resnet50",))
        for mode in ("graph", "eager"):
            q = derived.entry(f"resnet50-fp16-{mode}", 1).latency
            p90 = float(q.icdf_ms(np.array([0.9]))[0])
            rows.append({"device": device, "mode": mode, "derived_p90_ms": p90, "mlperf_p90_ms": mlperf_ms,
                         "ratio": p90 / mlperf_ms})
    return rows


def _pct(x: float) -> str:
    return f"{100 * x:.0f}%"


def _summary_row(label: str, s: dict) -> str:
    if not s.get("n"):
        return f"| {label} | 0 | - | - | - |"
    return (f"| {label} | {s['n']} | {_pct(s['within_10pct'])} | {_pct(s['median_abs_error'])} | "
            f"{_pct(s['p90_abs_error'])} |")


def _cells(s: dict) -> str:
    return "- | - | -" if not s.get("n") else \
        f"{_pct(s['within_10pct'])} | {_pct(s['median_abs_error'])} | {_pct(s['p90_abs_error'])}"


def _kernel_lines(r: dict) -> list[str]:
    """The kernel model's figures beside the roofline model's (same points)."""
    k = r["kernel_model"]
    rows = [("latency, all", r["latency"], k["latency"])]
    rows += [(f"latency, {a}", s, k["latency_by_arch"].get(a, {})) for a, s in r["latency_by_arch"].items()]
    cv = k["kernels_cross_validated"]
    return [f"#### `{r['profile']}`: kernel model (microbenchmarks) beside the roofline model", "",
            "| points | n | roofline ±10% | roofline median | roofline p90 | kernel model ±10% | kernel model median "
            "| kernel model p90 |", "|---|---|---|---|---|---|---|---|"] + \
        [f"| {label} | {s.get('n', 0)} | {_cells(s)} | {_cells(ks)} |" for label, s, ks in rows] + \
        ["", f"Kernel predictor on its own microbenchmark table ({k['configurations']} synthetic configurations, "
         f"{k['n_measurements']} measurements, {k['measure_s']:.0f} s to measure), each configuration predicted from "
         f"the others: {_pct(cv['within_10pct'])} within ±10%, median error {_pct(cv['median_abs_error'])}.", ""]


def _quantile_name() -> str:
    return f"{100 * POINT_QUANTILE:.0f}th percentile"


def _repeatability_lines(rep: dict) -> list[str]:
    """The agreement of the profile with its committed re-measurement, per statistic."""
    return [f"Repeatability: the same profile commands run again (`{rep['retest_file']}`, "
            f"{rep['date']}), each point against the shipped one:", "",
            "| statistic | n | within ±10% | median abs. difference | p90 abs. difference |", "|---|---|---|---|---|",
            _summary_row("median", rep["median"]),
            _summary_row(f"{_quantile_name()} (the points above)", rep["point"]), ""]


def _linear_line(rates: dict) -> str:
    """The linear-layer rates a CPU profile was predicted with, and their source."""
    return (f"Linear layers (held fixed in every fold, from {rates['source']}): row by row at "
            f"{rates['eff_gemv']:.2f} of the copy bandwidth, GEMM at {rates['eff_matmul']:.2f} of the matmul peak "
            f"plus {rates['matmul_half_intensity']:.1f} FLOP-times per byte moved.")


def markdown(results: list[dict], mlperf: list[dict]) -> str:
    """The report as Markdown (tables per profile, then the MLPerf comparison)."""
    lines = []
    for r in results:
        noise = r["batch_doubling_drops"]
        lines += [f"#### `{r['profile']}` ({r['device']})", "",
                  "| points | n | within ±10% | median abs. error | p90 abs. error |", "|---|---|---|---|---|",
                  _summary_row("latency, all", r["latency"])]
        lines += [_summary_row(f"latency, {mode}", s) for mode, s in r["latency_by_mode"].items()]
        lines += [_summary_row(f"latency, {arch}", s) for arch, s in r["latency_by_arch"].items()]
        lines += [_summary_row("energy per call", r["energy"]), "",
                  f"Measurement noise: in {noise['drops_over_10pct']} of {noise['pairs']} batch-size doublings the "
                  f"measured latency ({_quantile_name()}) fell by more than 10%.", ""]
        if r.get("untabled"):
            lines += [untabled_note(r["untabled"]), ""]
        if "eff_gemv" in r["linear_rates"]:
            lines += [_linear_line(r["linear_rates"]), ""]
        if "repeatability" in r:
            lines += _repeatability_lines(r["repeatability"])
        if "kernel_model" in r:
            lines += _kernel_lines(r)
    lines += ["#### Derived ResNet-50 batch 1 vs MLPerf Inference v3.1 (SingleStream p90, TensorRT INT8)", "",
              "| device | derived mode (fp16) | derived p90 (ms) | MLPerf p90 (ms) | derived / MLPerf |",
              "|---|---|---|---|---|"]
    lines += [f"| {m['device']} | {m['mode']} | {m['derived_p90_ms']:.2f} | {m['mlperf_p90_ms']:.2f} | "
              f"{m['ratio']:.2f} |" for m in mlperf]
    return "\n".join(lines) + "\n"
