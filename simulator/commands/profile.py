"""``flexsim profile MODELS --batch-sizes ... --out FILE``: measure models on this host and write a profile."""

from __future__ import annotations

import argparse

DESCRIPTION = """Measure models on this host (the CPU, or a CUDA GPU) and write a device profile (schema v1).

Per model x dtype x mode x batch size: latency samples (wall time of one call including the copy of the output
to the host, after warm-up) and their quantiles, CUDA-event device time on a GPU, energy per call where an
energy counter is readable (RAPL on the CPU, NVML on a GPU; otherwise null: not measured), plus the device's idle
power and the per-stage decision overhead measured on this host. Nothing is written unless every measurement
succeeds; the file is written atomically.

Models: alexnet, resnet18, resnet50, vgg16, mobilenet-v3-large, efficientnet-b0 (torchvision's architectures,
random weights), fmnist-cnn-w<width> (the Fashion-MNIST ensemble's members), and your own as NAME=SOURCE:CALLABLE
with --input-shape (SOURCE a .py file or an importable module, CALLABLE returning a torch.nn.Module; its first
dtype and mode are named NAME in the profile: docs/your-models.md).

Examples:
  flexsim profile fmnist-cnn-w8,fmnist-cnn-w32,fmnist-cnn-w64 --batch-sizes 1-16 --threads 1 --out cpu-mine.json
  flexsim profile resnet50 --device cuda --dtypes fp16,fp32 --modes eager,graph --batch-sizes 1-64 \\
      --kind datacenter --out h100.json
  flexsim profile mynet=models.py:build --input-shape 3,32,32 --batch-sizes 1-8 --out my-cpu.json
"""


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("models", help="comma-separated model names; your own as NAME=SOURCE:CALLABLE")
    parser.add_argument("--input-shape", metavar="SHAPE", help="per-sample input shape of your own models (e.g. "
                        "3,32,32)")
    parser.add_argument("--input-tokens", metavar="VOCAB", help="your own models take token ids (an embedding "
                        "first): their vocabulary size; inputs are ids drawn below it, of --input-shape (e.g. 128)")
    parser.add_argument("--batch-sizes", default="1", help="e.g. 1-16 or 1,2,4,8 (default 1)")
    parser.add_argument("--dtypes", default="fp32", help="comma-separated: fp32, fp16, bf16 (default fp32)")
    parser.add_argument("--modes", default="eager",
                        help="comma-separated: eager, graph (CUDA graph; GPU only) (default eager)")
    parser.add_argument("--device", default="cpu", help="cpu, cuda or cuda:<index> (default cpu)")
    parser.add_argument("--kind", default=None, help="device kind: datacenter, embedded or cpu "
                        "(default: cpu for the CPU, datacenter for a GPU)")
    parser.add_argument("--name", default=None, help="profile name (default: the --out file's name without .json, "
                        "or with --update the existing file's profile name)")
    parser.add_argument("--out", required=True, help="profile file to write (JSON)")
    parser.add_argument("--update", action="store_true", help="keep the models of an existing --out file that "
                        "this run does not measure (same device and threads required); without it --out is "
                        "replaced whole")
    parser.add_argument("--no-energy", action="store_true", help="do not read energy counters")
    for name, default, help_text in (("warmup", 10, "warm-up calls"), ("repeats", 50, "timed calls (samples)"),
                                     ("rounds", 5, "rounds interleaved over every model and batch size")):
        parser.add_argument(f"--{name}", type=int, default=default, help=f"{help_text} (default {default})")
    parser.add_argument("--warmup-s", type=float, default=0.5, help="minimum warm-up seconds (default 0.5)")
    parser.add_argument("--energy-window-s", type=float, default=1.0, help="energy window, >= 1 s (default 1)")
    parser.add_argument("--idle-settle-s", type=float, default=5.0, help="wait before idle power (default 5)")
    parser.add_argument("--threads", type=int, default=None, help="PyTorch CPU threads (default: PyTorch's)")
    parser.add_argument("--allocator", default="steady", help="steady (glibc's malloc thresholds fixed, so that no "
                        "call page-faults on fresh memory, as with jemalloc/tcmalloc) or default (the C library's "
                        "settings as they are); docs/profiles.md (default steady)")


def parse_batch_sizes(text: str) -> tuple[int, ...]:
    """``"1-4,8"`` -> ``(1, 2, 3, 4, 8)``; FlexsimError naming a malformed part (``2-``, ``x``) or a batch size given
    twice (``1,1``, ``1-4,2``)."""
    from simulator.errors import FlexsimError, require
    from simulator.profiler.session import MAX_BATCH

    sizes, seen = [], set()
    for part in str(text).split(","):
        try:
            lo, dash, hi = part.strip().partition("-")
            lo, hi = int(lo), int(hi) if dash else int(lo)
        except ValueError:
            raise FlexsimError(f"invalid --batch-sizes part {part!r}: use e.g. 1-16 or 1,2,4") from None
        require(lo <= hi, f"invalid --batch-sizes range {part!r}: the start exceeds the end")
        require(hi <= MAX_BATCH, f"invalid --batch-sizes range {part!r}: batch sizes go up to {MAX_BATCH}")
        twice = sorted(seen.intersection(range(lo, hi + 1)))
        require(not twice, f"invalid --batch-sizes = {text!r}: batch size {twice[0] if twice else ''} given twice")
        seen.update(range(lo, hi + 1))
        sizes += range(lo, hi + 1)
    return tuple(sizes)


def _split(text: str) -> tuple[str, ...]:
    return tuple(s.strip() for s in str(text).split(",") if s.strip())


def run(args: argparse.Namespace) -> int:
    from simulator.io import check_file_spares_inputs, check_output_file
    from simulator.models.user import UserModel, parse_input_shape, parse_input_tokens
    from simulator.profiler import MeasureSettings, ProfileRequest, profile_models
    from simulator.profiler.session import merge_profiles
    from simulator.profiles import check_profile_name, load_profile, save_profile

    request = ProfileRequest(models=_split(args.models), batch_sizes=parse_batch_sizes(args.batch_sizes),
                             dtypes=_split(args.dtypes), modes=_split(args.modes), device=args.device,
                             kind=args.kind, energy=not args.no_energy,
                             input_shape=None if args.input_shape is None else parse_input_shape(args.input_shape),
                             input_tokens=None if args.input_tokens is None else parse_input_tokens(args.input_tokens))
    settings = MeasureSettings(warmup=args.warmup, warmup_s=args.warmup_s, repeats=args.repeats,
                               rounds=args.rounds, energy_window_s=args.energy_window_s,
                               idle_settle_s=args.idle_settle_s,
                               threads=args.threads, allocator=args.allocator)
    out = check_output_file(args.out, "--out")
    check_file_spares_inputs(out, [m.source for m in request.models if isinstance(m, UserModel)], "--out")
    if args.name is not None:
        check_profile_name(args.name, "--name")
    old = load_profile(out) if args.update and out.exists() else None
    name = args.name or (old.name if old else out.stem)
    check_profile_name(name, "--name" if args.name else "--out's file name (or give --name)")
    profile = profile_models(request, settings, name=name, progress=print, update=old)
    if old is not None:
        profile = merge_profiles(old, profile)
    save_profile(out, profile)
    print(f"wrote {out}: {len(profile.models)} models, decision overhead {profile.decision_overhead_ms} ms, "
          f"energy: {profile.provenance['energy']}")
    return 0
