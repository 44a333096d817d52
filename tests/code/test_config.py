"""params.yaml and --set: typed, validated once, clear errors naming the bad value."""

from __future__ import annotations

import pytest

from fsmc.config import load_params, params_from_dict
from fsmc.errors import FsmcError
from tests.conftest import REPO


def test_shipped_params_yaml_loads_and_matches_defaults():
    params = load_params(REPO / "params.yaml")
    assert params.recover.method == "oe-kd"
    assert params.sample_few_shot.k_max == 20


def test_overrides_accept_section_key_and_unique_leaf():
    params = load_params(None, ["recover.method=kd", "k_max=10", "imbalance_ratio=5", "ratio=0.25"])
    assert params.recover.method == "kd"
    assert params.sample_few_shot.k_max == 10
    assert params.sample_few_shot.imbalance_ratio == 5.0
    assert params.compress.ratio == 0.25


@pytest.mark.parametrize(
    ("override", "named"),
    [
        ("k_max=0", "k_max=0"),
        ("imbalance_ratio=0.5", "imbalance_ratio=0.5"),
        ("imbalance_ratio=50", "exceeds k_max=20"),
        ("dataset=imagenet", "'imagenet'"),
        ("method=magic", "'magic'"),
        ("ratio=1.0", "compress.ratio=1.0"),
        ("ratio=0", "compress.ratio=0"),
        ("nonsense=1", "'nonsense'"),
        ("k_max=ten", "'ten'"),
        ("seed=1", "ambiguous"),
        ("budget=lots", "'lots'"),
        ("temperature=inf", "temperature='inf'"),
        ("recover.lr=nan", "recover.lr='nan'"),
    ],
)
def test_bad_values_are_refused_naming_the_value(override, named):
    with pytest.raises(FsmcError) as error:
        load_params(REPO / "params.yaml", [override])
    assert named in str(error.value)


def test_wrong_type_in_yaml_is_refused(tmp_path):
    path = tmp_path / "params.yaml"
    path.write_text("sample_few_shot:\n  k_max: [1, 2]\n")
    with pytest.raises(FsmcError, match="sample_few_shot.k_max"):
        load_params(path)


def test_unknown_section_is_refused():
    with pytest.raises(FsmcError, match="Unknown section 'trainer'"):
        params_from_dict({"trainer": {"epochs": 3}})


def test_oe_plug_in_applies_to_any_method_and_oe_kd_stays_an_alias():
    plain = load_params(None, ["method=bp"]).recover
    plugged = load_params(None, ["method=bp", "oe=true"]).recover
    alias = load_params(None, ["method=oe-kd"]).recover
    assert (plain.label, plain.uses_oe) == ("bp", False)
    assert (plugged.label, plugged.uses_oe) == ("bp+oe", True)
    assert (alias.base_method, alias.uses_oe, alias.label) == ("kd", True, "kd+oe")
    with pytest.raises(FsmcError, match="'maybe' is not a valid bool"):
        load_params(None, ["oe=maybe"])
