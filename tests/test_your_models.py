"""Users' own models (docs/your-models.md): NAME=SOURCE:CALLABLE in flexsim profile and costmodel trace, layer
table files in costmodel derive, and a run on a cache that names them; bad input (one line, exit 2, nothing
written)."""

import dataclasses
import json

import numpy as np
import pytest

from simulator.cli import main
from simulator.costmodel.layers import read_table, save_table
from simulator.errors import FlexsimError
from simulator.logits import LogitCache, load_cache, save_cache
from simulator.models.registry import parse_models
from simulator.models.user import UserModel, parse_input_shape
from simulator.profiles import load_profile, profile_file
from simulator.usercode import FILE_MODULE
from tests.helpers import cli_error

torch = pytest.importorskip("torch")

MODELS_PY = '''
import torch

class Net(torch.nn.Module):
    def __init__(self, width=4):
        super().__init__()
        self.conv = torch.nn.Conv2d(1, width, 3, padding=1)
        self.head = torch.nn.Linear(width * 8 * 8, 3)

    def forward(self, x):
        return self.head(torch.relu(self.conv(x)).flatten(1))

def build():
    return Net(4)

def wide():
    return Net(16)

INSTANCE = Net(2)
NOT_A_MODULE = 3

def broken():
    raise RuntimeError("no weights here")

def exits():
    import sys
    sys.exit(3)

class Odd(BaseException):
    pass

def odd():
    raise Odd("not an Exception")

class Locked(torch.nn.Module):
    def __init__(self):
        super().__init__()
        import threading
        self.lock = threading.Lock()

LOCKED = Locked()

class Folds(torch.nn.Module):
    """Folds the batch into its features: batch 1 runs, batch 2 does not (or does other work)."""
    def __init__(self):
        super().__init__()
        self.head = torch.nn.Linear(64, 3)

    def forward(self, x):
        return self.head(x.flatten()[:64].unsqueeze(0))

def folds():
    return Folds()

def returns_list():
    return [1, 2]

class Flaky(Net):
    """Runs its first `calls` calls, then fails (or exits)."""
    def __init__(self, calls, exits=False):
        super().__init__(4)
        self.calls, self.exits = calls, exits

    def forward(self, x):
        self.calls -= 1
        if self.calls < 0:
            if self.exits:
                import sys
                sys.exit(5)
            raise RuntimeError("worn out")
        return super().forward(x)

def flaky():
    return Flaky(calls=2)

def exits_in_forward():
    return Flaky(calls=1, exits=True)

class Nothing(torch.nn.Module):
    def forward(self, x):
        return None

def returns_nothing():
    return Nothing()

class Stops(Net):
    def forward(self, x):
        raise Odd("stops in forward")

def stops():
    return Stops()
'''
SHAPE = ["--input-shape", "1,8,8"]
FAST = ["--repeats", "3", "--warmup", "1", "--warmup-s", "0", "--idle-settle-s", "0", "--rounds", "1"]


@pytest.fixture
def models_py(tmp_path):
    path = tmp_path / "models.py"
    path.write_text(MODELS_PY)
    return path


def _cache(tmp_path, names=("mynet", "mynet", "wide")):
    rng = np.random.default_rng(0)
    cache = LogitCache(logits=rng.normal(size=(len(names), 50, 3)).astype(np.float32),
                       labels=rng.integers(0, 3, 50), model_names=tuple(names))
    save_cache(tmp_path / "my_test.npz", cache)
    return tmp_path / "my_test.npz"


def test_profile_trace_derive_and_run_a_users_models(tmp_path, models_py, capsys):
    """The workflow of docs/your-models.md end to end: measured and derived profiles of two of a user's models, and
    runs of a cache naming them on both."""
    spec = f"mynet={models_py}:build,wide={models_py}:wide"
    measured = tmp_path / "my-cpu.json"
    assert main(["profile", spec, *SHAPE, "--batch-sizes", "1-2", "--out", str(measured), *FAST]) == 0
    profile = load_profile(measured)
    assert profile.name == "my-cpu"                       # named after its file, not the shipped CPU profile
    assert {"mynet", "wide"} <= set(profile.models)       # first form bare: the cache finds it by name
    assert profile.models["mynet"].info["implementation"] == f"{models_py}:build"
    assert profile.models["mynet"].info["input_shape"] == [1, 8, 8]

    assert main(["costmodel", "trace", "--models", spec, *SHAPE, "--out-dir", str(tmp_path / "tables")]) == 0
    table = read_table(tmp_path / "tables" / "mynet.json")
    assert table.model == "mynet" and table.params == 4 * 9 + 4 + 4 * 64 * 3 + 3
    assert sorted(table.op) == sorted(["convolution", "relu", "addmm"])
    assert main(["costmodel", "derive", "--device", "orin-nano-8gb", "--name", "orin-nano-mynet",
                 "--table", str(tmp_path / "tables" / "mynet.json"), "--table", str(tmp_path / "tables" / "wide.json"),
                 "--out-dir", str(tmp_path)]) == 0
    derived = load_profile(tmp_path / "orin-nano-mynet.json")
    assert derived.provenance["source"] == "derived"
    assert set(derived.provenance["derived_from"]["given_layer_tables"]) == {"mynet", "wide"}
    assert derived.models["mynet"].info == {"arch": "mynet", "dtype": "fp16", "mode": "cuda-graph", "params": 811}
    assert {"mynet", "mynet-fp32-eager", "wide-fp16-eager"} <= set(derived.models)
    assert not any(m.startswith("resnet") for m in derived.models)      # only the tables unless --models
    median = {m: derived.models[m].batches[1].latency.icdf_ms(np.array([0.5]))[0] for m in ("mynet", "wide")}
    assert median["wide"] > median["mynet"] > 0                       # four times the channels costs more

    cache = _cache(tmp_path)
    for prof in (measured, tmp_path / "orin-nano-mynet.json"):
        out = tmp_path / f"run-{prof.stem}"
        capsys.readouterr()
        assert main(["run", "--logits", str(cache), "--profile", str(prof), "--members", "0,1,2",
                     "--thresholds", "0.5,0.3", "--requests", "200", "--out", str(out)]) == 0
        summary = json.loads((out / "summary.json").read_text())
        assert list(summary["stage_models"].values()) == [["mynet", "mynet", "wide"]]


def test_derive_with_committed_models_beside_a_table(tmp_path, models_py):
    assert main(["costmodel", "trace", "--models", f"mynet={models_py}:INSTANCE", *SHAPE,
                 "--out-dir", str(tmp_path)]) == 0
    assert main(["costmodel", "derive", "--device", "rpi5", "--table", str(tmp_path / "mynet.json"),
                 "--models", "fmnist-cnn-w8", "--out-dir", str(tmp_path)]) == 0
    derived = load_profile(tmp_path / "rpi5.json")
    assert set(derived.models) == {"mynet", "fmnist-cnn-w8"}          # a CPU: fp32 eager, first form bare
    assert derived.models["mynet"].info["params"] == 2 * 9 + 2 + 2 * 64 * 3 + 3


def test_a_users_model_is_built_fresh_each_time(models_py):
    (model,) = parse_models([f"mynet={models_py}:INSTANCE"], (1, 8, 8))
    assert isinstance(model, UserModel) and model.input_shape == (1, 8, 8)
    a, b = model.build(), model.build()
    assert a is not b and not a.training


def test_a_table_round_trips_through_its_file(tmp_path, models_py):
    from simulator.costmodel.trace import trace_model

    table = trace_model(parse_models([f"mynet={models_py}:build"], (1, 8, 8))[0])
    save_table(tmp_path / "t.json", table)
    again = read_table(tmp_path / "t.json")
    assert again.model == table.model and np.array_equal(again.flops, table.flops)


@pytest.mark.parametrize("argv, message", [
    (["profile", "mynet={py}:build", "--batch-sizes", "1"], "model mynet: give its per-sample input shape"),
    (["profile", "resnet18=m.py:build", *SHAPE], "'resnet18' is a built-in model's name"),
    (["profile", "fmnist-cnn-w8", *SHAPE], "the input shape and tokens are for users' models"),
    (["profile", "mynet={py}", *SHAPE], "write NAME=SOURCE:CALLABLE"),
    (["profile", "my net={py}:build", *SHAPE], "NAME in NAME=SOURCE:CALLABLE must be"),
    (["profile", "mynet={py}:build,mynet={py}:wide", *SHAPE], "mynet given twice"),
    (["profile", "mynet={py}:build", "--input-shape", "1,x"], "invalid --input-shape '1,x'"),
    (["profile", "mynet={py}:build", "--input-shape", "0,8"], "invalid input shape (0, 8)"),
    (["profile", "mynet={py}:build", *SHAPE, "--input-tokens", "1"], "invalid --input-tokens 1: the vocabulary size"),
    (["profile", "mynet={py}:build", *SHAPE, "--input-tokens", "x"], "invalid --input-tokens 'x'"),
    (["profile", "fmnist-cnn-w8", "--input-tokens", "9"], "the input shape and tokens are for users' models"),
    (["profile", "mynet={py}:build", *SHAPE, "--input-tokens", "9"],          # a model of floats given ids
     "model mynet: failed to run at batch 1 (fp32, cpu, eager): RuntimeError"),
    (["profile", "mynet=nowhere.py:build", *SHAPE], "model mynet: file nowhere.py does not exist"),
    (["profile", "mynet=no_such_module_xyz:build", *SHAPE], "model mynet: importing no_such_module_xyz failed "
                                                             "(ModuleNotFoundError"),
    (["profile", "mynet={py}:missing", *SHAPE], "has no 'missing'"),
    (["profile", "mynet={py}:NOT_A_MODULE", *SHAPE], "is neither a torch.nn.Module nor callable"),
    (["profile", "mynet={py}:broken", *SHAPE], "models.py:broken() failed (RuntimeError: no weights here)"),
    (["profile", "mynet={py}:exits", *SHAPE], "models.py:exits() exited (SystemExit: 3)"),
    (["profile", "mynet={py}:odd", *SHAPE], "models.py:odd() failed (Odd: not an Exception)"),
    (["profile", "mynet={py}:LOCKED", *SHAPE], "model mynet: copying it failed (TypeError"),
    (["profile", "mynet={py}:returns_list", *SHAPE], "returned list, not a torch.nn.Module"),
    (["profile", "mynet={py}:build", "--input-shape", "3,8,8"], "model mynet: failed to run at batch 1"),
    (["profile", "mynet={py}:flaky", *SHAPE, "--batch-sizes", "1,2"],        # fails in the warm-up, not at first
     "model mynet: failed to run at batch 1 (fp32, cpu, eager): RuntimeError: worn out"),
    (["profile", "mynet={py}:returns_nothing", *SHAPE], "it returned NoneType, which holds no tensor"),
    (["profile", "mynet={py}:stops", *SHAPE], "model mynet: failed to run at batch 1 (fp32, cpu, eager): Odd: stops"),
    (["costmodel", "trace", "--models", "mynet={py}:exits_in_forward", *SHAPE, "--out-dir", "{tmp}/t"],
     "model mynet: failed to run on an input of float32 values of shape [2, 1, 8, 8] (SystemExit: 5)"),    # its 2nd call
    (["profile", "mynet={py}:exits_in_forward", *SHAPE], "model mynet: failed to run at batch 1 (fp32, cpu, eager): "
                                                         "SystemExit: 5"),
    (["costmodel", "trace", "--models", "mynet={py}:build", *SHAPE], "give --out-dir for your own models"),
    (["costmodel", "trace", "--models", "mynet={py}:build", "--input-shape", "3,8,8", "--out-dir", "{tmp}/t"],
     "model mynet: failed to run on an input of float32 values of shape [1, 3, 8, 8] (RuntimeError"),
    (["costmodel", "trace", "--models", "mynet={py}:build", "--input-shape", "1048576,1048576", "--out-dir",
      "{tmp}/t"], "model mynet: failed to run on an input of float32 values of shape [1, 1048576, 1048576]"),
    (["costmodel", "trace", "--models", "mynet={py}:folds", *SHAPE, "--out-dir", "{tmp}/t"],
     "model mynet: 192 FLOPs per sample at batch 2 against 384 at batch 1"),
    (["costmodel", "derive", "--table", "{tmp}/t.json"], "derive: give --device with --table or --models"),
    (["costmodel", "derive", "--device", "rpi5", "--models", "a={py}:build"], "is a model of yours: trace it first"),
    (["costmodel", "derive", "--input-shape", "1,8,8"], "derive does not take --input-shape"),
    (["costmodel", "devices", "--table", "t.json"], "devices does not take --table"),
    (["costmodel", "derive", "--device", "rpi5", "--table", "{tmp}/none.json", "--out-dir", "{tmp}"],
     "layer table: file"),
    (["costmodel", "derive", "--device", "rpi5", "--table", "{py}", "--out-dir", "{tmp}"], "is not valid JSON"),
    (["costmodel", "derive", "--device", "rpi5", "--models", "nope", "--out-dir", "{tmp}"],
     "no layer table for model 'nope'"),
])
def test_bad_input_is_one_line_and_writes_nothing(tmp_path, models_py, capsys, argv, message):
    argv = [a.format(py=models_py, tmp=tmp_path) for a in argv]
    if argv[0] == "profile":
        argv += ["--out", str(tmp_path / "p.json"), *FAST]
    before = sorted(p.name for p in tmp_path.rglob("*"))
    assert message in cli_error(capsys, argv)
    assert sorted(p.name for p in tmp_path.rglob("*") if p.name != "__pycache__") == \
        [n for n in before if n != "__pycache__"]


def test_a_table_named_as_a_derived_model_is_refused(tmp_path, models_py, capsys):
    assert main(["costmodel", "trace", "--models", "resnet18", "--out-dir", str(tmp_path)]) == 0
    err = cli_error(capsys, ["costmodel", "derive", "--device", "rpi5", "--table", str(tmp_path / "resnet18.json"),
                             "--models", "resnet18", "--out-dir", str(tmp_path)])
    assert "derive: model resnet18 given twice" in err
    assert not (tmp_path / "rpi5.json").exists()


def test_parse_input_shape():
    assert parse_input_shape("3,32,32") == parse_input_shape("3x32x32") == (3, 32, 32)
    with pytest.raises(FlexsimError, match="1 to 8 positive integers"):
        parse_input_shape("1,1,1,1,1,1,1,1,1")


def test_a_saved_cache_names_its_models(tmp_path):
    cache = load_cache(_cache(tmp_path, ("a", "b")))
    assert cache.model_names == ("a", "b") and cache.logits.shape == (2, 50, 3)


def test_profiles_lists_a_profile_file_with_each_models_cost(tmp_path, models_py, capsys):
    assert main(["costmodel", "trace", "--models", f"mynet={models_py}:build", *SHAPE,
                 "--out-dir", str(tmp_path)]) == 0
    assert main(["costmodel", "derive", "--device", "rpi5", "--table", str(tmp_path / "mynet.json"),
                 "--out-dir", str(tmp_path)]) == 0
    capsys.readouterr()
    assert main(["profiles", str(tmp_path / "rpi5.json"), "h100", "--models"]) == 0
    out = capsys.readouterr().out
    assert str(tmp_path / "rpi5.json") in out and "h100" in out
    median = load_profile(tmp_path / "rpi5.json").models["mynet"].batches[1].latency.icdf_ms(np.array([0.5]))[0]
    line = next(x for x in out.splitlines() if x.strip().startswith("mynet "))
    assert f"batch 1: p50 {median:.4g} ms, energy not measured" in line
    assert main(["profiles", "h100", str(tmp_path / "nope.json")]) == 2
    captured = capsys.readouterr()
    assert f"file {tmp_path / 'nope.json'} does not exist" in captured.err
    assert captured.out == ""                           # every profile is checked before any is listed


# ------------------------------------------------------------------------------------- what a first user ran into

def _trace(tmp_path, code: str, attribute: str, shape):
    from simulator.costmodel.trace import trace_model

    path = tmp_path / f"m_{attribute.lower()}.py"
    path.write_text(code)
    return trace_model(parse_models([f"m={path}:{attribute}"], shape)[0])


def test_attention_is_counted_as_matrix_products(tmp_path):
    """PyTorch's fused transformer fast path and the CPU's fused attention kernel were counted as one operation per
    output element: a transformer layer came out 10-500x too cheap."""
    code = ("import torch\n"
            "def layer():\n"
            "    return torch.nn.TransformerEncoderLayer(32, 4, dim_feedforward=64, batch_first=True, dropout=0.0)\n")
    table = _trace(tmp_path, code, "layer", (16, 32))
    tokens, d, ff = 16, 32, 64
    expected = 2 * tokens * d * 4 * d + 2 * 2 * tokens * tokens * d + 2 * 2 * tokens * d * ff
    assert table.flops[table.kind_mask("matmul")].sum() == pytest.approx(expected, rel=0.01)
    assert torch.backends.mha.get_fastpath_enabled()          # switched back on after tracing


CROSS_ATTENTION = """
import torch
class Cross(torch.nn.Module):
    def __init__(self, learned_queries):
        super().__init__()
        self.norm = None if learned_queries else torch.nn.LayerNorm(32)
        self.attn = torch.nn.MultiheadAttention(32, 4, batch_first=True)
        self.queries = torch.nn.Parameter(torch.randn(1, 4, 32)) if learned_queries else None

    def forward(self, x):
        q = self.norm(x) if self.queries is None else self.queries.expand(x.shape[0], -1, -1)
        return self.attn(q, x, x, need_weights=False)[0]

def tokens():
    return Cross(False)

def pooled():
    return Cross(True)
"""


@pytest.mark.parametrize("attribute", ["tokens", "pooled"])
def test_slices_and_expansions_of_a_weight_are_weights(tmp_path, attribute):
    """With queries other than the keys, MultiheadAttention splits its packed weight and multiplies by the key and
    value slice, which starts inside the weight's memory; learned queries are a weight expanded over the batch.
    Both were counted as activations: half the weights, their bytes growing with the batch."""
    table = _trace(tmp_path, CROSS_ATTENTION, attribute, (16, 32))
    assert table.param_elems.sum() == table.params
    assert table.at(2).param_elems.sum() == table.params


def test_a_model_whose_kernels_change_with_the_batch_holds_its_batched_kernels(tmp_path):
    """At batch 1 PyTorch takes the transposed query of attention as contiguous; from batch 2 it copies it first
    (and a linear layer on it becomes mm + add): the batch-2 kernels cost batch sizes from 2 on."""
    from simulator.costmodel.devices import device_spec
    from simulator.costmodel.latency import LatencyParams, predict_latency_ms

    table = _trace(tmp_path, CROSS_ATTENTION, "tokens", (16, 32))
    batched = table.batched
    assert batched is not None and batched.n_kernels > table.n_kernels and "clone" in batched.op
    assert batched.act_elems.sum() > 1.2 * table.act_elems.sum()
    assert batched.flops.sum() == pytest.approx(table.flops.sum(), rel=0.03)        # the copies' elements
    spec, params = device_spec("orin-nano-8gb"), LatencyParams()
    scaled = dataclasses.replace(table, batched=None)
    assert predict_latency_ms(table, 1, "fp16", "graph", spec, params) == \
        predict_latency_ms(scaled, 1, "fp16", "graph", spec, params)
    assert predict_latency_ms(table, 8, "fp16", "graph", spec, params) > \
        predict_latency_ms(scaled, 8, "fp16", "graph", spec, params)
    save_table(tmp_path / "t.json", table)
    again = read_table(tmp_path / "t.json")
    assert again.batched.op == batched.op and np.array_equal(again.batched.act_elems, batched.act_elems)
    cnn = _trace(tmp_path, MODELS_PY, "build", (1, 8, 8))
    assert cnn.batched is None


TOKENS = """
import torch

class Tagger(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.embed = torch.nn.Embedding(500, 16)
        self.head = torch.nn.Linear(16, 3)

    def forward(self, ids):
        return self.head(self.embed(ids).mean(1))

def build():
    return Tagger()
"""


def test_a_model_of_token_ids_is_traced_and_profiled_on_ids(tmp_path, capsys):
    """--input-tokens: the inputs are token ids below the vocabulary size; an embedding reads the rows it gathers,
    not its whole weight."""
    from simulator.costmodel.trace import trace_model

    (tmp_path / "tok.py").write_text(TOKENS)
    table = trace_model(parse_models([f"tok={tmp_path / 'tok.py'}:build"], (12,), 500)[0])
    row = table.op.index("embedding")
    assert table.param_elems[row] == 0 and table.act_elems[row] == 12 + 2 * 12 * 16
    assert table.param_elems.sum() == table.params - 500 * 16 and "token ids below 500" in table.traced_with
    out = tmp_path / "p.json"
    assert main(["profile", f"tok={tmp_path / 'tok.py'}:build", "--input-shape", "12", "--input-tokens", "500",
                 "--batch-sizes", "1,2", "--out", str(out), *FAST]) == 0
    assert load_profile(out).models["tok"].info["input_tokens"] == 500
    save_table(tmp_path / "tok.json", table)
    assert read_table(tmp_path / "tok.json").input_tokens == 500
    other = trace_model(parse_models([f"tok={tmp_path / 'tok.py'}:build"], (24,), 500)[0])
    save_table(tmp_path / "tok24.json", other)
    assert ("the table of tok was traced on shape [24] of token ids below 500, but profile p measured tok on "
            "shape [12] of token ids below 500") in cli_error(capsys, [
                "costmodel", "accuracy", "--profile", str(out), "--table", str(tmp_path / "tok24.json")])
    with pytest.raises(FlexsimError, match="invalid --input-tokens 1"):
        trace_model(parse_models([f"tok={tmp_path / 'tok.py'}:build"], (12,), 1)[0])
    assert "on an input of float32 values of shape [1, 12]" in cli_error(capsys, [
        "costmodel", "trace", "--models", f"tok={tmp_path / 'tok.py'}:build", "--input-shape", "12",
        "--out-dir", str(tmp_path / "t")])


def test_a_linear_layer_over_tokens_is_a_gemm_on_a_cpu(tmp_path):
    """A linear layer on [tokens, features] folds the batch into its rows: 128 rows per sample, not one."""
    from simulator.costmodel.devices import device_spec
    from simulator.costmodel.latency import gemv_rows

    code = "import torch\ndef lin():\n    return torch.nn.Linear(64, 64)\n"
    table = _trace(tmp_path, code, "lin", (128, 64))
    assert table.shapes["in_shape"] == [[128, 64]] and table.shapes["out_shape"] == [[128, 64]]
    assert gemv_rows(table, 1, device_spec("rpi5")).tolist() == [0.0]
    flat = _trace(tmp_path, code, "lin", (64,))
    assert flat.shapes["in_shape"] == [[64]] and gemv_rows(flat, 2, device_spec("rpi5")).tolist() == [2.0]


def test_a_grouped_convolution_is_not_depthwise(tmp_path):
    code = ("import torch\n"
            "def grouped():\n    return torch.nn.Conv2d(8, 8, 3, groups=2)\n"
            "def depthwise():\n    return torch.nn.Conv2d(8, 8, 3, groups=8)\n")
    assert _trace(tmp_path, code, "grouped", (8, 8, 8)).kind_mask("conv").all()
    assert _trace(tmp_path, code, "depthwise", (8, 8, 8)).kind_mask("dwconv").all()


def test_model_files_import_as_scripts_do(tmp_path, monkeypatch):
    """A dataclass under `from __future__ import annotations`, a module-level argparse, siblings of the same name in
    two folders (each file gets its own), a sibling imported inside the builder, a module in the current folder."""
    for folder, width in (("a", 3), ("b", 5)):
        (tmp_path / folder).mkdir()
        (tmp_path / folder / "blocks.py").write_text(f"import torch\nWIDTH = {width}\n")
        (tmp_path / folder / "net.py").write_text(
            "from __future__ import annotations\nimport argparse\nfrom dataclasses import dataclass\nimport torch\n"
            "from blocks import WIDTH\n"
            "args = argparse.ArgumentParser().add_argument('--lr', type=float, default=0.1) and None\n"
            "options = argparse.ArgumentParser().parse_args()\n"
            "@dataclass\nclass Config:\n    width: int = WIDTH\n"
            "def build():\n    import blocks\n    return torch.nn.Linear(4, blocks.WIDTH + Config().width - WIDTH)\n")
    a, b = parse_models([f"a={tmp_path / 'a' / 'net.py'}:build", f"b={tmp_path / 'b' / 'net.py'}:build"], (4,))
    assert a.build().out_features == 3 and b.build().out_features == 5
    assert not any(k.startswith(FILE_MODULE) or k == "blocks" for k in __import__("sys").modules)
    monkeypatch.chdir(tmp_path / "b")
    (model,) = parse_models(["c=blocks:WIDTH"], (4,))
    with pytest.raises(FlexsimError, match="model c: blocks:WIDTH is neither a torch.nn.Module nor callable"):
        model.build()                                   # found in the current folder, as `python -m` would


def test_profile_model_names_may_not_collide(tmp_path, models_py, capsys):
    err = cli_error(capsys, ["profile", f"a={models_py}:build,a-fp32-eager={models_py}:wide", *SHAPE,
                             "--dtypes", "bf16,fp32", "--out", str(tmp_path / "p.json"), *FAST])
    assert "profile: models a and a-fp32-eager would both give the profile model 'a-fp32-eager'" in err
    assert not (tmp_path / "p.json").exists()


def test_derive_refuses_names_that_collide_and_replacing_its_input(tmp_path, models_py, capsys):
    mine = _trace(tmp_path, MODELS_PY, "build", (1, 8, 8))
    save_table(tmp_path / "mlp.json", mine.__class__(**{**mine.__dict__, "model": "mlp"}))
    save_table(tmp_path / "mlp2.json", mine.__class__(**{**mine.__dict__, "model": "mlp-fp16-eager"}))
    err = cli_error(capsys, ["costmodel", "derive", "--device", "orin-nano-8gb", "--table", str(tmp_path / "mlp.json"),
                             "--table", str(tmp_path / "mlp2.json"), "--out-dir", str(tmp_path)])
    assert "derive: models mlp and mlp-fp16-eager would both give the profile model 'mlp-fp16-eager'" in err
    err = cli_error(capsys, ["costmodel", "derive", "--device", "rpi5", "--table", str(tmp_path / "mlp.json"),
                             "--name", "mlp", "--out-dir", str(tmp_path)])
    assert f"derive: {tmp_path / 'mlp.json'} is an input of this command" in err
    assert read_table(tmp_path / "mlp.json").model == "mlp"


@pytest.mark.parametrize("change, message", [
    ({"model": ""}, "model name '' must be letters"),
    ({"model": "../evil"}, "model name '../evil' must be letters"),
    ({"model": None}, "the model and each op must be a name"),
    ({"params": -1}, "whole numbers from 0 to 1e+18, got -1"),
    ({"input_shape": [0]}, "input_shape positive integers"),
    ({"kernel": [2.5]}, "got 2.5"),
    ({"flops": [1e300]}, "counts must be finite, >= 0 and <= 1e+18"),
    ({"flops": [[1]]}, "flops must be a list of numbers"),
    ({"flops": ["1"]}, "flops must be a list of numbers"),
    ({"op": [5]}, "each op must be a name"),
    ({"params": 10 ** 40}, "from 0 to 1e+18"),
    ({"batched": 3}, "batched must be a layer table (an object)"),
    ({"kind": ["nope"]}, "kind 'nope' must be one of conv, dwconv, matmul, other"),
    ({"batched": ("model", "other")}, "batched must be a table of the same model, input shape and params"),
    ({"batched": ("flops", ["x"])}, "flops must be a list of numbers"),
])
def test_a_layer_table_file_is_checked(tmp_path, models_py, change, message):
    obj = _trace(tmp_path, "import torch\ndef lin():\n    return torch.nn.Linear(4, 4)\n", "lin", (4,)).to_json()
    for key, value in change.items():
        if key == "batched" and isinstance(value, tuple):        # a copy of the table itself with one field spoilt
            inner, (field, spoilt) = json.loads(json.dumps(obj)), value
            (inner["columns"] if field in inner["columns"] else inner)[field] = spoilt
            value = inner
        (obj["columns"] if key in obj["columns"] else obj)[key] = value
    (tmp_path / "t.json").write_text(json.dumps(obj))
    with pytest.raises(FlexsimError, match=f"layer table {tmp_path / 't.json'}( \\(batched\\))?: .*"
                       + __import__("re").escape(message)):
        read_table(tmp_path / "t.json")


def test_unseen_kernels_are_named_in_the_derived_profiles_caveats(tmp_path):
    from simulator.costmodel.derive import derive_profile
    from simulator.costmodel.devices import device_spec

    code = "import torch\ndef act():\n    return torch.nn.Sequential(torch.nn.Linear(4, 4), torch.nn.GELU())\n"
    profile = derive_profile("p", device_spec("a100-sxm"), load_profile("h100"), batch_sizes=(1,),
                             models=(), tables=[_trace(tmp_path, code, "act", (4,))])
    assert profile.provenance["caveats"][-1].endswith("(unchecked): gelu")


def test_outputs_of_several_tensors_are_copied_to_the_host(monkeypatch):
    from dataclasses import dataclass

    from simulator.profiler.targets import to_host

    @dataclass
    class Out:
        logits: object
        extra: object

    copied = []
    monkeypatch.setattr(torch.Tensor, "to", lambda self, device: copied.append(device) or self)
    t = torch.ones(2)
    out = to_host((t, {"a": t, "b": [t, 3]}, Out(t, (t, None))))
    assert copied == ["cpu"] * 5 and out[1]["b"][1] == 3 and out[2]["extra"][1] is None


def test_siblings_of_a_module_in_the_current_folder_do_not_leak_and_packages_below_it_stay(tmp_path, monkeypatch):
    """The siblings of a module source are forgotten after it is built, as a file's are; a package that merely lies
    below the folder (a virtual environment there) is left loaded."""
    import sys

    for folder, width in (("here", 3), ("there", 5)):
        (tmp_path / folder).mkdir()
        (tmp_path / folder / "blocks.py").write_text(f"WIDTH = {width}\n")
        (tmp_path / folder / "nets.py").write_text("import torch\nimport blocks\n"
                                                   "def build():\n    return torch.nn.Linear(4, blocks.WIDTH)\n")
    site = tmp_path / "here" / ".venv" / "site"
    (site / "deeppkg").mkdir(parents=True)
    (site / "deeppkg" / "__init__.py").write_text("LOADS = []\nLOADS.append(1)\n")
    (tmp_path / "here" / "nets.py").write_text("import torch\nimport blocks\nimport deeppkg\n"
                                               "def build():\n    return torch.nn.Linear(4, blocks.WIDTH)\n")
    monkeypatch.chdir(tmp_path / "here")
    monkeypatch.syspath_prepend(str(site))
    a, b = parse_models(["a=nets:build", f"b={tmp_path / 'there' / 'nets.py'}:build"], (4,))
    assert a.build().out_features == 3 and b.build().out_features == 5 and a.build().out_features == 3
    assert sys.modules["deeppkg"].LOADS == [1] and "blocks" not in sys.modules and "nets" not in sys.modules


def test_update_refuses_to_replace_another_models_entry(tmp_path, models_py, capsys):
    out = tmp_path / "p.json"
    assert main(["profile", f"b={models_py}:build", *SHAPE, "--dtypes", "fp32,bf16", "--out", str(out), *FAST]) == 0
    before = out.read_bytes()
    err = cli_error(capsys, ["profile", f"b-bf16-eager={models_py}:wide", *SHAPE, "--dtypes", "bf16", "--update",
                             "--out", str(out), *FAST])
    assert "profile --update: p's model 'b-bf16-eager' is b's; this run's b-bf16-eager would replace it" in err
    assert out.read_bytes() == before
    assert main(["profile", f"b={models_py}:wide", *SHAPE, "--dtypes", "bf16", "--update", "--out", str(out),
                 *FAST]) == 0                           # b's own bf16 form measured again: allowed
    assert set(load_profile(out).models) == {"b", "b-bf16-eager"}


def test_accuracy_leaves_a_users_model_out_like_the_built_in_ones(tmp_path, models_py, capsys):
    measured = tmp_path / "mine.json"
    assert main(["profile", f"fmnist-cnn-w8,mynet={models_py}:build", *SHAPE, "--batch-sizes", "1-2", "--threads", "1",
                 "--out", str(measured), *FAST]) == 0
    assert main(["costmodel", "trace", "--models", f"mynet={models_py}:build", *SHAPE,
                 "--out-dir", str(tmp_path)]) == 0
    capsys.readouterr()
    assert main(["costmodel", "accuracy", "--profile", str(measured), "--table", str(tmp_path / "mynet.json")]) == 0
    out = capsys.readouterr().out
    assert "| latency, mynet | 2 |" in out and "| latency, fmnist-cnn-w8 | 2 |" in out
    err = cli_error(capsys, ["costmodel", "accuracy", "--profile", str(measured)])
    assert "accuracy: profile mine measured 1 model(s) with a layer table (fmnist-cnn-w8); leaving one out" in err
    # beside the shipped profile's models, without its table: the report says the model was not checked
    from simulator.costmodel.points import untabled_models

    merged = json.loads(profile_file("cpu-amd-epyc-2c").read_text())
    merged["models"]["mynet"] = json.loads(measured.read_text())["models"]["mynet"]
    (tmp_path / "merged.json").write_text(json.dumps(merged))
    assert untabled_models(load_profile(tmp_path / "merged.json")) == ["mynet"]
    assert main(["costmodel", "accuracy", "--profile", str(tmp_path / "merged.json")]) == 0
    out = capsys.readouterr().out
    assert "Not checked: mynet, measured in this profile without a layer table" in out and "latency, mynet" not in out
    assert "--table needs --profile" in cli_error(capsys, ["costmodel", "accuracy", "--table", "t.json"])
    from simulator.costmodel.layers import given_tables, known_tables

    with pytest.raises(FlexsimError, match="resnet18 given twice or named as a committed table"):
        with given_tables([read_table(tmp_path / "mynet.json").__class__(
                **{**read_table(tmp_path / "mynet.json").__dict__, "model": "resnet18"})]):
            pass
    assert "mynet" not in known_tables()


# --------------------------------------------------------------------------------------------- your own caches

def _named_cache(path, n_members, names=None, n_samples=60, seed=0):
    rng = np.random.default_rng(seed)
    arrays = {"logits": rng.normal(size=(n_members, n_samples, 4)).astype(np.float32),
              "labels": rng.integers(0, 4, n_samples)}
    if names is not None:
        arrays["model_names"] = np.array(names)
    np.savez(path, **arrays)
    return str(path)


def test_descent_chooses_thresholds_for_an_ensemble_the_grid_cannot_hold(tmp_path, capsys):
    """Descent never enumerates the grid: 9 stages at 11 values (2e8 combinations) is over the grid's limit."""
    names = ["resnet18-fp16-graph"] * 9
    test = _named_cache(tmp_path / "e_test.npz", 9, names)
    _named_cache(tmp_path / "e_train.npz", 9, names, seed=1)
    members = ["--members", "0,1,2,3,4,5,6,7,8", "--profile", "a100"]
    assert main(["optimize", "--logits", test, *members, "--method", "descent"]) == 0
    assert "invalid grid" in cli_error(capsys, ["optimize", "--logits", test, *members])


def test_training_and_held_out_caches_are_costed_alike(tmp_path, capsys):
    test = _named_cache(tmp_path / "n_test.npz", 4, ["resnet18-fp16-eager"] * 4)
    train = _named_cache(tmp_path / "plain.npz", 4, seed=1)
    args = ["optimize", "--logits", test, "--train-logits", train, "--members", "0,1,2,3"]
    err = cli_error(capsys, args)
    assert "the training and held-out caches would be costed on different stage models, resnet50-fp16-graph-m0," in err
    assert main([*args, "--models", "resnet18-fp16-eager"]) == 0
    assert "(stage models resnet18-fp16-eager x4)" in capsys.readouterr().out
    same = ["optimize", "--logits", test, "--train-logits", str(tmp_path / "." / "n_test.npz"), "--members", "0,1,2,3"]
    assert "is the training split" in cli_error(capsys, same)
    assert "is the training split 'fmnist-test' itself" in cli_error(
        capsys, ["optimize", "--logits", "fmnist", "--train-logits", "fmnist-test"])


def test_a_cache_naming_some_models_the_profile_lacks_is_refused(tmp_path, capsys):
    partly = _named_cache(tmp_path / "p.npz", 2, ["resnet18-fp16-eager", "nosuchnet"])
    err = cli_error(capsys, ["run", "--logits", partly, "--members", "0,1", "--thresholds", "0.5", "--requests", "50"])
    assert "profile h100 has the cache's member model(s) resnet18-fp16-eager but not nosuchnet" in err
    raw = _named_cache(tmp_path / "b.npz", 2, [b"resnet18-fp16-eager", b"resnet18-fp32-eager"])
    assert load_cache(raw).model_names == ("resnet18-fp16-eager", "resnet18-fp32-eager")
    numbers = _named_cache(tmp_path / "n.npz", 2, [0, 1])
    with pytest.raises(FlexsimError, match="model_names must be a 1-D array of names \\(strings\\), got int64"):
        load_cache(numbers)
    with pytest.raises(FlexsimError, match="cost_scale must be a NumPy array \\[member, sample\\], got list"):
        LogitCache(logits=np.zeros((1, 2, 3), np.float32), labels=np.zeros(2, np.int64), cost_scale=[[1.0, 1.0]])


def test_the_defaults_are_named_as_such_for_a_cache_of_yours(tmp_path, capsys):
    small = _named_cache(tmp_path / "s.npz", 4, ["resnet18-fp16-eager"] * 4)
    err = cli_error(capsys, ["run", "--logits", small, "--requests", "50"])
    assert "invalid members[4] = 4: the cache" in err and "(the default members, the shipped ensemble's" in err
    err = cli_error(capsys, ["run", "--logits", small, "--members", "0,1,2,3", "--requests", "50"])
    assert "the default 0.4,0.5,0.2,0.2,0.2 (for the shipped 6-member ensemble) has 5 values for 4 stages: give " \
        "--thresholds with 3" in err


def test_chosen_toml_runs_from_another_folder(tmp_path, monkeypatch, capsys):
    folder = tmp_path / "work"
    folder.mkdir()
    monkeypatch.chdir(folder)
    _named_cache(folder / "c_test.npz", 3, ["resnet18-fp16-eager"] * 3)
    _named_cache(folder / "c_train.npz", 3, ["resnet18-fp16-eager"] * 3, seed=1)
    assert main(["optimize", "--logits", "c_test.npz", "--members", "0,1,2", "--out", "opt"]) == 0
    assert f'logits = "{folder / "c_test.npz"}"' in (folder / "opt" / "chosen.toml").read_text()
    monkeypatch.chdir(tmp_path)
    assert main(["run", str(folder / "opt" / "chosen.toml"), "--requests", "50"]) == 0
