"""Users' own models, named as ``NAME=SOURCE:CALLABLE`` where a command takes model names.

``SOURCE`` is a Python file (``models.py``, ``path/to/models.py``) or an importable module (``mypkg.models``);
``CALLABLE`` is a name in it: a function or class that, called without arguments, returns a ``torch.nn.Module``
(or a module instance itself, which is copied). ``NAME`` is what the model is called in profiles and layer tables,
and so what a logit cache's ``model_names`` must say. The per-sample input shape is given apart
(``--input-shape``), as models do not say it. Building a model imports and runs the user's code (`simulator.usercode`).
"""

from __future__ import annotations

import copy
import re
from dataclasses import dataclass
from pathlib import Path

from simulator.errors import FlexsimError, require
from simulator.usercode import attribute, guarded, is_file, loaded, split_spec

#: A user model's name: letters, digits and ``._-``, starting with a letter or digit (it becomes a file name).
NAME_PATTERN = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]*")
#: Longest per-sample input shape (dimensions).
MAX_DIMS = 8


#: Largest vocabulary of token-id inputs (``--input-tokens``).
MAX_TOKENS = 1 << 31


@dataclass(frozen=True)
class UserModel:
    """A user's model: its name, where its builder lives, the per-sample input shape it takes and, for a model of
    token ids (an embedding first), their vocabulary size (`input_tokens`: ids drawn from 0 to that minus one)."""

    name: str
    source: str
    attribute: str
    input_shape: tuple[int, ...]
    input_tokens: int | None = None

    @property
    def implementation(self) -> str:
        return f"{self.source}:{self.attribute}"

    @property
    def _label(self) -> str:
        """How the model's errors begin."""
        return f"model {self.name}"

    def build(self):
        """A fresh instance of the model in eval mode (FlexsimError naming the model where its code fails).

        The source is loaded anew each time, with its folder (a file's) or the current folder (a module's) on the
        import path while it loads and the builder runs; the modules it imported from that folder are then
        forgotten, so that two sources importing siblings of the same name each get their own."""
        import torch

        with loaded(self.source, self._label) as source:
            builder = attribute(source, self.source, self.attribute, self._label)
            if isinstance(builder, torch.nn.Module):
                module = guarded(self._label, "copying it", copy.deepcopy, builder)
            else:
                require(callable(builder), f"model {self.name}: {self.implementation} is neither a torch.nn.Module "
                        "nor callable")
                module = guarded(self._label, f"{self.implementation}()", builder)
        require(isinstance(module, torch.nn.Module), f"model {self.name}: {self.implementation}() returned "
                f"{type(module).__name__}, not a torch.nn.Module")
        return module.eval()


def is_user_model(token: str) -> bool:
    """Whether a model name on the command line names a user's model (``NAME=SOURCE:CALLABLE``)."""
    return "=" in str(token)


def parse_user_model(token: str, input_shape, input_tokens: int | None = None) -> UserModel:
    """The `UserModel` of ``NAME=SOURCE:CALLABLE`` with per-sample `input_shape` (of token ids below `input_tokens`
    where given); FlexsimError naming what is wrong (nothing is imported yet)."""
    name, _, spec = str(token).strip().partition("=")
    parts = split_spec(spec)
    require(NAME_PATTERN.fullmatch(name), f"invalid model {token!r}: NAME in NAME=SOURCE:CALLABLE must be letters, "
            "digits and ._- (starting with a letter or digit)")
    require(parts is not None, f"invalid model {token!r}: write NAME=SOURCE:CALLABLE, e.g. "
            "mynet=models.py:build or mynet=mypkg.models:MyNet")
    source, attribute = parts
    require(input_shape is not None, f"model {name}: give its per-sample input shape (--input-shape, e.g. 3,32,32)")
    if is_file(source) and Path(source).is_file():
        source = str(Path(source).resolve())            # recorded in profiles as it is: where the code was
    return UserModel(name=name, source=source, attribute=attribute, input_shape=check_input_shape(input_shape),
                     input_tokens=check_input_tokens(input_tokens))


def check_input_tokens(tokens) -> int | None:
    """A vocabulary size of token-id inputs (an integer from 2 to `MAX_TOKENS`), or None; FlexsimError otherwise."""
    require(tokens is None or (isinstance(tokens, int) and not isinstance(tokens, bool) and 2 <= tokens <= MAX_TOKENS),
            f"invalid --input-tokens {tokens!r}: the vocabulary size of token-id inputs, an integer from 2 to "
            f"{MAX_TOKENS}")
    return tokens


def parse_input_tokens(text: str) -> int:
    """``"30522"`` -> 30522; FlexsimError naming a malformed text."""
    try:
        tokens = int(str(text).strip())
    except ValueError:
        raise FlexsimError(f"invalid --input-tokens {text!r}: the vocabulary size, an integer (e.g. 30522)") from None
    return check_input_tokens(tokens)


def model_input(torch, batch: int, input_shape, input_tokens: int | None = None, device: str = "cpu", dtype=None):
    """A random input of `batch` samples of `input_shape`: token ids drawn uniformly below `input_tokens` (int64),
    else standard normal values (in `dtype` where given)."""
    if input_tokens is not None:
        return torch.randint(0, input_tokens, (batch, *input_shape), device=device)
    x = torch.randn(batch, *input_shape, device=device)
    return x if dtype is None else x.to(dtype)


def input_text(batch: int, input_shape, input_tokens: int | None = None) -> str:
    """How an input of `model_input` is named in messages."""
    what = f"token ids below {input_tokens}" if input_tokens is not None else "float32 values"
    return f"an input of {what} of shape {[batch, *input_shape]}"


def input_words(input_shape, input_tokens: int | None = None) -> str:
    """How a per-sample input is named in messages: ``shape [3, 32, 32]`` (``... of token ids below 1000``)."""
    return f"shape {list(input_shape)}" + ("" if input_tokens is None else f" of token ids below {input_tokens}")


def check_input_shape(shape) -> tuple[int, ...]:
    """A per-sample input shape as a tuple of positive ints; FlexsimError otherwise."""
    ok = (isinstance(shape, (tuple, list)) and 1 <= len(shape) <= MAX_DIMS
          and all(isinstance(s, int) and not isinstance(s, bool) and 1 <= s <= 1 << 20 for s in shape))
    require(ok, f"invalid input shape {shape!r}: 1 to {MAX_DIMS} positive integers per sample (no batch "
            "dimension), e.g. 3,32,32")
    return tuple(shape)


def parse_input_shape(text: str) -> tuple[int, ...]:
    """``"3,32,32"`` (or ``3x32x32``) -> ``(3, 32, 32)``; FlexsimError naming a malformed text."""
    try:
        shape = tuple(int(p) for p in str(text).replace("x", ",").split(","))
    except ValueError:
        raise FlexsimError(f"invalid --input-shape {text!r}: comma-separated positive integers, e.g. 3,32,32") \
            from None
    return check_input_shape(shape)
