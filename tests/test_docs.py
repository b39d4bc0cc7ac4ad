"""The Python examples of the README and the docs run as written."""

import pytest

from tests.helpers import ROOT, python_blocks


def test_readme_example_runs():
    namespace = {}
    exec(compile(python_blocks(ROOT / "README.md"), "README.md", "exec"), namespace)
    assert 0.9 < namespace["result"].summary.accuracy < 0.95
    assert len(namespace["study"].means()) == 6


def test_custom_policy_example_runs():
    code = python_blocks(ROOT / "docs" / "custom-policies.md")
    code = code.replace("@settings(deadline=None, max_examples=50)", "@settings(deadline=None, max_examples=5)")
    namespace = {}
    exec(compile(code, "custom-policies.md", "exec"), namespace)
    fast, reference = namespace["fast"], namespace["reference"]
    assert (fast.requests.stages_run == reference.requests.stages_run).all()
    assert (namespace["result"].requests.finish_s == fast.requests.finish_s).all()    # simulate = built by hand
    assert [row["deadline_ms"] for row in namespace["study"].means()] == [5.0, 5.0, 10.0, 10.0]
    namespace["test_slack_threshold"]()


def test_noisy_host_example_runs():
    namespace = {}
    exec(compile(python_blocks(ROOT / "docs" / "profile-format.md"), "profile-format.md", "exec"), namespace)
    steady, noisy = namespace["summaries"].values()
    assert noisy.latency_mean_ms > 1.1 * steady.latency_mean_ms
    assert abs(noisy.utilisation / steady.utilisation - 1.0) < 0.05


def test_the_profiles_the_docs_name_exist():
    import re

    for doc in (ROOT / "docs").glob("*.md"):
        for path in set(re.findall(r"`(profiles/[\w./-]+\.json)`", doc.read_text())):
            assert (ROOT / path).is_file(), f"{doc.name} names {path}, which does not exist"


def test_sweep_example_runs():
    namespace = {}
    exec(compile(python_blocks(ROOT / "docs" / "sweeps.md"), "sweeps.md", "exec"), namespace)
    assert namespace["best"]["deadline_miss_rate"] <= 0.01 and len(namespace["rows"]) == 6


def test_the_sweep_studies_print_the_tables_the_doc_shows(tmp_path, capsys):
    """Each study file of docs/sweeps.md prints the table shown after it."""
    import re

    from simulator.cli import main

    text = (ROOT / "docs" / "sweeps.md").read_text()
    studies = re.findall(r"```toml\n(.*?)```", text, flags=re.S)
    tables = re.findall(r"```text\n(.*?)```", text, flags=re.S)
    assert len(studies) == len(tables) == 2
    for toml, shown in zip(studies, tables):
        study = tmp_path / "study.toml"
        study.write_text(toml)
        capsys.readouterr()
        assert main(["sweep", str(study)]) == 0
        assert shown in capsys.readouterr().out


YOUR_MODELS_PY = '''
import torch

def build():
    return torch.nn.Sequential(torch.nn.Conv2d(3, 8, 3, padding=1), torch.nn.ReLU(), torch.nn.AdaptiveAvgPool2d(4),
                               torch.nn.Flatten(), torch.nn.Linear(8 * 16, 10))
'''


def flexsim_commands(path) -> list[list[str]]:
    """The ``flexsim`` command lines of a Markdown file's ```bash blocks, continuation lines joined, comments cut."""
    import re
    import shlex

    blocks = re.findall(r"```bash\n(.*?)```", path.read_text(), flags=re.S)
    lines = "\n".join(blocks).replace("\\\n", " ").splitlines()
    return [shlex.split(line, comments=True)[1:] for line in lines if line.startswith("flexsim ")]


def test_your_models_workflow_runs_as_written(tmp_path, monkeypatch):
    """docs/your-models.md: its Python block makes the caches, then every flexsim command of its bash blocks runs as
    written (but the CUDA one), in a folder holding a models.py with a `build`."""
    import pytest

    torch = pytest.importorskip("torch")
    from simulator.cli import main

    monkeypatch.chdir(tmp_path)
    (tmp_path / "models.py").write_text(YOUR_MODELS_PY)
    models = {}
    exec(YOUR_MODELS_PY, models)
    torch.manual_seed(0)
    loader = [(torch.randn(16, 3, 32, 32), torch.randint(0, 10, (16,))) for _ in range(3)]
    namespace = {"members": [models["build"]() for _ in range(3)], "test_loader": loader, "train_loader": loader}
    exec(compile(python_blocks(ROOT / "docs" / "your-models.md"), "your-models.md", "exec"), namespace)
    commands = flexsim_commands(ROOT / "docs" / "your-models.md")
    assert len(commands) == 14
    for argv in commands:
        if "cuda" not in argv:
            assert main(argv) == 0, argv
    assert {p.name for p in tmp_path.glob("*.json")} == {"my-cpu.json", "orin-nano-mynet.json", "mine.json", "kt.json"}


@pytest.mark.parametrize("name", ["validation", "validation-cuda"])
def test_the_committed_reports_are_what_render_writes(tmp_path, capsys, name):
    """``flexsim validate --render`` on a committed report's folder writes the committed report again, byte for
    byte: the report is true to the code that renders it (of the folder, render reads results.json and the
    profiles)."""
    import re
    import shutil

    from simulator.cli import main

    (tmp_path / "docs" / name).mkdir(parents=True)
    for path in (ROOT / "docs" / name).glob("profile-*.json"):
        shutil.copy(path, tmp_path / "docs" / name)
    # results.json records the absolute paths of the checkout that ran it: rendered from any other, the same report
    results = (ROOT / "docs" / name / "results.json").read_text()
    moved = re.sub(r'"[^"]*/(simulator/data/[\w.-]+)"', r'"/another/checkout/\1"', results)
    assert moved != results
    (tmp_path / "docs" / name / "results.json").write_text(moved)
    report = tmp_path / "docs" / f"{name}.md"
    committed = (ROOT / "docs" / f"{name}.md").read_text()
    report.write_text(committed)
    assert main(["validate", "--render", "--out", str(tmp_path / "docs" / name), "--report", str(report)]) == 0
    assert report.read_text() == committed


def test_the_configuration_reference_is_what_the_code_generates():
    """docs/configuration.md is `simulator.config_doc`'s output for the current fields (regenerate it with the command
    it names); every field of `RunConfig` has its row."""
    from simulator.config import config_fields
    from simulator.config_doc import COMMAND, reference_markdown

    text = (ROOT / "docs" / "configuration.md").read_text()
    assert text == reference_markdown(), f"docs/configuration.md is stale: run {COMMAND}"
    assert all(f"| `{f.name}` | `--{f.name.replace('_', '-')}`" in text for f in config_fields())


def test_optimizer_md_quotes_the_normal_ensembles_of_the_committed_figure_2_csvs():
    """The figure-2 table of docs/optimizer.md (one member; normal ensembles of 2 and 6 members) agrees with the
    committed CSVs to the digits it shows, so that a regenerated figure cannot leave the prose behind."""
    import csv
    import re

    text = (ROOT / "docs" / "optimizer.md").read_text()
    number, at = r"([\d.]+) ms", r"([\d.]+) at ([\d.]+) ms"
    rows = re.findall(rf"^\| ([\w-]+)(?: \(derived\))? \| {number} \| {at} \| {at} \|", text, flags=re.M)
    assert len(rows) == 4
    for profile, one_ms, acc2, ms2, acc6, ms6 in rows:
        with open(ROOT / "docs" / "figures" / f"fig2-flexible-vs-normal-{profile}.csv", newline="") as fh:
            normal = {r["series"]: r for r in csv.DictReader(fh) if r["series"].startswith("normal-")}
        shown = [(one_ms, normal["normal-1"]["test_latency_ms"]), (ms2, normal["normal-2"]["test_latency_ms"]),
                 (ms6, normal["normal-6"]["test_latency_ms"]), (acc2, normal["normal-2"]["test_accuracy"]),
                 (acc6, normal["normal-6"]["test_accuracy"])]
        for quoted, value in shown:
            digits = len(quoted.split(".")[1])
            assert quoted == f"{float(value):.{digits}f}", f"{profile}: optimizer.md says {quoted}, the CSV {value}"


def test_the_example_model_is_the_one_your_models_md_describes():
    """docs/examples/models.py, the `models.py` the commands of your-models.md name: a CNN of five 3x3 convolutions
    with batch norm and a linear head, 0.059 GFLOP per 32x32 image."""
    pytest.importorskip("torch")
    import runpy

    from simulator.costmodel.trace import trace_module

    build = runpy.run_path(str(ROOT / "docs" / "examples" / "models.py"))["build"]
    table = trace_module(build(), (3, 32, 32), "mynet")
    assert table.op.count("convolution") == 5 and table.op.count("native_batch_norm") == 5 and table.op[-1] == "addmm"
    assert round(float(table.flops.sum()) / 1e9, 3) == 0.059
