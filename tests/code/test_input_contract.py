"""A registry teacher's input contract decides unset image settings and refuses data it was not trained for."""

from __future__ import annotations

import pytest

from fsmc.config import DataParams
from fsmc.errors import FsmcError
from fsmc.models.input_contract import InputContract, apply_input_contract, check_against_contract, signature_input_shape

TEACHER = "models:/cars/3"
CONTRACT = InputContract(channels=3, height=64, width=64, class_names=("bus", "car", "van"))


def test_the_signature_of_an_nchw_tensor_gives_channels_height_width():
    spec = [{"type": "tensor", "tensor-spec": {"dtype": "float32", "shape": [-1, 3, 64, 64]}}]
    assert signature_input_shape(spec) == [3, 64, 64]
    assert signature_input_shape([{"type": "tensor", "tensor-spec": {"shape": [-1, 10]}}]) is None
    assert signature_input_shape([{"type": "tensor", "tensor-spec": {"shape": [-1, 3, -1, -1]}}]) is None
    assert signature_input_shape([{"type": "double", "name": "x"}]) is None


def test_unset_image_settings_come_from_the_contract_and_set_ones_must_agree():
    data = apply_input_contract(DataParams(teacher=TEACHER), CONTRACT)
    assert (data.image_size, data.image_channels) == (64, 3)
    assert apply_input_contract(DataParams(teacher=TEACHER, image_size=64, image_channels=3), CONTRACT) == data
    assert apply_input_contract(DataParams(teacher=TEACHER), InputContract()) == DataParams(teacher=TEACHER)
    with pytest.raises(FsmcError, match=r"data.image_size=32 but the teacher models:/cars/3 was registered for 64x64"):
        apply_input_contract(DataParams(teacher=TEACHER, image_size=32), CONTRACT)
    with pytest.raises(FsmcError, match=r"data.image_channels=1 .* set it to 3"):
        apply_input_contract(DataParams(teacher=TEACHER, image_channels=1), CONTRACT)
    with pytest.raises(FsmcError, match="square"):
        apply_input_contract(DataParams(teacher=TEACHER), InputContract(height=64, width=48))


def test_data_in_another_class_order_or_shape_is_refused():
    check_against_contract(CONTRACT, TEACHER, ("bus", "car", "van"), (64, 64, 3))
    with pytest.raises(FsmcError, match=r"registered for the classes \['bus', 'car', 'van'\].*\['car', 'bus', 'van'\]"):
        check_against_contract(CONTRACT, TEACHER, ("car", "bus", "van"), (64, 64, 3))
    with pytest.raises(FsmcError, match="data.image_size=64"):
        check_against_contract(CONTRACT, TEACHER, ("bus", "car", "van"), (32, 32, 3))
    with pytest.raises(FsmcError, match="data.image_channels=3"):
        check_against_contract(CONTRACT, TEACHER, ("bus", "car", "van"), (64, 64, 1))
    check_against_contract(InputContract(), TEACHER, ("car", "bus"), (8, 8, 1))  # nothing recorded: nothing to refuse


def test_a_fetched_record_round_trips_into_the_contract():
    record = {"uri": TEACHER, "input_shape": [3, 64, 64], "class_names": ["bus", "car", "van"]}
    assert InputContract.from_record(record) == CONTRACT
    assert InputContract.from_record({"uri": TEACHER}) == InputContract()
