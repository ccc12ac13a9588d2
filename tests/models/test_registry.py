"""The family kit: one registry, one size-table helper, one generic `from_description`, and
one meaning of the `width` / `depth` multipliers in every family."""

from __future__ import annotations

import pytest
import torch

from posekit.models import REGISTRY, create, list_models, model_from_description
from posekit.utils.bounds import count_parameters
from posekit.utils.errors import UserError

#: the smallest size of each family (the multipliers are checked on it)
SMALLEST = {"heatpose": "heatpose-t", "liftpose": "liftpose-27", "pafpose": "pafpose-s",
            "rtmpose": "rtmpose-t", "rtpose": "rtpose-n",
            "vitpose": "vitpose-s", "yolo": "yolov8n-pose"}  # fmt: skip


def _meta_params(name: str, **overrides: float) -> int:
    with torch.device("meta"):
        return count_parameters(create(name, "coco17", **overrides))


def test_every_family_has_a_smallest_size_here() -> None:
    assert sorted(SMALLEST) == REGISTRY.family_names()
    assert all(name in list_models() for name in SMALLEST.values())


@pytest.mark.parametrize("family", sorted(SMALLEST))
def test_width_is_relative_to_the_size_in_every_family(family: str) -> None:
    """Before: `--width 0.5` left rtpose-s at 11.7 M parameters (an absolute width, rtpose-s's
    own) and shrank heatpose-s 4.5 -> 1.1 M (relative). Now 0.5 halves every size's channels,
    so the parameters fall to about a quarter (a half where a term is linear in the width)."""
    name = SMALLEST[family]
    full, half = _meta_params(name), _meta_params(name, width=0.5)
    assert half < 0.5 * full, (name, full, half)
    assert _meta_params(name, width=1.0) == full


#: families whose depth is not a multiplier: liftpose's blocks are its receptive field
NO_DEPTH = {"liftpose"}


@pytest.mark.parametrize("family", sorted(SMALLEST.keys() - NO_DEPTH))
def test_depth_is_relative_to_the_size_in_every_family(family: str) -> None:
    name = SMALLEST[family]
    full, deeper = _meta_params(name), _meta_params(name, depth=2.0)
    assert deeper > full, (name, full, deeper)


@pytest.mark.parametrize("family", sorted(SMALLEST))
def test_an_explicit_field_wins_over_the_multiplier(family: str) -> None:
    name = SMALLEST[family]
    with torch.device("meta"):
        plain = create(name, "coco17", width=0.5)
    fields = {"rtpose": "max_channels", "yolo": "max_channels", "vitpose": "decoder_channels"}
    field = {**fields, "liftpose": "channels"}.get(family, "deepen")
    value = {"max_channels": 64, "decoder_channels": 32, "deepen": 0.5, "channels": 64}[field]
    with torch.device("meta"):
        both = create(name, "coco17", width=0.5, **{field: value})
    assert getattr(both.config, field) == value != getattr(plain.config, field)


@pytest.mark.parametrize("family", sorted(SMALLEST))
def test_the_generic_description_round_trips_every_family(family: str) -> None:
    """One `from_description` for all families: tuples (input sizes, means) come back as
    tuples from JSON's lists, so the config is equal, not merely similar."""
    import json

    with torch.device("meta"):
        net = create(SMALLEST[family], "coco17", width=0.5)
        desc = json.loads(json.dumps(net.describe()))
        again = model_from_description(desc)
    assert type(again) is type(net) and again.config == net.config
    assert again.schemas == net.schemas and again.names == net.names


def test_a_description_from_before_rtposes_heatmap_head_still_loads() -> None:
    with torch.device("meta"):
        desc = create("rtpose-n", "coco17").describe()
        del desc["config"]["heatmap"]
        assert model_from_description(desc).config.heatmap is False


def test_unknown_names_list_what_is_registered() -> None:
    with pytest.raises(UserError, match=r"unknown model 'rtpose-q'; registered: heatpose-l"):
        create("rtpose-q")
    with pytest.raises(UserError, match=r"unknown model family 'pafpos'; registered: heatpose"):
        REGISTRY.family("pafpos")


def test_a_family_registered_twice_is_refused() -> None:
    with pytest.raises(ValueError, match="registered twice"):
        REGISTRY.register_family("rtpose")(type("Again", (), {}))
    with pytest.raises(ValueError, match="registered twice"):
        REGISTRY.register_model("rtpose-n")(lambda **kw: None)
