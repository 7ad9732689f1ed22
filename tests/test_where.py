"""Conditions on a table's rows (pyrolf/data/where.py): how they are read, what each operator
keeps in a column of numbers, text or booleans, and the one-line errors."""

import numpy as np
import pytest

from pyrolf.data import DataError
from pyrolf.data.where import kept, parse, select


@pytest.mark.parametrize("condition, parsed", [
    ("outcome=correct", ("outcome", "=", "correct")),
    (" outcome = correct ", ("outcome", "=", "correct")),
    ("firing_rate>=0.5", ("firing_rate", ">=", "0.5")),
    ("quality!=noise", ("quality", "!=", "noise")),
    ("rt<0.6", ("rt", "<", "0.6")),
    ("rt<=0.6", ("rt", "<=", "0.6")),
    ("depth>-100", ("depth", ">", "-100")),
    ("label=a=b", ("label", "=", "a=b")),     # the first operator splits; the rest is the value
    ("label=", ("label", "=", "")),
])
def test_a_condition_is_read_at_its_first_operator(condition, parsed):
    assert parse(condition) == parsed


@pytest.mark.parametrize("condition", ["outcome", "=correct", " >= 2", ""])
def test_a_condition_without_column_or_operator_is_refused(condition):
    with pytest.raises(ValueError, match="is no condition COLUMN=VALUE"):
        parse(condition)


NUMBERS = np.array([0.2, 0.5, np.nan, 1.0, 0.5])


@pytest.mark.parametrize("condition, expected", [
    ("x=0.5", [0, 1, 0, 0, 1]), ("x!=0.5", [1, 0, 0, 1, 0]), ("x<0.5", [1, 0, 0, 0, 0]),
    ("x<=0.5", [1, 1, 0, 0, 1]), ("x>0.5", [0, 0, 0, 1, 0]), ("x>=0.5", [0, 1, 0, 1, 1]),
    ("x>=5e-1", [0, 1, 0, 1, 1]),
])
def test_numbers_are_compared_as_numbers_and_nan_meets_nothing(condition, expected):
    np.testing.assert_array_equal(kept(NUMBERS, condition, "--units-where", "s.nwb"),
                                  np.array(expected, dtype=bool))
    # integers too, and each operator keeps the complement of its opposite where no NaN is
    whole = np.array([1, 2, 3])
    assert kept(whole, "x>=2", "o", "f").tolist() == (~kept(whole, "x<2", "o", "f")).tolist()
    assert kept(whole, "x=2", "o", "f").tolist() == (~kept(whole, "x!=2", "o", "f")).tolist()


def test_text_and_booleans_compare_by_equality():
    labels = np.array(["good", "mua", "noise", "good"], dtype=object)
    assert kept(labels, "quality=good", "o", "f").tolist() == [True, False, False, True]
    assert kept(labels, "quality!=noise", "o", "f").tolist() == [True, True, False, True]
    flags = np.array([True, False, True])
    for text in ("true", "True", "1"):
        assert kept(flags, f"ok={text}", "o", "f").tolist() == [True, False, True]
    assert kept(flags, "ok!=true", "o", "f").tolist() == [False, True, False]


@pytest.mark.parametrize("values, condition, message", [
    (np.array(["good", "mua"]), "quality>good", "quality of s.nwb holds text, which > cannot"),
    (np.array([True, False]), "ok=yes", "ok of s.nwb is true or false"),
    (np.array([True, False]), "ok<1", "ok of s.nwb is true or false"),
    (np.array([1.0, 2.0]), "rate>fast", "rate of s.nwb holds numbers; give one"),
])
def test_a_value_the_column_cannot_compare_is_one_line(values, condition, message):
    with pytest.raises(DataError, match=message) as error:
        kept(values, condition, "--units-where", "s.nwb")
    assert str(error.value).startswith(f"--units-where {condition}: ")


def test_rows_meet_every_condition_and_an_empty_selection_lists_the_values_left():
    table = {"quality": np.array(["good", "mua", "good", "good"]),
             "rate": np.array([0.1, 5.0, 2.0, 3.0])}
    assert select(table.__getitem__, ["quality=good", "rate>1"], 4, "o", "f").tolist() == [2, 3]
    assert select(table.__getitem__, [], 4, "o", "f").tolist() == [0, 1, 2, 3]
    # the second condition leaves nothing: the values listed are those the first one kept
    with pytest.raises(DataError) as error:
        select(table.__getitem__, ["rate>1", "quality=noise"], 4, "--units-where", "s.nwb",
               "unit")
    assert str(error.value) == ("--units-where quality=noise keeps no unit of s.nwb; quality "
                                "holds among the rows the conditions before it keep: good, mua")


def test_the_values_listed_are_numbers_in_order_or_text_with_missing_ones_said():
    numbers = np.array([11.0, 0.21000000000000002, 3.0, 10.0, np.nan])
    with pytest.raises(DataError, match="x holds: 0.21, 3, 10, 11, nan$"):
        select({"x": numbers}.__getitem__, ["x=99"], 5, "o", "f")
    text = np.array(["b", None, "a"], dtype=object)  # a unit without an electrode
    assert kept(text, "x!=a", "o", "f").tolist() == [True, False, False]
    with pytest.raises(DataError, match=r"x holds: a, b, \(missing\)$"):
        select({"x": text}.__getitem__, ["x=c"], 3, "o", "f")


def test_a_list_of_values_keeps_the_rows_that_hold_one_of_them_or_none_of_them():
    ids = np.array([3, 7, 9, 12])
    assert kept(ids, "id=3,9", "o", "f").tolist() == [True, False, True, False]
    assert kept(ids, "id = 3 , 9 ,99", "o", "f").tolist() == [True, False, True, False]
    assert kept(ids, "id!=3,9", "o", "f").tolist() == [False, True, False, True]
    # NaN among the values: = keeps the missing rows too, != keeps neither
    assert kept(NUMBERS, "x=nan,1", "o", "f").tolist() == [False, False, True, True, False]
    assert kept(NUMBERS, "x!=nan,0.5", "o", "f").tolist() == [True, False, False, True, False]
    labels = np.array(["good", "mua", "noise", None], dtype=object)
    assert kept(labels, "quality=good,mua", "o", "f").tolist() == [True, True, False, False]
    assert kept(labels, "quality!=good,mua", "o", "f").tolist() == [False, False, True, False]
    flags = np.array([True, False])
    assert kept(flags, "ok=true,false", "o", "f").tolist() == [True, True]
    # a wrong value in the list is said with the whole condition; an ordering takes one value
    with pytest.raises(DataError, match=r"^o id=3,x: id of f holds numbers"):
        kept(ids, "id=3,x", "o", "f")
    with pytest.raises(DataError, match=r"^o id<3,9: a list of values goes with = or != only"):
        kept(ids, "id<3,9", "o", "f")
    with pytest.raises(DataError, match=r"^o id=3,: the list holds an empty value"):
        kept(ids, "id=3,", "o", "f")


def test_a_value_no_row_holds_is_noted_where_it_would_change_nothing(capsys):
    """A typo in a list (``left,rigth``) or after != (``outcome!=mis``) kept rows silently."""
    labels = np.array(["left", "right", "up"])
    assert kept(labels, "side=left,rigth", "--trials-where", "s.nwb").tolist() == [
        True, False, False]
    assert ("--trials-where side=left,rigth: no row of s.nwb's table holds rigth in side "
            "(a typo?)") in capsys.readouterr().err
    assert kept(labels, "side!=lft", "o", "s.nwb").all()
    assert "holds lft in side" in capsys.readouterr().err
    kept(labels, "side=left,up", "o", "s.nwb")
    kept(labels, "side=rigth", "o", "s.nwb")  # (keeps no row: select says so, with the values)
    assert capsys.readouterr().err == ""


def test_text_values_that_hold_commas_are_listed_quoted():
    text = np.array(["a", "a, b", "b"])
    with pytest.raises(DataError, match=r"x holds: 'a', 'a, b', 'b'$"):
        select({"x": text}.__getitem__, ["x=c"], 3, "o", "f")
