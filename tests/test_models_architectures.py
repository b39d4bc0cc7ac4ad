"""The six ImageNet architectures (own definitions of torchvision's) and the model registry."""

import json
from pathlib import Path

import pytest

from simulator.errors import FlexsimError
from simulator.models.registry import (ARCHITECTURES, build_model, canonical_name, input_shape, known_models,
                                       profile_model_name)

torch = pytest.importorskip("torch")
RAW = Path(__file__).resolve().parent.parent / "profiles" / "raw" / "h100-2026-11-24.json"


def _h100_params() -> dict:
    records = json.loads(RAW.read_text())["eager_architectures"]
    return {r["arch"].replace("_", "-"): r["params"] for r in records}


@pytest.mark.parametrize("name", sorted(ARCHITECTURES))
def test_parameter_count_equals_the_measured_torchvision_model(name):
    model, _ = build_model(name)
    assert sum(p.numel() for p in model.parameters()) == _h100_params()[name] == ARCHITECTURES[name].params
    assert not model.training


@pytest.mark.parametrize("name", sorted(ARCHITECTURES))
def test_forward_gives_one_logit_vector_per_sample(name):
    model, _ = build_model(name)
    with torch.inference_mode():
        out = model(torch.randn(2, 3, 64, 64))  # adaptive pooling: any resolution >= 63 px runs
    assert out.shape == (2, 1000) and torch.isfinite(out).all()


@pytest.mark.parametrize("name, keys", [
    ("resnet50", ["conv1.weight", "layer1.0.downsample.0.weight", "layer4.2.bn3.running_var", "fc.bias"]),
    ("mobilenet-v3-large", ["features.0.0.weight", "features.4.block.2.fc1.weight", "features.16.1.weight",
                            "classifier.3.weight"]),
    ("efficientnet-b0", ["features.1.0.block.0.0.weight", "features.1.0.block.1.fc2.bias",
                         "features.8.0.weight", "classifier.1.weight"]),
    ("vgg16", ["features.28.weight", "classifier.6.weight"]),
    ("alexnet", ["features.10.weight", "classifier.6.weight"]),
])
def test_state_dict_keys_follow_torchvision(name, keys):
    state = build_model(name)[0].state_dict()
    assert all(k in state for k in keys)


def test_stochastic_depth_is_identity_in_eval_and_drops_rows_in_training():
    from simulator.models.blocks import StochasticDepth

    layer, x = StochasticDepth(0.5), torch.ones(400, 3)
    assert torch.equal(layer.eval()(x), x)
    kept = layer.train()(x)[:, 0]
    assert set(kept.unique().tolist()) <= {0.0, 2.0} and 120 < int((kept > 0).sum()) < 280


def test_names_and_bad_names():
    assert canonical_name("mobilenet_v3_large") == "mobilenet-v3-large"
    assert input_shape("fmnist-cnn-w16") == (1, 28, 28) and input_shape("resnet18") == (3, 224, 224)
    assert set(ARCHITECTURES) < set(known_models())
    assert profile_model_name("resnet50", "fp16", "graph") == "resnet50-fp16-graph"
    assert profile_model_name("fmnist-cnn-w8", "fp32", "eager", bare=True) == "fmnist-cnn-w8"
    for bad in ("resnet51", "fmnist-cnn-w0", ""):
        with pytest.raises(FlexsimError, match="unknown model"):
            canonical_name(bad)
