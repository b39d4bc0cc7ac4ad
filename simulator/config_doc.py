"""The configuration reference, ``docs/configuration.md``, generated from `RunConfig`'s fields (and the arrival
specifications' and the policies' own docstrings), so that it says what the code does.

    python -m simulator.config_doc docs/configuration.md
"""

from __future__ import annotations

import sys

from simulator import workload
from simulator.config import config_fields, default_of
from simulator.policies import REGISTRY

COMMAND = "python -m simulator.config_doc docs/configuration.md"


def reference_markdown() -> str:
    """The whole reference: every field as TOML key and flag, the arrival specifications, the policies, and the
    environment."""
    return "\n".join([
        "# Configuration reference", "",
        f"Generated from the code by `{COMMAND}`; `flexsim run --help` says the same. Every field below is a key "
        "of a TOML file (optionally under `[run]`), a flag of `flexsim run` and of `flexsim sweep` (which has "
        "no `--record-batches` and whose `--out` is the study's folder; flags override the file, the file the "
        "defaults), a keyword of `simulator.simulate` and a field of "
        "`simulator.RunConfig`. A sweep varies any of them (`--vary 'deadline-ms=3|6'`, `docs/sweeps.md`). What "
        "the fields mean for a run is defined in `docs/semantics.md`. A flag of a field whose default is none "
        "takes the value `none` to unset it (`--models none` over a file's `models`); an empty value is refused.", "",
        "| TOML key | flag | value | default | meaning |", "|---|---|---|---|---|",
        *(_field_row(f) for f in config_fields()), "",
        "## Arrivals (`arrivals`)", "", _docstring_body(workload.__doc__), "",
        "## Policies (`policy`)", "",
        "Policies compose: a request stops when any of those named says stop (`docs/semantics.md`; your own: "
        "`docs/custom-policies.md`).", "",
        "| name | what it does |", "|---|---|",
        *(f"| `{name}` | {_cell(_first_line(cls.__doc__))} |" for name, cls in REGISTRY.items()), "",
        "## Environment", "",
        "- `FLEXSIM_PROFILES`: the folder of the shipped profiles, which profile names are looked up in (unset or "
        "empty: the checkout's `profiles/`); a name that is not a folder is refused.", ""])


def _field_row(f) -> str:
    flag = f"--{f.name.replace('_', '-')}"
    is_bool = f.metadata["parse"] is bool
    flags = f"`{flag}` / `--no-{flag[2:]}`" if is_bool else f"`{flag}`"
    value = "true / false" if is_bool else f"`{f.metadata['metavar'] or f.name.upper()}`"
    default = default_of(f)
    shown = str(default).lower() if is_bool else show_default(default)
    return f"| `{f.name}` | {flags} | {_cell(value)} | {_cell(shown)} | {_cell(f.metadata['help'])} |"


def show_default(value) -> str:
    """A field's default as the command line writes it (a tuple comma-separated, none for unset)."""
    if value is None:
        return "none"
    if isinstance(value, tuple):
        return ",".join(str(v) for v in value) or "none"
    return str(value)


def _cell(text: str) -> str:
    return text.replace("|", "\\|")


def _first_line(doc: str | None) -> str:
    return (doc or "").strip().splitlines()[0]


def _docstring_body(doc: str) -> str:
    """A module docstring without its title line."""
    return doc.strip().split("\n\n", 1)[1].strip()


def write(args: list[str]) -> None:
    """Write the reference to the one path in `args`."""
    from simulator.errors import require
    from simulator.io import write_text_atomic

    require(len(args) == 1, f"expected one argument, the output file: {COMMAND}")
    write_text_atomic(args[0], reference_markdown())
    print(f"wrote {args[0]}")


if __name__ == "__main__":
    from simulator.errors import script_exit

    sys.exit(script_exit(write, sys.argv[1:]))
