"""The threshold optimiser on small random problems: the grid kernel against the straightforward evaluation, the
criteria's constraints, lambda's monotonicity, the fast method against the grid, Pareto frontiers, exit fractions."""

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from simulator.config import RunConfig
from simulator.errors import FlexsimError
from simulator.optimize import (ExitFractions, MaxAccuracy, MinCost, MsdnetBudget, Tann, build_problem,
                                coordinate_descent,
                                cumulative_problem, evaluate, evaluate_grid, evaluate_grid_naive, exit_fractions,
                                make_grid, msdnet_fractions, pareto_indices, search, static_thresholds,
                                tann_objective, uniform_grid, value_grid)
from simulator.optimize.budget import budget_exit_probability
from simulator.optimize.choose import choose_max_accuracy, choose_min_cost, choose_tann
from simulator.optimize.descent import SEED_POINTS, shortest_between


@pytest.fixture(scope="module")
def fmnist_train():
    return build_problem(RunConfig(logits="fmnist-train"))


def random_problem(n_stages: int, n_samples: int, seed: int, levels: int = 1000, accuracy: float = 0.7):
    """A problem whose signals take `levels` + 1 values in [0, 1] (few levels: many ties)."""
    rng = np.random.default_rng(seed)
    signal = rng.integers(0, levels + 1, size=(n_stages, n_samples)) / levels
    correct = rng.random((n_stages, n_samples)) < accuracy
    stage_latency_ms = rng.uniform(0.1, 2.0, size=(n_stages, 1)) * rng.uniform(0.5, 1.5, size=(n_stages, n_samples))
    return cumulative_problem(signal, correct, stage_latency_ms, 0.2 * stage_latency_ms)


problems = st.builds(random_problem, st.integers(1, 4), st.integers(1, 40), st.integers(0, 2**32 - 1),
                     st.sampled_from([2, 5, 1000]), st.floats(0.1, 0.95))


def _objective(problem, point, lam, cost="latency"):
    return float(tann_objective(point.cost(cost), point.accuracy, problem, lam))


# ----------------------------------------------------------------------------------------------- the grid kernel

@settings(deadline=None)
@given(problems, st.integers(2, 4), st.sampled_from(["uniform", "quantile"]))
def test_grid_kernel_equals_the_straightforward_evaluation(problem, points, kind):
    grid = make_grid(problem, points, kind)
    fast, slow = evaluate_grid(problem, grid), evaluate_grid_naive(problem, grid)
    assert np.array_equal(fast.accuracy, slow.accuracy)
    for name in ("latency_ms", "energy_j", "mean_stages"):
        assert np.allclose(getattr(fast, name), getattr(slow, name), rtol=1e-12, atol=1e-12)


def test_grid_order_and_explicit_values():
    problem = random_problem(3, 50, seed=1)
    grid = value_grid(3, [0.9, -np.inf, 0.5])
    assert grid.thresholds(0) == (-np.inf, -np.inf) and grid.thresholds(1) == (-np.inf, 0.5)
    assert grid.thresholds(grid.n_combinations - 1) == (0.9, 0.9)
    assert list(uniform_grid(3, 11).values[0]) == [i / 10 for i in range(10)] + [np.inf]
    result = evaluate_grid(problem, grid)
    assert result.point(5).thresholds == (0.5, 0.9)
    assert result.point(5).accuracy == evaluate(problem, (0.5, 0.9)).accuracy
    with pytest.raises(FlexsimError, match="invalid cost = 'foo'"):       # not latency, silently
        result.cost("foo")


def test_single_stage_has_one_combination():
    problem = random_problem(1, 30, seed=2)
    result = evaluate_grid(problem, uniform_grid(1, 5))
    assert result.accuracy.shape == (1,) and result.accuracy[0] == problem.accuracy_full
    assert coordinate_descent(problem, 1.0).thresholds == ()
    assert search(problem, Tann(1.0)).point.thresholds == ()


def test_static_thresholds_run_exactly_k_stages():
    problem = random_problem(4, 30, seed=3)
    for k in range(1, 5):
        point = evaluate(problem, static_thresholds(4, k))
        assert point.mean_stages == k
        assert point.accuracy == problem.correct[k - 1].mean()


# ----------------------------------------------------------------------------------------------- criteria

@settings(deadline=None)
@given(problems, st.floats(0.0, 1.0), st.sampled_from(["latency", "energy"]))
def test_min_cost_meets_its_accuracy_drop_and_is_cheapest(problem, max_drop, cost):
    result = evaluate_grid(problem, uniform_grid(problem.n_stages, 4))
    chosen = result.point(choose_min_cost(result, problem, max_drop, cost))
    assert problem.accuracy_full - chosen.accuracy <= max_drop + 1e-12
    feasible = result.accuracy >= problem.accuracy_full - max_drop - 1e-12
    assert chosen.cost(cost) == result.cost(cost)[feasible].min()


@settings(deadline=None)
@given(problems, st.floats(0.0, 1.0), st.sampled_from(["latency", "energy"]))
def test_max_accuracy_meets_its_budget_and_is_most_accurate(problem, where, cost):
    result = evaluate_grid(problem, uniform_grid(problem.n_stages, 4))
    values = result.cost(cost)
    budget = values.min() + where * (values.max() - values.min())
    chosen = result.point(choose_max_accuracy(result, budget, cost))
    assert chosen.cost(cost) <= budget
    assert chosen.accuracy == result.accuracy[values <= budget].max()


@settings(deadline=None)
@given(problems, st.lists(st.floats(0.0, 1e4), min_size=2, max_size=6), st.sampled_from(["latency", "energy"]))
def test_chosen_accuracy_never_falls_as_lambda_grows(problem, lams, cost):
    result = evaluate_grid(problem, uniform_grid(problem.n_stages, 4))
    accuracies = [result.accuracy[choose_tann(result, problem, lam, cost)] for lam in sorted(lams)]
    assert all(b >= a for a, b in zip(accuracies, accuracies[1:]))


@settings(deadline=None)
@given(problems, st.floats(0.0, 100.0))
def test_tann_choice_minimises_the_objective_over_the_grid(problem, lam):
    result = evaluate_grid(problem, uniform_grid(problem.n_stages, 3))
    chosen = result.point(choose_tann(result, problem, lam))
    assert _objective(problem, chosen, lam) <= tann_objective(result.latency_ms, result.accuracy, problem, lam).min()


# ----------------------------------------------------------------------------------------------- the fast method

@settings(deadline=None)
@given(problems, st.floats(0.0, 100.0), st.integers(SEED_POINTS, 6), st.sampled_from(["latency", "energy"]))
def test_descent_is_never_worse_than_the_grid_beyond_its_resolution(problem, lam, points, cost):
    """Descent starts from the best combination of the grid at its seed resolution (SEED_POINTS values per
    threshold), so it is never worse than that grid; against a finer grid it may lose at most what the finer
    resolution gains over the seed grid. Both objectives are recomputed independently with `evaluate`."""
    fast = coordinate_descent(problem, lam, cost)
    j_fast = _objective(problem, evaluate(problem, fast.thresholds), lam, cost)
    seed = evaluate_grid(problem, uniform_grid(problem.n_stages, SEED_POINTS))
    j_seed = _objective(problem, evaluate(problem, seed.point(choose_tann(seed, problem, lam, cost)).thresholds),
                        lam, cost)
    fine = evaluate_grid(problem, uniform_grid(problem.n_stages, points))
    j_fine = _objective(problem, fine.point(choose_tann(fine, problem, lam, cost)), lam, cost)
    assert j_fast <= j_seed + 1e-9
    assert j_fast <= j_fine + max(j_seed - j_fine, 0.0) + 1e-9


@settings(deadline=None)
@given(problems, st.floats(0.0, 100.0))
def test_descent_thresholds_reproduce_their_decisions(problem, lam):
    """The printed (shortest decimal) thresholds give exactly the reported point."""
    fast = coordinate_descent(problem, lam)
    assert evaluate(problem, fast.thresholds) == fast


def test_descent_beats_or_matches_the_11_point_grid_on_the_shipped_ensemble(fmnist_train):
    result = evaluate_grid(fmnist_train, uniform_grid(6, 11))
    for lam in (1.0, 10.0, 30.0):
        grid_point = result.point(choose_tann(result, fmnist_train, lam))
        fast = coordinate_descent(fmnist_train, lam)
        assert _objective(fmnist_train, fast, lam) <= _objective(fmnist_train, grid_point, lam) + 1e-9


@given(st.floats(0.0, 1.0), st.floats(0.0, 1.0))
def test_shortest_between_lies_in_the_interval(a, b):
    low, high = min(a, b), max(a, b)
    if low < high:
        t = shortest_between(low, high)
        assert low < t <= high


# ----------------------------------------------------------------------------------------------- Pareto

@settings(deadline=None)
@given(st.lists(st.tuples(st.integers(0, 6), st.integers(0, 6)), min_size=1, max_size=40))
def test_pareto_frontier_is_non_dominated_and_covers_every_point(pairs):
    cost = np.array([c for c, _ in pairs], dtype=float)
    accuracy = np.array([a for _, a in pairs], dtype=float)
    front = pareto_indices(cost, accuracy)

    def dominates(i, j):
        return cost[i] <= cost[j] and accuracy[i] >= accuracy[j] and (cost[i] < cost[j] or accuracy[i] > accuracy[j])

    for i in front:
        assert not any(dominates(j, i) for j in range(len(pairs)))
    for j in range(len(pairs)):
        assert any(dominates(i, j) or (cost[i] == cost[j] and accuracy[i] == accuracy[j]) for i in front)
    assert np.all(np.diff(cost[front]) > 0) and np.all(np.diff(accuracy[front]) > 0)


# ----------------------------------------------------------------------------------------------- exit fractions

@settings(deadline=None)
@given(st.integers(1, 4), st.integers(1, 60), st.integers(0, 2**32 - 1),
       st.lists(st.floats(0.0, 1.0), min_size=4, max_size=4))
def test_exit_fractions_are_met_on_distinct_signals(n_stages, n_samples, seed, weights):
    problem = random_problem(n_stages, n_samples, seed, levels=10**9)
    w = np.array(weights[:n_stages]) + 1e-3
    fractions = w / w.sum()
    point = ExitFractions(tuple(fractions)).fast(problem)
    target = np.diff(np.concatenate([[0], np.rint(np.cumsum(fractions) * n_samples)]))
    if len(np.unique(problem.signal)) == problem.signal.size:
        assert np.array_equal(np.rint(exit_fractions(problem, point.thresholds) * n_samples), target)


@settings(deadline=None)
@given(st.integers(2, 5), st.integers(0, 2**32 - 1), st.floats(0.0, 1.0))
def test_msdnet_budget_is_met_in_expectation(n_stages, seed, where):
    problem = random_problem(n_stages, 50, seed)
    stage_cost = problem.latency_ms.mean(axis=1)
    budget = stage_cost[0] + where * (msdnet_fractions(0.0, n_stages) @ stage_cost - stage_cost[0])
    q = budget_exit_probability(problem, budget)
    assert 0.0 <= q <= 1.0
    assert msdnet_fractions(q, n_stages) @ stage_cost == pytest.approx(budget, rel=1e-9, abs=1e-9)


# ----------------------------------------------------------------------------------------------- bad input

@pytest.mark.parametrize("make, message", [
    (lambda p: Tann(-1.0), "invalid lambda"),
    (lambda p: Tann(math.nan), "invalid lambda"),
    (lambda p: Tann(1.0, cost="power"), "invalid cost"),
    (lambda p: MinCost(-0.1), "invalid max_drop"),
    (lambda p: MinCost(1.5), "invalid max_drop"),
    (lambda p: MaxAccuracy(0.0), "invalid budget"),
    (lambda p: uniform_grid(3, 0), "invalid grid points"),
    (lambda p: value_grid(3, []), "a grid of zero values"),
    (lambda p: make_grid(p, 3, "log"), "invalid grid kind"),
    (lambda p: uniform_grid(40, 11), "combinations"),
    (lambda p: evaluate(p, (0.5,)), "1 values given for 3 stages"),
    (lambda p: evaluate(p, (0.5, math.nan)), "NaN"),
    (lambda p: evaluate_grid(p, uniform_grid(4, 3)), "3 thresholds for 3 stages"),
    (lambda p: ExitFractions((0.5, 0.5)).fast(p), "2 values given for 3 stages"),
    (lambda p: ExitFractions((0.5, 0.6, 0.1)).fast(p), "sum to 1"),
    (lambda p: MaxAccuracy(1e-6).on_grid(evaluate_grid(p, uniform_grid(3, 3)), p), "no combination meets"),
    (lambda p: MsdnetBudget(1e-6).fast(p), "below the first stage"),
    (lambda p: search(p, MinCost(0.01), "descent"), "descent method"),
    (lambda p: search(p, Tann(1.0), "anneal"), "invalid method"),
    (lambda p: cumulative_problem(np.zeros((2, 3)), np.zeros((2, 2), bool), np.ones((2, 3))), "correct has shape"),
])
def test_bad_input_raises_one_line_flexsim_error(make, message):
    problem = random_problem(3, 20, seed=4)
    with pytest.raises(FlexsimError, match=message) as exc:
        make(problem)
    assert "\n" not in str(exc.value)


def test_energy_cost_needs_energy_figures():
    problem = cumulative_problem(np.zeros((2, 3)), np.ones((2, 3), bool), np.ones((2, 3)))
    with pytest.raises(FlexsimError, match="no energy"):
        search(problem, Tann(1.0, cost="energy"))


def test_the_optimizer_functions_name_bad_arguments():
    from simulator.config import RunConfig
    from simulator.errors import FlexsimError
    from simulator.optimize import build_problem, evaluate, search
    from simulator.optimize.grid import make_grid, uniform_grid

    problem = build_problem(RunConfig(logits="fmnist-train"))
    for call, message in ((lambda: evaluate(problem, None), "must be a flat sequence of numbers"),
                          (lambda: evaluate(problem, ("a", "b")), "must be numbers"),
                          (lambda: make_grid(problem, values=[[0.1, 0.2], [0.3, 0.4]]), "a flat sequence"),
                          (lambda: make_grid(problem, points=2 ** 70), "need an integer from 2 to 1000000"),
                          (lambda: uniform_grid(0, 3), "invalid number of stages 0"),
                          (lambda: search(problem, "tann"), "invalid criterion 'tann'")):
        with pytest.raises(FlexsimError, match=message):
            call()


def test_the_optimize_helpers_refuse_impossible_input():
    from simulator.config import RunConfig
    from simulator.optimize import msdnet_fractions, pareto_indices, run_command, toml_snippet
    from simulator.optimize.curves import static_thresholds

    problem = random_problem(3, 30, seed=1)
    for call, message in ((lambda: static_thresholds(6, 0), "invalid k = 0 for 6 stages"),
                          (lambda: static_thresholds(6, 7), "invalid k = 7"),
                          (lambda: msdnet_fractions(2.0, 3), "invalid exit probability q = 2.0"),
                          (lambda: msdnet_fractions(0.5, 0), "invalid number of stages 0"),
                          (lambda: run_command(RunConfig(), (0.5,)), "1 values given for 6 stages"),
                          (lambda: toml_snippet(RunConfig(), (0.5,) * 5, "hi"), "invalid comments = 'hi'"),
                          (lambda: pareto_indices(np.array([1.0, np.nan]), np.array([0.5, 0.6])), "NaN or infinite"),
                          (lambda: search(problem, Tann), "invalid criterion"),
                          (lambda: search(problem, Tann(1.0), grid=np.zeros(0)), "invalid grid")):
        with pytest.raises(FlexsimError, match=message):
            call()
    assert static_thresholds(3, 1) == (-np.inf, -np.inf) and static_thresholds(3, 3) == (np.inf, np.inf)
    assert "# a [b]\n[run]" in toml_snippet(RunConfig(), (0.5,) * 5, ["a\n[b]"])      # one line per comment


def test_the_optimize_functions_name_an_argument_that_is_not_a_problem():
    from simulator.optimize import make_grid, normal_ensembles, quantile_grid

    for call in (lambda: evaluate(None, ()), lambda: make_grid(None), lambda: quantile_grid("p", 3),
                 lambda: coordinate_descent(None, 1.0), lambda: normal_ensembles(None),
                 lambda: evaluate_grid(None, uniform_grid(2, 3)), lambda: search(None, Tann(1.0))):
        with pytest.raises(FlexsimError, match="invalid problem: a ThresholdProblem"):
            call()
    with pytest.raises(FlexsimError, match="invalid correct: must be booleans"):
        cumulative_problem(np.zeros((2, 3)), np.full((2, 3), 0.3), np.ones((2, 3)))
    assert cumulative_problem(np.zeros((2, 3)), np.ones((2, 3), dtype=int), np.ones((2, 3))).correct.dtype == bool


def test_the_lower_level_optimize_helpers_name_arguments_of_the_wrong_type():
    from simulator.optimize.build import training_split
    from simulator.optimize.curves import lambda_sweep
    from simulator.optimize.export import thresholds_text
    from simulator.optimize.grid import ThresholdGrid

    problem = random_problem(3, 30, seed=2)
    for call, message in ((lambda: lambda_sweep(problem, problem, "10"), "invalid lambdas = '10': must be a seq"),
                          (lambda: lambda_sweep(problem, problem, 10.0), "invalid lambdas = 10.0"),
                          (lambda: lambda_sweep(problem, problem, ["a"]), "invalid lambdas.*must be numbers"),
                          (lambda: lambda_sweep(None, problem, [1.0]), "invalid problem"),
                          (lambda: ThresholdGrid(values=[["a", "b"]]), "values must be a 2-D array of numbers"),
                          (lambda: ThresholdGrid(values=None), "values must be a 2-D array of numbers"),
                          (lambda: ExitFractions(("a", 1)), "invalid exit fractions.*must be numbers"),
                          (lambda: ExitFractions(0.5), "invalid exit fractions = 0.5"),
                          (lambda: thresholds_text(["x"]), "invalid thresholds.*must be numbers"),
                          (lambda: training_split(None), "training_split: logits must be a cache name or path")):
        with pytest.raises(FlexsimError, match=message):
            call()
    sweep = lambda_sweep(problem, problem, range(2))                    # a range is a sequence of lambdas
    assert [p.lam for p in sweep] == [0.0, 1.0]
    assert ThresholdGrid(values=[[0.1, 0.5], [0, 1]]).values.dtype == np.float64
    assert thresholds_text(np.array([0.5, np.inf])) == "0.5,inf"


def test_a_budget_equal_to_a_combinations_cost_admits_it():
    """The grid's mean cost of a combination differs from `evaluate`'s in its last bits; a budget equal to it (as a
    user copies it from a report) must still admit the combination, and an MSDNet budget equal to the first stage's
    mean cost must not be refused as below it."""
    problem = cumulative_problem(np.array([[0.9, 0.1, 0.5], [0.0, 0.0, 0.0]]), np.ones((2, 3), bool),
                                 np.full((2, 3), 0.1 + 0.2))            # 0.30000000000000004, summed in two orders
    grid = evaluate_grid(problem, uniform_grid(2, 11))
    cheapest = float(grid.cost("latency").min())
    for budget in (cheapest, cheapest * (1 - 1e-15), float(np.mean(problem.latency_ms[0]))):
        assert grid.cost("latency")[choose_max_accuracy(grid, budget)] <= budget * (1 + 1e-9)
        MsdnetBudget(budget).fast(problem)
    with pytest.raises(FlexsimError, match="latency budget 0.299 ms: the cheapest costs 0.3 ms"):
        choose_max_accuracy(grid, 0.299)


def test_tann_ties_of_rounding_go_to_the_higher_accuracy():
    # stop at stage 0 (T = 0): cost 0.1, accuracy 0.5; run both (T = 0.5): cost 0.15, accuracy 1.0, which lam = 0.05
    # makes exactly as good (0.15 - 0.05 = 0.1), in floats 0.15000000000000002
    problem = cumulative_problem(np.array([[0.8, 0.2], [0.0, 0.0]]), np.array([[1, 0], [0, 1]], bool),
                                 np.array([[0.1, 0.1], [0.1, 0.1]]))
    found = search(problem, Tann(0.05), grid=value_grid(2, [0.0, 0.5, np.inf]))
    assert found.point.accuracy == 1.0


def test_the_dispatch_overhead_is_a_cost_of_every_request(tmp_path):
    """A profile's dispatch overhead is paid once per request, with its first stage (at idle power): the optimizer's
    costs are `mean_service_s` and the attributed energy the engines give."""
    import json

    from simulator import prepare, run_inputs
    from simulator.profiles import load_profile
    from simulator.run import mean_service_s
    from tests.helpers import ROOT

    data = json.loads((ROOT / "profiles" / "h100.json").read_text())
    data["dispatch_overhead_ms"], data["name"] = 0.5, "h100-dispatch"
    path = tmp_path / "h100-dispatch.json"
    path.write_text(json.dumps(data))
    config = RunConfig(members=(0, 1, 2), thresholds=(0.4, 0.2), profile=(str(path),), requests=10_000,
                       arrivals="poisson:load=0.01")
    point = evaluate(build_problem(config), (0.4, 0.2))
    inputs = prepare(config)
    assert point.latency_ms == pytest.approx(mean_service_s(inputs.stages, inputs.cost_scale, inputs.devices,
                                                            inputs.policy) * 1000.0, rel=1e-12)
    attributed = run_inputs(inputs).summary.attributed_energy_per_request_j
    assert point.energy_j == pytest.approx(attributed, rel=1e-9)
    assert point.energy_j - evaluate(build_problem(config, profile=load_profile("h100")), (0.4, 0.2)).energy_j == \
        pytest.approx(load_profile("h100").idle_power_w * 0.5e-3)
