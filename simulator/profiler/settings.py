"""How to measure: warm-up, repetitions, energy windows (a frozen, validated, keyword-only dataclass)."""

from __future__ import annotations

from dataclasses import dataclass, fields

from simulator.errors import require

#: Most rounds and PyTorch threads a measurement takes (the profiler's, kernel-times', the real runner's).
MAX_ROUNDS, MAX_THREADS = 100_000, 4096

#: field -> (lowest and highest allowed value, what it means); every field is a number checked in one place. The
#: highest values only keep an impossible request (an hour of warm-up per model, a million rounds) from running for
#: ever: nothing this project measures comes near them.
_CONSTRAINTS = {
    "warmup": (0, 1_000_000, "calls before timing starts"),
    "warmup_s": (0.0, 3600.0, "minimum seconds of warm-up calls"),
    "repeats": (3, 1_000_000, "timed calls per model and batch size (the latency samples)"),
    "rounds": (1, MAX_ROUNDS, "rounds, interleaved over every configuration measured, that the timed calls are split "
               "into"),
    "energy_window_s": (1.0, 3600.0, "seconds of back-to-back calls per energy reading (counters advance every "
                        "~100 ms)"),
    "idle_settle_s": (0.0, 3600.0, "seconds to wait before reading idle power, so that clocks settle"),
    "idle_window_s": (1.0, 3600.0, "seconds over which idle power is read"),
    "threads": (1, MAX_THREADS, "PyTorch CPU threads; leave unset for PyTorch's default"),
}


@dataclass(frozen=True, kw_only=True)
class MeasureSettings:
    """Measurement settings; see `_CONSTRAINTS` for the meaning and the lowest value of each numeric field, and
    `simulator.profiler.allocator` for `allocator`."""

    warmup: int = 10
    warmup_s: float = 0.5
    repeats: int = 50
    rounds: int = 5
    energy_window_s: float = 1.0
    idle_settle_s: float = 5.0
    idle_window_s: float = 2.0
    threads: int | None = None
    allocator: str = "steady"  # glibc malloc held steady while timing, or left as it is (`allocator.ALLOCATORS`)

    def __post_init__(self):
        from simulator.profiler.allocator import check_allocator

        check_allocator(self.allocator)
        for name, (lowest, highest, meaning) in _CONSTRAINTS.items():
            value = getattr(self, name)
            if value is None and name == "threads":
                continue
            require(isinstance(value, (int, float)) and not isinstance(value, bool) and value == value
                    and lowest <= value <= highest and (isinstance(value, int) or not isinstance(lowest, int)),
                    f"invalid {name} = {value!r}: must be {'an integer' if isinstance(lowest, int) else 'a number'}"
                    f" from {lowest} to {highest} ({meaning})")

    def to_json(self) -> dict:
        return {f.name: getattr(self, f.name) for f in fields(self)}
