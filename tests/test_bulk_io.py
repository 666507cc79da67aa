"""Bulk I/O (cgrad.values, cgrad.set_data) takes exactly what Value(x) takes:
real numbers (Python's, numpy's real scalars, numpy arrays of a bool, int,
uint or float dtype, nested lists of numbers). Anything else raises the
TypeError Value(x) raises for that element, and changes nothing."""
import datetime
import decimal
import fractions

import numpy as np
import pytest

import cgrad
from cgrad import Value

NOT_NUMBERS = {
    "None": None,
    "str": "3.5",
    "bytes": b"3",
    "complex": 1 + 2j,
    "numpy complex": np.complex128(1.5),
    "datetime": datetime.datetime(2020, 1, 2),
    "numpy datetime": np.datetime64("2020-01-02"),
    "timedelta": datetime.timedelta(days=3),
    "object": object(),
    "Decimal": decimal.Decimal("1.5"),
    "Fraction": fractions.Fraction(1, 2),
    "Value": Value(1.0),
    "dict": {1: 2.0},
}


def message_of_value(x):
    with pytest.raises(TypeError) as info:
        Value(x)
    return str(info.value)


@pytest.mark.parametrize("name", sorted(NOT_NUMBERS))
def test_values_raises_values_type_error(name):
    bad = NOT_NUMBERS[name]
    message = message_of_value(bad)
    for array in ([1.0, bad], [[1.0, 2.0], [3.0, bad]], (bad,), np.array([1.0, bad], dtype=object)):
        with pytest.raises(TypeError) as info:
            cgrad.values(array)
        assert str(info.value) == message, array
    if not isinstance(bad, dict):  # a dict is iterated for its keys, as list(d) is
        with pytest.raises(TypeError) as info:
            cgrad.values(bad)
        assert str(info.value) == message


@pytest.mark.parametrize("name", sorted(NOT_NUMBERS))
def test_set_data_raises_and_writes_nothing(name):
    bad = NOT_NUMBERS[name]
    vs = cgrad.values([1.0, 2.0, 3.0])
    for array in ([bad, 7.0, bad], [7.0, 8.0, bad], np.array([7.0, bad, 9.0], dtype=object)):
        with pytest.raises(TypeError) as info:
            cgrad.set_data(vs, array)
        assert str(info.value) == message_of_value(bad)
        assert cgrad.data(vs).tolist() == [1.0, 2.0, 3.0]


@pytest.mark.parametrize("array", [
    np.array(["1.0", "2.0"]), np.array([1 + 0j, 2 + 0j]), np.array(["2020-01-01"], dtype="datetime64[D]"),
    np.array([1, 2], dtype="timedelta64[s]")], ids=["str", "complex", "datetime64", "timedelta64"])
def test_numpy_arrays_of_other_dtypes_raise(array):
    message = message_of_value(array.reshape(-1)[0])
    with pytest.raises(TypeError, match="real number") as info:
        cgrad.values(array)
    assert str(info.value) == message
    vs = cgrad.values(np.zeros(array.size))
    with pytest.raises(TypeError):
        cgrad.set_data(vs, array)
    assert cgrad.data(vs).tolist() == [0.0] * array.size


@pytest.mark.parametrize("dtype", [np.bool_, np.int8, np.int64, np.uint8, np.uint64, np.float16,
                                   np.float32, np.float64])
def test_numpy_real_arrays_keep_working(dtype):
    array = np.array([[0, 1, 1], [1, 0, 1]]).astype(dtype)
    grid = cgrad.values(array)
    assert [[v.data for v in row] for row in grid] == array.astype(np.float64).tolist()
    flat = cgrad.values(array.reshape(-1))
    cgrad.set_data(flat, array[::-1])  # not contiguous: read through a copy
    assert cgrad.data(flat).tolist() == array[::-1].reshape(-1).astype(np.float64).tolist()


def test_numbers_of_every_real_kind_keep_working():
    mixed = [1, 2.5, True, np.float32(0.25), np.int16(-3), np.uint64(2**63), 2**70]
    vs = cgrad.values(mixed)
    assert [v.data for v in vs] == [float(x) for x in mixed]
    assert [v.data for v in vs] == [Value(x).data for x in mixed]
    cgrad.set_data(vs, [x + 1 for x in mixed])
    assert cgrad.data(vs).tolist() == [float(x + 1) for x in mixed]
    nested = cgrad.values([[1, 2], (3, 4), range(5, 7), np.array([7.0, 8.0])])
    assert [[v.data for v in row] for row in nested] == [[1, 2], [3, 4], [5, 6], [7, 8]]
    cube = cgrad.values([[[1.0], [2.0]], [[3.0], [4.0]]])
    assert [[[v.data for v in c] for c in row] for row in cube] == [[[1.0], [2.0]], [[3.0], [4.0]]]
    assert [v.data for v in cgrad.values(x / 2 for x in range(3))] == [0.0, 0.5, 1.0]
    assert [v.data for v in cgrad.values(2.5)] == [2.5]
    assert cgrad.values([]) == [] and cgrad.values(np.zeros(0)) == []


def test_ragged_rows_are_a_value_error():
    for ragged in ([[1.0, 2.0], [3.0]], [[1.0], 2.0]):
        with pytest.raises(ValueError):
            cgrad.values(ragged)
    vs = cgrad.values([1.0, 2.0])
    with pytest.raises(ValueError):
        cgrad.set_data(vs, [[1.0], [2.0, 3.0]])
    assert cgrad.data(vs).tolist() == [1.0, 2.0]
