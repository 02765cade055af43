"""The safe arithmetic evaluator used for SVAMP labels and student outputs."""

from __future__ import annotations

import pytest

from ragdistill.evaluation.arith import MAX_LENGTH, UnsafeExpression, safe_eval, same_value, try_eval


@pytest.mark.parametrize(
    ("expression", "value"),
    [
        ("( 10.0 - ( 6.0 + 3.0 ) )", 1.0),
        ("( 84.0 / 2.0 )", 42.0),
        ("( ( 17.0 + 15.0 ) + 2.0 )", 34.0),
        ("( 7.0 * 30.0 )", 210.0),
        ("( ( 63.0 - 29.0 ) / 2.0 )", 17.0),
        ("-( 3.0 - 5.0 )", 2.0),
        ("2 ** 3", 8.0),
        ("10 × 4 ÷ 8", 5.0),
        ("  7  ", 7.0),
        ("1 / 3", 1 / 3),
    ],
)
def test_safe_eval_values(expression, value):
    assert safe_eval(expression) == pytest.approx(value)
    assert try_eval(expression) == pytest.approx(value)


HOSTILE = [
    "__import__('os').system('x')",
    "().__class__",
    "().__class__.__bases__[0].__subclasses__()",
    "lambda: 1",
    "2**10**10",
    "9**999",
    "1/0",
    "( 5.0 / ( 2.0 - 2.0 ) )",
    "1" + "+1" * 5000,  # 10,001 characters
    "[1,2]",
    '"a"',
    "'a' * 3",
    "x",
    "x + 1",
    "True",
    "None",
    "1 if 1 else 2",
    "abs(-1)",
    "1; 2",
    "1 % 2",
    "7 // 2",
    "1 < 2",
    "(-8) ** 0.5",
    "1e10 * 1e10",
    "",
    "   ",
    "( 1 + ",
]


@pytest.mark.parametrize("expression", HOSTILE)
def test_hostile_inputs_raise(expression):
    with pytest.raises(UnsafeExpression):
        safe_eval(expression)
    assert try_eval(expression) is None


def test_long_expression_is_rejected_before_parsing():
    text = "(" * 5000 + "1" + ")" * 5000
    assert len(text) > MAX_LENGTH
    with pytest.raises(UnsafeExpression, match="longer than"):
        safe_eval(text)


def test_exponent_limit_message():
    with pytest.raises(UnsafeExpression, match="exponent"):
        safe_eval("9**999")
    assert safe_eval("2 ** 16") == 65536.0


def test_same_value():
    assert same_value(42.0, 42.0)
    assert same_value(1 / 3, 0.33333334)
    assert same_value(try_eval("( 84.0 / 2.0 )"), try_eval("42"))
    assert not same_value(42.0, 43.0)
    assert not same_value(0.0, 0.001)
    assert not same_value(None, 1.0)
    assert not same_value(1.0, None)
    assert not same_value(None, None)


def test_zero_to_negative_power_is_unsafe():
    assert try_eval("0 ** -1") is None
    with pytest.raises(UnsafeExpression):
        safe_eval("( 0.0 ** -1.0 )")


def test_out_of_range_literals_are_unsafe():
    with pytest.raises(UnsafeExpression):
        safe_eval("1e300 ** 2")
    with pytest.raises(UnsafeExpression):
        safe_eval("1e999")
