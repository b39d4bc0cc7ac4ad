"""``flexsim costmodel {accuracy,derive,trace,microbench,kernel-times,kernel-check,devices}``: the hardware cost model
from the command line."""

from __future__ import annotations

import argparse
from pathlib import Path

DESCRIPTION = """The hardware cost model (docs/cost-model.md).

  accuracy  leave-one-architecture-out accuracy on every measured shipped profile (or --profile; with --table, your
            models' tables, for a profile that measured them beside built-in ones), and the derived ResNet-50
            batch-1 latency of AGX Orin and Orin NX against MLPerf; --update-doc rewrites the report block in
            docs/cost-model.md
  derive    derive profiles for devices of the device table (default: every shipped derived profile); --table
            adds your own models' layer tables (then only they are derived, unless --models names committed ones)
  trace     trace models (PyTorch needed) into layer tables: built-in models into the committed tables (or
            --out-dir), your own as NAME=SOURCE:CALLABLE with --input-shape into --out-dir (docs/your-models.md)
  microbench  time synthetic kernels on this host (PyTorch needed) for the kernel model of a measured CPU profile
            (--profile, default: cpu-amd-epyc-2c), with that profile's thread count and allocator; writes
            simulator/costmodel/tables/kernels-<profile>.json (or --out); takes ~10 minutes on the 2-core host
  kernel-times  time every kernel of models inside real forward passes on this host's CPU or a CUDA GPU (PyTorch
            needed), matched to their layer tables (your own models, NAME=SOURCE:CALLABLE with --input-shape, traced
            first); writes --out (JSON)
  kernel-check  set a kernel-times file (--kernel-times) against the cost model fitted on a measured profile of the
            same device (--profile): which operators the model gets wrong, and what calls cost beyond their kernels
            (your own models' kernels: give their tables, --table)
  devices   list the device table with its datasheet figures

Examples:
  flexsim costmodel accuracy --update-doc docs/cost-model.md
  flexsim costmodel derive --out-dir profiles
  flexsim costmodel derive --device agx-orin-50w --name my-orin --out-dir /tmp
  flexsim costmodel trace --models mynet=models.py:build --input-shape 3,32,32 --out-dir tables
  flexsim costmodel derive --device orin-nano-8gb --table tables/mynet.json --name orin-nano-mynet --out-dir .
  flexsim costmodel microbench --profile cpu-amd-epyc-2c
  flexsim costmodel kernel-times --models fmnist-cnn-w8,resnet18 --batch-sizes 1,4 --threads 1 --out kt.json
  flexsim costmodel kernel-check --kernel-times kt.json --profile cpu-amd-epyc-2c
  flexsim costmodel kernel-times --models mynet=models.py:build --input-shape 3,32,32 --threads 1 --out mine.json
  flexsim costmodel kernel-check --kernel-times mine.json --table tables/mynet.json --profile cpu-amd-epyc-2c
"""

BEGIN, END = "<!-- accuracy-report:begin -->", "<!-- accuracy-report:end -->"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("action", choices=("accuracy", "derive", "trace", "microbench", "kernel-times",
                                           "kernel-check", "devices"))
    parser.add_argument("--profile", action="append", help="accuracy: measured profile(s) to check (default: every "
                        "shipped measured profile); derive: reference profile(s), used for targets of the same kind "
                        "(default: h100 for GPUs, cpu-amd-epyc-2c for CPUs); kernel-check: the measured profile of the "
                        "device the kernel times were measured on")
    parser.add_argument("--device", action="append", help="derive: device table entries (default: the shipped set); "
                        "kernel-times: where to run, cpu, cuda or cuda:<index> (default cpu)")
    parser.add_argument("--name", help="derive: profile name (only with one --device)")
    parser.add_argument("--out-dir", help="derive: folder for the profiles (default profiles); trace: folder for the "
                        "layer tables (default: the committed tables; needed for your own models)")
    parser.add_argument("--models", help="trace: comma-separated models, built-in names or your own as "
                        "NAME=SOURCE:CALLABLE (default: every built-in model); derive: committed models to derive "
                        "(default: every one, or none where --table is given); kernel-times: built-in models or "
                        "your own as NAME=SOURCE:CALLABLE (default: every built-in model)")
    parser.add_argument("--input-shape", metavar="SHAPE", help="trace, kernel-times: per-sample input shape of "
                        "your own models (e.g. 3,32,32)")
    parser.add_argument("--input-tokens", metavar="VOCAB", help="trace, kernel-times: your own models take token ids "
                        "below VOCAB (an embedding first), of --input-shape")
    parser.add_argument("--table", action="append", metavar="PATH", help="derive: a layer table file of your own "
                        "model (from trace), repeat for several; accuracy: the tables of your models that --profile "
                        "measured (each is then left out in turn like the built-in ones); kernel-check: the tables "
                        "of your models that --kernel-times measured")
    parser.add_argument("--kernels", metavar="PATH", help="accuracy: microbenchmark table of the same device to take a "
                        "CPU profile's linear-layer rates from where the profile has no linear probes, in place of "
                        "the profile's committed table if it has one (e.g. for a measurement in profiles/raw)")
    parser.add_argument("--update-doc", metavar="MD", help="accuracy: replace the report block of this Markdown file")
    parser.add_argument("--json", metavar="PATH", help="accuracy: also write the summaries as JSON")
    parser.add_argument("--seed", type=int, default=0,
                        help="microbench: seed of the sampled configurations (default 0)")
    parser.add_argument("--out", metavar="PATH", help="microbench: output file (default: the committed table); "
                        "kernel-times: output file (needed)")
    parser.add_argument("--batch-sizes", help="kernel-times: e.g. 1,4,16 or 1-4 (default 1)")
    parser.add_argument("--dtypes", help="kernel-times: comma-separated fp32, fp16, bf16 (default fp32)")
    parser.add_argument("--threads", type=int, help="kernel-times: PyTorch CPU threads (default: PyTorch's; give the "
                        "profile's to compare with it)")
    parser.add_argument("--rounds", type=int, help="kernel-times: rounds over every model and batch size "
                        f"(default {KERNEL_TIMES_ROUNDS})")
    parser.add_argument("--passes", type=int, help="kernel-times: timed passes of each per round (default "
                        f"{KERNEL_TIMES_PASSES})")
    parser.add_argument("--allocator", help="kernel-times: steady or default, as flexsim profile's (default steady)")
    parser.add_argument("--kernel-times", metavar="PATH", action="append", help="kernel-check: a kernel-times file "
                        "(repeat for several of one device)")


KERNEL_TIMES_ROUNDS, KERNEL_TIMES_PASSES = 5, 4
#: The options each action reads (with the value that means "not given"); another action's option is refused.
OPTIONS = {"profile": ({"accuracy", "derive", "microbench", "kernel-check"}, None),
           "device": ({"derive", "kernel-times"}, None), "name": ({"derive"}, None),
           "out_dir": ({"derive", "trace"}, None), "models": ({"trace", "derive", "kernel-times"}, None),
           "input_shape": ({"trace", "kernel-times"}, None), "input_tokens": ({"trace", "kernel-times"}, None),
           "table": ({"derive", "accuracy", "kernel-check"}, None),
           "kernels": ({"accuracy"}, None), "update_doc": ({"accuracy"}, None), "json": ({"accuracy"}, None),
           "seed": ({"microbench"}, 0), "out": ({"microbench", "kernel-times"}, None),
           **{k: ({"kernel-times"}, None) for k in ("batch_sizes", "dtypes", "threads", "rounds", "passes",
                                                    "allocator")},
           "kernel_times": ({"kernel-check"}, None)}


def run(args: argparse.Namespace) -> int:
    from simulator.errors import require

    unused = [f"--{name.replace('_', '-')}" for name, (actions, unset) in OPTIONS.items()
              if args.action not in actions and getattr(args, name) != unset]
    require(not unused, f"{args.action} does not take {', '.join(unused)} (see flexsim costmodel --help)")
    return {"accuracy": _accuracy, "derive": _derive, "trace": _trace, "microbench": _microbench,
            "kernel-times": _kernel_times, "kernel-check": _kernel_check, "devices": _devices}[args.action](args)


def _measured_profiles(names):
    from simulator.profiles import load_profile, shipped_profiles

    if names:
        return [load_profile(n) for n in names]
    profiles = [load_profile(p) for p in shipped_profiles().values()]
    return [p for p in profiles if p.provenance.get("source") == "measured"]


def _accuracy_inputs(args) -> list:
    """The files `accuracy` may read: the profiles given and every shipped one, the committed layer and kernel tables,
    the given layer tables and --kernels."""
    from simulator.costmodel.layers import TABLES_DIR
    from simulator.profiles import profile_file, shipped_profiles

    return [*map(profile_file, args.profile or ()), *shipped_profiles().values(), *TABLES_DIR.glob("*.json"),
            *(args.table or ()), args.kernels]


def _holds_measured_profile(path) -> bool:
    """Whether file `path` exists and holds a profile whose provenance says it was measured."""
    import json

    if not Path(path).is_file():                   # a FIFO would block the read (the writer names it)
        return False
    try:
        obj = json.loads(Path(path).read_text())
    except (OSError, ValueError):
        return False
    return isinstance(obj, dict) and isinstance(obj.get("provenance"), dict) and \
        obj["provenance"].get("source") == "measured"


def _reference(spec, given):
    """The reference profile for a target: a given one of the same execution kind (CPU or GPU), else the default
    (h100 for GPUs, the shipped measured CPU profile for CPUs)."""
    from simulator.profiles import load_profile

    matching = [p for p in given if (p.kind == "cpu") == (spec.executes == "cpu")]
    if matching:
        return matching[0]
    return _cpu_reference() if spec.executes == "cpu" else load_profile("h100")


#: The shipped measured CPU profile that CPU targets are derived from and the microbenchmarks measured for by
#: default (the one with a microbenchmark table; others are used where given with --profile).
DEFAULT_CPU_REFERENCE = "cpu-amd-epyc-2c"


def _cpu_reference():
    from simulator.errors import require

    cpus = [p for p in _measured_profiles(None) if p.kind == "cpu"]
    require(cpus, "cost model: no measured CPU profile is shipped (measure one with flexsim profile)")
    return next((p for p in cpus if p.name == DEFAULT_CPU_REFERENCE), cpus[0])


def _accuracy(args) -> int:
    from simulator.costmodel.layers import given_tables, read_table
    from simulator.costmodel.report import markdown, mlperf_comparison, profile_accuracy
    from simulator.errors import require
    from simulator.profiles import load_profile

    from simulator.io import atomic_paths, check_file_spares_inputs, check_output_file, json_text

    doc = _report_doc(args.update_doc) if args.update_doc is not None else None
    if args.json is not None:
        check_output_file(args.json, "--json")
        check_file_spares_inputs(args.json, _accuracy_inputs(args), "--json")
        require(doc is None or Path(args.json).resolve() != Path(args.update_doc).resolve(),
                f"--json and --update-doc name the same file {args.update_doc}: the JSON would replace the document")
    if args.kernels:
        # checked before anything runs, and also where every profile checked has linear probes and never reads it
        from simulator.costmodel.kernels import load_kernel_table_file

        load_kernel_table_file(args.kernels)
    require(args.profile or not args.table, "accuracy: --table needs --profile (a profile that measured those "
            "models)")
    tables, profiles = [read_table(t) for t in args.table or ()], _measured_profiles(args.profile)
    _check_tables_fit(tables, profiles)
    with given_tables(tables):
        results = [profile_accuracy(p, args.kernels) for p in profiles]
    text = markdown(results, mlperf_comparison(load_profile("h100")))
    print(text)
    outputs = {}
    if doc is not None:
        head, tail = doc
        outputs[args.update_doc] = f"{head}{BEGIN}\n{text}{END}{tail}"
    if args.json is not None:
        outputs[args.json] = json_text([_without_predictions(r) for r in results])
    with atomic_paths(list(outputs)) as tmps:  # both files are replaced, or neither
        for tmp, content in zip(tmps, outputs.values()):
            tmp.write_text(content)
    if doc is not None:
        print(f"updated the report block of {args.update_doc}")
    return 0


def _without_predictions(result: dict) -> dict:
    """A profile's accuracy summary without the per-point predictions (not JSON), also in its kernel model's."""
    out = {k: v for k, v in result.items() if k != "predictions"}
    if "kernel_model" in out:
        out["kernel_model"] = _without_predictions(out["kernel_model"])
    return out


def _report_doc(path: str) -> tuple[str, str]:
    """The text of Markdown file `path` before and after its report block (checked before any computation)."""
    from simulator.errors import require
    from simulator.io import check_output_file, read_text

    check_output_file(path, "--update-doc")                 # a FIFO would block the read
    doc = read_text(path, "--update-doc")
    require(BEGIN in doc and END in doc.split(BEGIN, 1)[1],
            f"--update-doc {path}: the file has no {BEGIN} ... {END} block")
    head, rest = doc.split(BEGIN, 1)
    return head, rest.split(END, 1)[1]


def _derive(args) -> int:
    from pathlib import Path

    from simulator.costmodel.derive import MODELS, SHIPPED, derive_profile
    from simulator.costmodel.devices import device_spec
    from simulator.costmodel.layers import TABLES_DIR, read_table
    from simulator.errors import require
    from simulator.io import atomic_paths
    from simulator.profiles import check_profile_name, load_profile, save_profile

    if args.name is not None:
        require(len(args.device or ()) == 1, "--name needs exactly one --device")
        check_profile_name(args.name, "--name")
    require(args.device or not (args.table or args.models), "derive: give --device with --table or --models (without "
            "it, derive re-makes the shipped derived profiles)")
    targets = {args.name or d: d for d in args.device} if args.device else dict(SHIPPED)
    specs = {name: device_spec(d) for name, d in targets.items()}
    require(args.out_dir != "", "invalid --out-dir = '': an empty path (write . for the current folder)")
    out_dir = Path(args.out_dir if args.out_dir is not None else "profiles")
    require(out_dir.is_dir(), f"invalid --out-dir {out_dir}: not a folder")
    outputs = [out_dir / f"{name}.json" for name in specs]
    committed = list(TABLES_DIR.glob("*.json"))             # the layer tables every derivation reads
    inputs = {Path(f).resolve() for f in [*(args.table or []), *(args.profile or []), *committed] if Path(f).exists()}
    clash = [str(o) for o in outputs if o.resolve() in inputs]
    require(not clash, f"derive: {', '.join(clash)} is an input of this command; the profile would replace it "
            "(choose another --name or --out-dir)")
    measured = [str(o) for o in outputs if _holds_measured_profile(o)]
    require(not measured, f"derive: {', '.join(measured)} holds a measured profile, which the derived one would "
            "replace (choose another --name or --out-dir)")
    tables = [read_table(t) for t in args.table or ()]
    models = _committed_models(args.models) if args.models is not None else (() if tables else MODELS)
    given = [load_profile(p) for p in args.profile or ()]
    _check_references(given, specs.values())
    profiles = [derive_profile(name, spec, _reference(spec, given), models=models, tables=tables)
                for name, spec in specs.items()]
    with atomic_paths(outputs) as tmps:   # every profile, or none
        for tmp, p in zip(tmps, profiles):
            save_profile(tmp, p)
    for p in profiles:
        print(f"wrote {out_dir / (p.name + '.json')}: {p.device['name']}, {len(p.models)} models, derived from "
              f"{p.provenance['derived_from']['reference_profile']}")
    return 0


def _check_tables_fit(tables, profiles) -> None:
    """FlexsimError where no profile measured a table's model (the table would change nothing), or where a table of
    yours was traced on another input than a profile measured its model on (its shape, or token ids against floats):
    the comparison would be of two different calls."""
    from simulator.costmodel.points import entry_arch
    from simulator.errors import require
    from simulator.models.user import input_words

    for table in tables:
        require(any(entry_arch(m.info) == table.model for p in profiles for m in p.models.values()),
                f"accuracy: no profile checked measured {table.model}, the model of its --table (measure it into "
                "the profile with flexsim profile, docs/your-models.md)")
        for profile in profiles:
            for name, model in profile.models.items():
                info = model.info
                if entry_arch(info) != table.model or "input_shape" not in info:
                    continue
                measured = (tuple(info["input_shape"]), info.get("input_tokens"))
                require(measured == (table.input_shape, table.input_tokens), f"accuracy: the table of {table.model} "
                        f"was traced on {input_words(table.input_shape, table.input_tokens)}, but profile "
                        f"{profile.name} measured {name} on {input_words(*measured)}: trace it again with the "
                        "profile's --input-shape (and --input-tokens)")


def _check_references(given, specs) -> None:
    """FlexsimError for a given reference profile that is not measured, or that no target would use (a CPU's for
    GPU targets only, or the other way round): `_reference` would pass it over in silence."""
    from simulator.costmodel.derive import reference_spec
    from simulator.errors import require

    for profile in given:
        reference_spec(profile)
        cpu = profile.kind == "cpu"
        require(any((spec.executes == "cpu") == cpu for spec in specs),
                f"derive: --profile {profile.name} is a {'CPU' if cpu else 'GPU'} profile, but no target device is "
                f"a {'CPU' if cpu else 'GPU'}: a reference serves targets of its own kind only")


def _model_list(text: str) -> list[str]:
    """The names of a ``--models`` list; FlexsimError for an empty one."""
    from simulator.errors import require

    names = [m.strip() for m in text.split(",")]
    require(all(names), f"invalid --models = {text!r}: an empty name (leave --models out for the default)")
    return names


def _committed_models(text: str) -> list[str]:
    """The models of ``derive --models``: committed tables by name (a built-in model's name as the registry spells
    it); FlexsimError for a model of yours, which derive takes as a traced table (--table)."""
    from simulator.errors import require
    from simulator.models.registry import canonical_name, is_builtin
    from simulator.models.user import is_user_model

    names = _model_list(text)
    mine = [n for n in names if is_user_model(n)]
    require(not mine, f"derive: --models {mine[0] if mine else ''} is a model of yours: trace it first (flexsim "
            "costmodel trace --models NAME=SOURCE:CALLABLE --input-shape ... --out-dir DIR), then give --table "
            "DIR/NAME.json")
    return [canonical_name(n) if is_builtin(n) else n for n in names]


def _trace(args) -> int:
    from simulator.costmodel.layers import TABLES_DIR, table_text
    from simulator.errors import FlexsimError, require
    from simulator.io import atomic_paths, check_output_dir, output_dir
    from simulator.models.registry import known_models, parse_models
    from simulator.models.user import UserModel, parse_input_shape, parse_input_tokens

    shape = None if args.input_shape is None else parse_input_shape(args.input_shape)
    tokens = None if args.input_tokens is None else parse_input_tokens(args.input_tokens)
    models = parse_models(known_models() if args.models is None else _model_list(args.models), shape, tokens)
    require(args.out_dir is not None or not any(isinstance(m, UserModel) for m in models),
            "trace: give --out-dir for your own models' tables (the committed tables are flexsim's)")
    out_dir = TABLES_DIR if args.out_dir is None else check_output_dir(args.out_dir, "--out-dir")
    try:
        from simulator.costmodel.trace import trace_model
    except ImportError:
        raise FlexsimError("trace needs PyTorch: pip install 'flexsim[torch]'") from None
    tables = [trace_model(m) for m in models]
    with output_dir(out_dir, "--out-dir"), atomic_paths([out_dir / f"{t.model}.json" for t in tables]) as tmps:
        for tmp, t in zip(tmps, tables):       # every table written, or none (nor a folder made for them)
            Path(tmp).write_text(table_text(t))
    for t in tables:
        print(f"wrote {out_dir / (t.model + '.json')}: {t.n_kernels} kernels, {t.flops.sum() / 1e9:.4g} GFLOP/sample, "
              f"{t.params:,} parameters")
    return 0


def _microbench(args) -> int:
    from simulator.costmodel.kernels import kernel_table_path, kernel_table_text
    from simulator.errors import FlexsimError, require
    from simulator.io import check_file_spares_inputs, check_output_file, write_text_atomic
    from simulator.profiler.allocator import check_allocator
    from simulator.profiles import load_profile, profile_file

    require(args.seed >= 0, f"invalid --seed = {args.seed}: must be an integer >= 0")
    require(len(args.profile or ()) <= 1, "microbench: give one --profile")
    try:
        from simulator.costmodel.kernelbench import measure, sample_configs
    except ImportError:
        raise FlexsimError("microbench needs PyTorch: pip install 'flexsim[torch]'") from None
    profile = load_profile(args.profile[0]) if args.profile else _cpu_reference()
    require(profile.kind == "cpu" and profile.provenance.get("source") == "measured", f"microbench: profile "
            f"{profile.name} is not a measured CPU profile (the kernel model is for CPUs measured on this host)")
    # before minutes of timing: the output can be written and is none of the files read
    out = check_output_file(kernel_table_path(profile.name) if args.out is None else args.out, "--out")
    check_file_spares_inputs(out, [profile_file(p) for p in args.profile or ()], "--out")
    threads = int(profile.device.get("threads") or 1)
    recorded = profile.provenance.get("allocator", {})
    require(isinstance(recorded, dict), f"microbench: profile {profile.name}'s provenance.allocator = "
            f"{recorded!r:.60} must be an object (as the profiler writes it)")
    allocator = check_allocator(recorded.get("allocator", "default"))
    configs = sample_configs(args.seed)
    print(f"timing {len(configs)} synthetic kernel configurations with {threads} thread(s) and the {allocator} "
          f"allocator for {profile.name}")
    table = measure(configs, threads, str(profile.device.get("name")), args.seed, progress=print,
                    allocator=allocator)
    write_text_atomic(out, kernel_table_text(table))
    print(f"wrote {out}: {table.n_measurements} measurements in {table.provenance['measure_s']:.0f} s")
    return 0


def _kernel_times(args) -> int:
    from simulator.commands.profile import parse_batch_sizes
    from simulator.errors import FlexsimError, require
    from simulator.io import check_file_spares_inputs, check_output_file, json_text, write_text_atomic
    from simulator.models.registry import known_models, parse_models
    from simulator.models.user import UserModel, parse_input_shape, parse_input_tokens
    from simulator.profiler.allocator import check_allocator
    from simulator.profiler.session import check_batch_sizes
    from simulator.profiler.settings import MAX_ROUNDS, MAX_THREADS

    require(args.out is not None, "kernel-times needs --out (the file to write)")
    out = check_output_file(args.out, "--out")                 # before minutes of timing
    require(len(args.device or ()) <= 1, "kernel-times: give one --device")
    names = list(known_models()) if args.models is None else _model_list(args.models)
    shape = None if args.input_shape is None else parse_input_shape(args.input_shape)
    tokens = None if args.input_tokens is None else parse_input_tokens(args.input_tokens)
    models = list(parse_models(names, shape, tokens))   # canonical names and yours; unknown or twice: an error
    check_file_spares_inputs(out, [m.source for m in models if isinstance(m, UserModel)], "--out")
    batch_sizes = check_batch_sizes(parse_batch_sizes("1" if args.batch_sizes is None else args.batch_sizes))
    dtypes = _dtype_list("fp32" if args.dtypes is None else args.dtypes)
    for flag, value, highest in (("--rounds", args.rounds, MAX_ROUNDS), ("--passes", args.passes, 1_000_000),
                                 ("--threads", args.threads, MAX_THREADS)):
        require(value is None or 1 <= value <= highest, f"invalid {flag} = {value}: must be an integer from 1 to "
                f"{highest}")
    try:
        from simulator.costmodel.kerneltimes import measure
    except ImportError:
        raise FlexsimError("kernel-times needs PyTorch: pip install 'flexsim[torch]'") from None
    times = measure(models, batch_sizes, dtypes, (args.device or ["cpu"])[0],
                    KERNEL_TIMES_ROUNDS if args.rounds is None else args.rounds,
                    KERNEL_TIMES_PASSES if args.passes is None else args.passes, args.threads,
                    check_allocator("steady" if args.allocator is None else args.allocator), progress=print)
    write_text_atomic(out, json_text(times))
    print(f"wrote {out}: {len(times['entries'])} calls' kernels in {times['provenance']['measure_s']:.0f} s")
    return 0


def _dtype_list(text: str) -> list[str]:
    """The dtypes of ``kernel-times --dtypes``; FlexsimError for an unknown one or one given twice."""
    from simulator.errors import given_twice, require
    from simulator.profiler.targets import DTYPES

    dtypes = [d.strip() for d in text.split(",")]
    for d in dtypes:
        require(d in DTYPES, f"invalid --dtypes = {text!r}: each must be one of {', '.join(DTYPES)}")
    twice = given_twice(dtypes)
    require(not twice, f"invalid --dtypes: {', '.join(twice)} given twice")
    return dtypes


def _kernel_check(args) -> int:
    from simulator.costmodel.kernelcheck import joined, kernel_comparison, markdown, read_kernel_times
    from simulator.costmodel.layers import given_tables, read_table
    from simulator.errors import require
    from simulator.profiles import load_profile

    require(args.kernel_times is not None, "kernel-check needs --kernel-times (a file of flexsim costmodel "
            "kernel-times)")
    require(len(args.profile or ()) == 1, "kernel-check needs one --profile (the measured profile of the device the "
            "kernel times were measured on)")
    with given_tables([read_table(t) for t in args.table or ()]):
        times = joined([read_kernel_times(path) for path in args.kernel_times])
        comparison = kernel_comparison(times, load_profile(args.profile[0]))
    print(markdown(comparison, ", ".join(args.kernel_times)), end="")
    return 0


def _devices(args) -> int:
    from simulator.costmodel.devices import DEVICES

    for d in DEVICES.values():
        peaks = ", ".join(f"{k} {v:.3g}" for k, v in d.peak_tflops.items())
        print(f"{d.name:<15} {d.kind:<10} {peaks} TFLOP/s; {d.mem_bw_gbs:g} GB/s; "
              f"{'-' if d.power_w is None else f'{d.power_w:g} W'}  {d.label}")
    return 0
