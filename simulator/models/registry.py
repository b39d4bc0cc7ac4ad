"""Models by name: the six ImageNet architectures and the Fashion-MNIST members.

Names are hyphenated (``resnet50``, ``mobilenet-v3-large``, ``efficientnet-b0``, ``fmnist-cnn-w32``); torchvision's
underscored names are accepted too. The ImageNet architectures come from torchvision when it can be imported, else
from this package's own definitions, which follow torchvision's layer structure and have the same parameter counts.
"""

from __future__ import annotations

import importlib
import re
from dataclasses import dataclass

from simulator.errors import FlexsimError, given_twice, require
from simulator.models.user import UserModel, is_user_model, parse_user_model

FMNIST_PATTERN = re.compile(r"fmnist-cnn-w([1-9][0-9]*)")


@dataclass(frozen=True)
class Architecture:
    """A named architecture: its per-sample input shape and its parameter count (as torchvision builds it)."""

    name: str
    torchvision_name: str
    input_shape: tuple[int, ...]
    params: int


IMAGENET_INPUT = (3, 224, 224)
FMNIST_INPUT = (1, 28, 28)

#: Parameter counts as torchvision builds these architectures (1000 classes), equal to the ``params`` of the H100
#: measurements in ``profiles/raw/``.
ARCHITECTURES = {a.name: a for a in (
    Architecture("alexnet", "alexnet", IMAGENET_INPUT, 61_100_840),
    Architecture("resnet18", "resnet18", IMAGENET_INPUT, 11_689_512),
    Architecture("resnet50", "resnet50", IMAGENET_INPUT, 25_557_032),
    Architecture("vgg16", "vgg16", IMAGENET_INPUT, 138_357_544),
    Architecture("mobilenet-v3-large", "mobilenet_v3_large", IMAGENET_INPUT, 5_483_032),
    Architecture("efficientnet-b0", "efficientnet_b0", IMAGENET_INPUT, 5_288_548),
)}

#: Widths of the shipped Fashion-MNIST ensemble's members.
FMNIST_WIDTHS = (8, 32, 64)
#: Widest Fashion-MNIST member built by name (135 w^2 weights: ~140 M, 0.6 GB in fp32, at this width).
MAX_FMNIST_WIDTH = 1024


def canonical_name(name: str) -> str:
    """The hyphenated name of a known model, or FlexsimError naming the unknown one."""
    key = str(name).strip().lower().replace("_", "-")
    require(key in ARCHITECTURES or FMNIST_PATTERN.fullmatch(key),
            f"unknown model {name!r} (known: {', '.join(known_models())}, or fmnist-cnn-w<width>)")
    width = FMNIST_PATTERN.fullmatch(key)
    require(width is None or int(width[1]) <= MAX_FMNIST_WIDTH,
            f"invalid model {name!r}: the width of a Fashion-MNIST member goes up to {MAX_FMNIST_WIDTH}")
    return key


def is_builtin(name: str) -> bool:
    """Whether `name` (any spelling `canonical_name` takes) is a built-in model's."""
    key = str(name).strip().lower().replace("_", "-")
    return key in ARCHITECTURES or FMNIST_PATTERN.fullmatch(key) is not None


def parse_models(tokens, input_shape=None, input_tokens=None) -> tuple[str | UserModel, ...]:
    """Models named on the command line or through the API: built-in names (made canonical) and users' models
    (``NAME=SOURCE:CALLABLE``, taking per-sample `input_shape`, `simulator.models.user`); FlexsimError for an unknown
    name, a user's model named as a built-in one, a name given twice, or an `input_shape` without a user's model.
    `input_tokens`: the users' models take token ids below it (`simulator.models.user.model_input`)."""
    models = tuple(parse_user_model(t, input_shape, input_tokens) if is_user_model(t) else canonical_name(t)
                   for t in tokens)
    names = [model_name(m) for m in models]
    for m in (m for m in models if isinstance(m, UserModel)):
        require(not is_builtin(m.name),
                f"invalid model {m.name}={m.implementation}: {m.name!r} is a built-in model's name; choose another")
    twice = given_twice(names)
    require(not twice, f"invalid models: {', '.join(twice)} given twice")
    require((input_shape is None and input_tokens is None) or any(isinstance(m, UserModel) for m in models),
            "the input shape and tokens are for users' models (NAME=SOURCE:CALLABLE); the built-in models have "
            "their own")
    return models


def model_name(model: str | UserModel) -> str:
    """The name of a built-in model (canonical) or of a user's model."""
    return model.name if isinstance(model, UserModel) else model


def bare_named(model: str | UserModel) -> bool:
    """Whether a model's first form in a profile carries its name alone (`profile_model_name`): every model's but
    the ImageNet architectures' (a Fashion-MNIST member's, a user's), whose logit caches look their cost up by that
    name."""
    return model_name(model) not in ARCHITECTURES


def known_models() -> tuple[str, ...]:
    """Names of the models that `build_model` knows."""
    return tuple(ARCHITECTURES) + tuple(f"fmnist-cnn-w{w}" for w in FMNIST_WIDTHS)


def profile_model_name(model: str, dtype: str, mode: str, bare: bool = False) -> str:
    """The name of `model` measured (or derived) in `dtype` and `mode` in a profile: ``{model}-{dtype}-{mode}``,
    or `model` alone when `bare` (a Fashion-MNIST member's first form, the name its logit cache looks up)."""
    return model if bare else f"{model}-{dtype}-{mode}"


def check_entry_names(names: list[str], models: list[str], what: str) -> None:
    """FlexsimError where two forms of `models` (one per name, in the same order) would take the same profile model
    name (a model named like another's form, e.g. ``a`` and ``a-fp32-eager``)."""
    seen = {}
    for name, model in zip(names, models):
        other = seen.setdefault(name, model)
        require(other == model, f"{what}: models {other} and {model} would both give the profile model {name!r}; "
                "rename one")


def input_shape(name: str | UserModel) -> tuple[int, ...]:
    """Per-sample input shape ``(channels, height, width)`` of model `name` (a user's model: the one it was given)."""
    if isinstance(name, UserModel):
        return name.input_shape
    key = canonical_name(name)
    return FMNIST_INPUT if key.startswith("fmnist-") else ARCHITECTURES[key].input_shape


def input_tokens(name: str | UserModel) -> int | None:
    """The vocabulary of a model's token-id inputs (a user's model given ``--input-tokens``), else None (floats)."""
    return name.input_tokens if isinstance(name, UserModel) else None


def build_model(name: str | UserModel):
    """A freshly initialised model `name` (random weights; a user's model as its code builds it) in eval mode, and
    the implementation used."""
    if isinstance(name, UserModel):
        return name.build(), name.implementation
    key = canonical_name(name)
    match = FMNIST_PATTERN.fullmatch(key)
    if match:
        from simulator.models.fmnist import FashionCNN
        return FashionCNN(int(match.group(1))).eval(), "simulator.models.fmnist"
    model, implementation = _torchvision(ARCHITECTURES[key].torchvision_name)
    if model is None:
        model, implementation = _own(key), f"simulator.models ({key})"
    return model.eval(), implementation


def _torchvision(torchvision_name: str):
    try:
        import torchvision
    except Exception:  # noqa: BLE001 -- torchvision absent or built against another torch
        return None, None
    try:
        return torchvision.models.get_model(torchvision_name, weights=None), f"torchvision {torchvision.__version__}"
    except Exception as exc:  # noqa: BLE001
        raise FlexsimError(f"model {torchvision_name!r}: torchvision cannot build it ({exc})") from None


#: Own definitions: name -> (module, callable that builds the model).
_OWN_BUILDERS = {
    "alexnet": ("simulator.models.alexnet", "AlexNet"),
    "resnet18": ("simulator.models.resnet", "resnet18"),
    "resnet50": ("simulator.models.resnet", "resnet50"),
    "vgg16": ("simulator.models.vgg", "VGG"),
    "mobilenet-v3-large": ("simulator.models.mobilenet_v3", "MobileNetV3"),
    "efficientnet-b0": ("simulator.models.efficientnet", "EfficientNet"),
}


def _own(key: str):
    module, builder = _OWN_BUILDERS[key]
    return getattr(importlib.import_module(module), builder)()
