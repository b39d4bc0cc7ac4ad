"""A user's policy through the configuration: `simulate`, `sweep`, TOML files and the command line (policy ``custom``
with ``custom_policy`` and ``custom_params``), exactly as composing it by hand, and loaded once per process."""

import dataclasses
import json

import numpy as np
import pytest
from numba import njit

from simulator import RunConfig, prepare, run_inputs, simulate
from simulator.cli import main
from simulator.config import from_mapping
from simulator.errors import FlexsimError
from simulator.policies import CustomPolicy, Threshold, compose, custom_function
from simulator.sweep import parse_vary, sweep, vary_from_table, write_sweep
from tests.helpers import cli_error

POLICY_PY = '''
from numba import njit


@njit
def slack_threshold(state, params):
    slack = state.deadline_s - state.elapsed_s - state.next_latency_s
    threshold = params[0] if slack > params[1] else params[2]
    return state.signal >= threshold
'''
PARAMS = (0.8, 0.004, 0.3)
BASE = dict(policy=("threshold", "custom"), custom_params=PARAMS, deadline_ms=10.0, requests=1500)


@pytest.fixture(scope="module")
def spec(tmp_path_factory) -> str:
    """``FILE.py:slack_threshold`` of one file for the whole module: loaded, and the engine compiled for it, once."""
    path = tmp_path_factory.mktemp("policy") / "my_policy.py"
    path.write_text(POLICY_PY)
    return f"{path}:slack_threshold"


@njit
def stop_when_sure(state, params):
    """A policy given to `simulate` as the function itself."""
    return state.signal >= params[0]


def columns(result) -> dict:
    return result.requests.to_dict()


def assert_same_requests(a, b) -> None:
    a, b = columns(a), columns(b)
    assert list(a) == list(b)
    for name in a:
        np.testing.assert_array_equal(a[name], b[name], err_msg=name)


def test_simulate_is_the_composition_built_by_hand(spec):
    result = simulate(custom_policy=spec, **BASE)
    config = RunConfig(deadline_ms=10.0, requests=1500)                 # policy: threshold alone
    inputs = prepare(config)
    policy = compose([Threshold(config.thresholds), CustomPolicy(custom_function(spec), PARAMS)], inputs.n_stages)
    assert_same_requests(result, run_inputs(dataclasses.replace(inputs, policy=policy)))
    alone = simulate(policy=("threshold",), deadline_ms=10.0, requests=1500)
    assert (result.requests.stages_run < alone.requests.stages_run).any()          # the custom policy decides


def test_both_engines_agree_on_a_custom_policy_from_a_file(spec):
    assert_same_requests(simulate(custom_policy=spec, **BASE), simulate(custom_policy=spec, engine="simpy", **BASE))


def test_the_command_line_runs_a_custom_policy_and_records_it(spec, tmp_path, capsys):
    out = tmp_path / "run"
    argv = ["run", "--policy", "threshold,custom", "--custom-policy", spec, "--custom-params", "0.8,0.004,0.3",
            "--deadline-ms", "10", "--requests", "1500", "--out", str(out), "--json"]
    assert main(argv) == 0
    printed = json.loads(capsys.readouterr().out)
    expected = simulate(custom_policy=spec, **BASE).summary
    assert printed["mean_stages"] == expected.mean_stages and printed["accuracy"] == expected.accuracy
    saved = json.loads((out / "summary.json").read_text())["config"]
    assert saved["policy"] == ["threshold", "custom"] and saved["custom_policy"] == spec
    assert saved["custom_params"] == [0.8, 0.004, 0.3]
    assert from_mapping({k: saved[k] for k in ("policy", "custom_policy", "custom_params")}) == \
        RunConfig(policy=("threshold", "custom"), custom_policy=spec, custom_params=PARAMS)


def test_a_config_file_takes_the_same_keys(spec, tmp_path, capsys):
    study = tmp_path / "study.toml"
    study.write_text(f"[run]\npolicy = ['threshold', 'custom']\ncustom_policy = '{spec}'\n"
                     "custom_params = [0.8, 0.004, 0.3]\ndeadline_ms = 10\nrequests = 1500\n")
    assert main(["run", str(study), "--json"]) == 0
    expected = simulate(custom_policy=spec, **BASE).summary
    assert json.loads(capsys.readouterr().out)["mean_stages"] == expected.mean_stages
    assert from_mapping({"policy": "custom", "custom_policy": spec, "custom_params": 0.5}).custom_params == (0.5,)
    with pytest.raises(FlexsimError, match=r"custom_params = '0.8,0.3' is one string; write a TOML array, e.g. "
                                           r"custom_params = \[0.8, 0.3\]"):
        from_mapping({"policy": "custom", "custom_policy": spec, "custom_params": "0.8,0.3"})


def test_a_sweep_loads_the_policy_once_and_compiles_the_engine_once(tmp_path, capsys):
    from simulator.engine_numba import _custom_kernel

    loads = tmp_path / "loads.txt"
    policy = tmp_path / "counted.py"
    policy.write_text(f"with open({str(loads)!r}, 'a') as log:\n    log.write('loaded\\n')\n" + POLICY_PY)
    spec = f"{policy}:slack_threshold"
    compiled = len(_custom_kernel().signatures)
    out = tmp_path / "sweep"
    assert main(["sweep", "--policy", "threshold,custom", "--custom-policy", spec, "--custom-params",
                 "0.8,0.004,0.3", "--requests", "1000", "--vary", "deadline_ms=5|10", "--out", str(out)]) == 0
    assert loads.read_text() == "loaded\n"
    assert len(_custom_kernel().signatures) == compiled + 1
    rows = (out / "runs.csv").read_text().splitlines()
    assert len(rows) == 3 and [row.split(",")[0] for row in rows[1:]] == ["5.0", "10.0"]
    assert json.loads((out / "sweep.json").read_text())["config"]["custom_policy"] == spec
    result = sweep(vary={"custom_params": (PARAMS, (0.9, 0.002, 0.2))}, policy=("threshold", "custom"),
                   custom_policy=spec, deadline_ms=5.0, requests=1000)
    assert loads.read_text() == "loaded\n" and len(_custom_kernel().signatures) == compiled + 1
    first, second = result.means()
    assert first["custom_params"] == PARAMS and first["mean_stages"] != second["mean_stages"]


def test_custom_params_vary_as_a_list_field():
    assert parse_vary("custom-params=0.8,0.004,0.3|0.9,0.002,0.2") == ("custom_params", (PARAMS, (0.9, 0.002, 0.2)))
    assert vary_from_table({"custom_params": [[0.8, 0.004, 0.3], [0.9, 0.002, 0.2]]}, "study.toml") == \
        ({"custom_params": (PARAMS, (0.9, 0.002, 0.2))}, None)


def test_the_flags_say_what_they_take(capsys):
    with pytest.raises(SystemExit):
        main(["run", "--help"])
    text = " ".join(capsys.readouterr().out.split())
    assert "load-adaptive, oracle, custom (default: threshold)" in text
    assert "--custom-policy FILE.py:FUNCTION custom: your policy, a Numba @njit function" in text
    assert "--custom-params P0,P1,... custom: the float parameters your policy gets as params (default: none)" in text


def test_a_function_object_runs_and_is_recorded_as_module_and_name(tmp_path):
    """Given the function itself (defined in a notebook, say): the same runs; outputs record ``module:qualname``."""
    base = dict(policy=("threshold", "custom"), custom_params=(0.5,), requests=300, engine="simpy")
    config = RunConfig(custom_policy=stop_when_sure, **base)
    assert RunConfig(**config.to_dict()) == config and config.custom_policy is stop_when_sure
    result = simulate(config, out=str(tmp_path / "run"))
    built = prepare(RunConfig(requests=300))                       # policy: threshold alone
    policy = compose([Threshold(config.thresholds), CustomPolicy(stop_when_sure, (0.5,))], built.n_stages)
    assert_same_requests(result, run_inputs(dataclasses.replace(built, policy=policy), "simpy"))
    text = f"{__name__}:stop_when_sure"
    assert json.loads((tmp_path / "run" / "summary.json").read_text())["config"]["custom_policy"] == text
    assert custom_function(text) is stop_when_sure              # where its module is importable, the text loads it
    study = sweep(vary={"custom_params": ((0.5,), (0.9,))}, custom_policy=stop_when_sure, **base)
    write_sweep(study, tmp_path / "sweep")
    assert json.loads((tmp_path / "sweep" / "sweep.json").read_text())["config"]["custom_policy"] == text
    study = sweep(vary={"custom_policy": (stop_when_sure,)}, **base)
    write_sweep(study, tmp_path / "by-function")
    assert (tmp_path / "by-function" / "runs.csv").read_text().splitlines()[1].startswith(f"{text},0,300,")
    assert json.loads((tmp_path / "by-function" / "sweep.json").read_text())["vary"] == {"custom_policy": [text]}
    assert study.text().splitlines()[1].lstrip().startswith(text)


PLAIN_PY = '''
from numba import njit


def not_compiled(state, params):
    return True


@njit
def one_argument(state):
    return True


@njit
def half(state, params):
    return 0.5


@njit
def past(state, params):
    return state.signal >= params[3]
'''


@pytest.mark.parametrize("flags, message", [
    (["--policy", "threshold,custom"], "policy custom needs custom_policy (--custom-policy FILE.py:FUNCTION)"),
    (["--custom-policy", "{dir}/plain.py:half"], "custom_policy is set but the policy has no custom (it would "
                                                 "change nothing): add custom to policy (threshold)"),
    (["--custom-params", "1"], "custom_params is set but the policy has no custom"),
    (["--policy", "custom", "--custom-policy", "{dir}/nosuch.py:f"],
     "custom policy {dir}/nosuch.py:f: file {dir}/nosuch.py does not exist"),
    (["--policy", "custom", "--custom-policy", "plain.py"], "invalid custom_policy = 'plain.py': must be "
                                                            "FILE.py:FUNCTION or package.module:FUNCTION"),
    (["--policy", "custom", "--custom-policy", "no_such_module_of_flexsim:f"],
     "custom policy no_such_module_of_flexsim:f: importing no_such_module_of_flexsim failed (ModuleNotFoundError: "
     "No module named 'no_such_module_of_flexsim')"),
    (["--policy", "custom", "--custom-policy", "{dir}/plain.py:missing"],
     "custom policy {dir}/plain.py:missing: {dir}/plain.py has no 'missing'"),
    (["--policy", "custom", "--custom-policy", "{dir}/raises.py:f"],
     "custom policy {dir}/raises.py:f: importing {dir}/raises.py failed (ZeroDivisionError: division by zero)"),
    (["--policy", "custom", "--custom-policy", "{dir}/plain.py:not_compiled"],
     "not_compiled is a function, not a Numba-compiled function (decorate it with @numba.njit)"),
    (["--policy", "custom", "--custom-policy", "{dir}/plain.py:one_argument"],
     "invalid custom policy one_argument: calling it on a neutral state failed: TypeError"),
    (["--policy", "custom", "--custom-policy", "{dir}/plain.py:half"],
     "invalid custom policy half: it must return a bool (True = stop), returned float"),
    (["--policy", "custom", "--custom-policy", "{dir}/plain.py:past", "--custom-params", "1"],
     "invalid custom policy past: it reads past an array on a neutral state after stage 0"),
    (["--policy", "custom", "--custom-policy", "{dir}/plain.py:past", "--custom-params", "0,1,nan,1"],
     "invalid custom_params = 0.0,1.0,nan,1.0: must be a list of finite numbers"),
    (["--policy", "custom,custom", "--custom-policy", "{dir}/plain.py:past", "--custom-params", "0,1,2,3"],
     "invalid policy = custom,custom: must be a non-empty list of distinct policy names"),
])
@pytest.mark.parametrize("command", ["run", "sweep"])
def test_bad_custom_policies_are_one_line_and_write_nothing(command, flags, message, tmp_path, capsys):
    (tmp_path / "plain.py").write_text(PLAIN_PY)
    (tmp_path / "raises.py").write_text("x = 1 / 0\n")
    out = tmp_path / "out"
    vary = ["--vary", "deadline_ms=5|10"] if command == "sweep" else []
    argv = [command, *(f.format(dir=tmp_path) for f in flags), "--requests", "100", *vary, "--out", str(out)]
    assert message.format(dir=tmp_path) in cli_error(capsys, argv)
    assert not out.exists()


@pytest.mark.parametrize("changes, message", [
    (dict(custom_policy=lambda state, params: True), "invalid custom_policy = <function"),
    (dict(custom_policy=stop_when_sure, custom_params=(float("nan"),)), "invalid custom_params = nan: must be a "
                                                                        "list of finite numbers"),
    (dict(custom_policy=stop_when_sure, custom_params=("0.5",)), "invalid custom_params = 0.5: must be a list"),
    (dict(custom_policy=7), "invalid custom_policy = 7: must be FILE.py:FUNCTION or package.module:FUNCTION"),
])
def test_bad_custom_policies_in_python_are_named(changes, message):
    with pytest.raises(FlexsimError, match=message):
        simulate(policy=("custom",), requests=100, **changes)


def test_a_sweep_compares_the_built_in_policy_with_the_custom_one(spec):
    """With `policy` varied, the runs without `custom` run without custom_policy and custom_params."""
    result = sweep(vary={"policy": (("threshold",), ("threshold", "custom"))}, custom_policy=spec,
                   **{k: v for k, v in BASE.items() if k != "policy"})
    plain, custom = result.summaries
    assert [c.custom_policy for c in result.configs] == [None, spec]
    assert [c.custom_params for c in result.configs] == [(), PARAMS]
    assert plain == simulate(policy=("threshold",), deadline_ms=10.0, requests=1500).summary
    assert custom == simulate(custom_policy=spec, **BASE).summary
    with pytest.raises(FlexsimError, match="custom_policy is set but no value of policy has custom"):
        sweep(vary={"policy": (("threshold",), ("static",))}, custom_policy=spec, static_k=2, requests=500)


MUTATING_PY = '''
from numba import njit


@njit(cache=True)
def counting(state, params):
    params[0] += 1.0
    return params[0] > 40.0 or state.signal >= 0.9
'''


def test_a_policy_writing_into_its_params_changes_only_its_run(tmp_path):
    """Each run gets a fresh copy of the parameters (both engines), and the caller's array is never written."""
    (tmp_path / "mutating.py").write_text(MUTATING_PY)
    function = custom_function(f"{tmp_path / 'mutating.py'}:counting")
    mine = np.array([0.0])
    inputs = prepare(RunConfig(requests=300, arrivals="poisson:load=0.5"))
    inputs = dataclasses.replace(inputs, policy=compose([CustomPolicy(function, mine)], inputs.n_stages))
    for engine in ("numba", "simpy"):
        first, second = run_inputs(inputs, engine), run_inputs(inputs, engine)
        assert_same_requests(first, second)
    assert_same_requests(run_inputs(inputs, "numba"), run_inputs(inputs, "simpy"))
    assert mine[0] == 0.0 and inputs.policy.custom_params[0] == 0.0


def test_loaded_functions_stay_out_of_numbas_disk_cache(tmp_path):
    """A loaded file's module name is new in every process: code cached under it could not be loaded back (and
    broke the next run), so its Numba functions are compiled without the disk cache, `cache=True` or not."""
    (tmp_path / "cached.py").write_text(MUTATING_PY)
    function = custom_function(f"{tmp_path / 'cached.py'}:counting")
    compose([CustomPolicy(function, (0.0,))], 3)                      # compiles it
    assert type(function._cache).__name__ == "NullCache"
    assert not list(tmp_path.rglob("*.nbi")) and not list(tmp_path.rglob("*.nbc"))


def test_a_module_spec_is_looked_up_from_the_current_folder(tmp_path, monkeypatch):
    for name, threshold in (("one", 0.5), ("two", 0.7)):
        (tmp_path / name).mkdir()
        (tmp_path / name / "cwdpolicy.py").write_text(
            f"from numba import njit\n\n\n@njit\ndef f(state, params):\n    return state.signal >= {threshold}\n")
    monkeypatch.chdir(tmp_path / "one")
    first = custom_function("cwdpolicy:f")
    monkeypatch.chdir(tmp_path / "two")
    second = custom_function("cwdpolicy:f")
    assert first is not second and first.py_func.__code__.co_consts != second.py_func.__code__.co_consts
    assert custom_function("cwdpolicy:f") is second


def test_object_mode_functions_and_lookalikes_are_refused():
    from numba import jit

    @jit(forceobj=True)
    def object_mode(state, params):
        return state.signal >= params[0]

    class LookAlike:
        py_func = staticmethod(lambda state, params: True)

        def __call__(self, state, params):
            return True

    with pytest.raises(FlexsimError, match="must compile in nopython mode"):
        compose([CustomPolicy(object_mode, (0.5,))], 3)
    with pytest.raises(FlexsimError, match="must be compiled with numba.njit"):
        compose([CustomPolicy(LookAlike(), (0.5,))], 3)
