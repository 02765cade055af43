"""A small safe evaluator for arithmetic equations (SVAMP labels and student outputs).

Model and dataset text is never passed to ``eval``: the expression is parsed with ``ast`` and only
numbers, parentheses, unary +/- and the four operations (plus ``**`` with a small exponent) are
allowed. Anything else raises ``UnsafeExpression``.
"""

from __future__ import annotations

import ast
import math
import operator

MAX_LENGTH = 200
MAX_EXPONENT = 16
MAX_MAGNITUDE = 1e15

_BINARY = {
    ast.Add: operator.add,
    ast.Sub: operator.sub,
    ast.Mult: operator.mul,
    ast.Div: operator.truediv,
    ast.Pow: operator.pow,
}
_UNARY = {ast.UAdd: operator.pos, ast.USub: operator.neg}


class UnsafeExpression(ValueError):
    """The text is not a plain arithmetic expression, or its value is out of bounds."""


def _evaluate(node: ast.AST) -> float:
    if isinstance(node, ast.Expression):
        return _evaluate(node.body)
    if isinstance(node, ast.Constant) and type(node.value) in (int, float):
        value = float(node.value)
        if not math.isfinite(value) or abs(value) > MAX_MAGNITUDE:
            raise UnsafeExpression("number out of range")
        return value
    if isinstance(node, ast.UnaryOp) and type(node.op) in _UNARY:
        return _UNARY[type(node.op)](_evaluate(node.operand))
    if isinstance(node, ast.BinOp) and type(node.op) in _BINARY:
        left, right = _evaluate(node.left), _evaluate(node.right)
        if isinstance(node.op, ast.Pow) and abs(right) > MAX_EXPONENT:
            raise UnsafeExpression(f"exponent {right} is larger than {MAX_EXPONENT}")
        if isinstance(node.op, ast.Div) and right == 0:
            raise UnsafeExpression("division by zero")
        try:
            value = _BINARY[type(node.op)](left, right)
        except (ArithmeticError, ValueError) as err:  # 0 ** -1, overflow
            raise UnsafeExpression(f"cannot compute: {err}") from None
        if isinstance(value, complex) or not math.isfinite(value) or abs(value) > MAX_MAGNITUDE:
            raise UnsafeExpression("value out of range")
        return value
    raise UnsafeExpression(f"not allowed in an arithmetic expression: {type(node).__name__}")


def safe_eval(expression: str) -> float:
    """Value of an arithmetic expression such as ``( 10.0 - ( 6.0 + 3.0 ) )``."""
    text = expression.strip().replace("×", "*").replace("÷", "/")
    if not text:
        raise UnsafeExpression("empty expression")
    if len(text) > MAX_LENGTH:
        raise UnsafeExpression(f"expression longer than {MAX_LENGTH} characters")
    try:
        tree = ast.parse(text, mode="eval")
    except (SyntaxError, ValueError) as err:
        raise UnsafeExpression(f"cannot parse {text!r}: {err}") from None
    return _evaluate(tree)


def try_eval(expression: str) -> float | None:
    """Like ``safe_eval`` but returns None for anything that is not a valid expression."""
    try:
        return safe_eval(expression)
    except (UnsafeExpression, RecursionError, MemoryError, ArithmeticError):
        return None


def same_value(a: float | None, b: float | None, tolerance: float = 1e-4) -> bool:
    return a is not None and b is not None and math.isclose(a, b, rel_tol=tolerance, abs_tol=tolerance)
