"""The ``math`` category: a safe arithmetic evaluator and basic statistics.

The evaluator walks the parsed ``ast`` and knows only numbers, arithmetic operators, a
whitelist of ``math`` functions and constants: no names, attributes, subscripts, comprehensions
or lambdas can be reached, and there is no ``eval``. Integer results are capped in size before
they are computed (``9**9**9`` is refused, not attempted), so one expression cannot pin the CPU.
"""

from __future__ import annotations

import ast
import math
import operator
import statistics
from collections.abc import Callable
from typing import Annotated, Any

from pydantic import BaseModel, Field

from hub.errors import ToolFailed

from .base import Risk, Tool
from .decorator import tool

MAX_INT_BITS = 10_000
"""About 3,000 decimal digits: larger integers are refused rather than computed."""
MAX_EXPRESSION_CHARS = 500
MAX_FACTORIAL = 1000

Number = int | float

_BINARY: dict[type[ast.operator], Callable[[Any, Any], Number]] = {
    ast.Add: operator.add,
    ast.Sub: operator.sub,
    ast.Mult: operator.mul,
    ast.Div: operator.truediv,
    ast.FloorDiv: operator.floordiv,
    ast.Mod: operator.mod,
    ast.Pow: operator.pow,
}
_UNARY: dict[type[ast.unaryop], Callable[[Any], Number]] = {ast.UAdd: operator.pos, ast.USub: operator.neg}
_CONSTANTS: dict[str, float] = {"pi": math.pi, "e": math.e, "tau": math.tau, "inf": math.inf}


def _bounded_int(name: str, limit: int) -> Callable[[Number], None]:
    def check(*args: Number) -> None:
        if any(isinstance(a, int) and abs(a) > limit for a in args):
            raise ToolFailed(f"{name}() is limited to arguments up to {limit}")

    return check


_FUNCTIONS: dict[str, Callable[..., Number]] = {
    name: getattr(math, name)
    for name in (
        "sqrt", "exp", "log", "log10", "log2", "sin", "cos", "tan", "asin", "acos", "atan", "atan2",
        "sinh", "cosh", "tanh", "degrees", "radians", "floor", "ceil", "trunc", "fabs", "hypot",
        "gcd", "lcm", "factorial", "comb", "perm", "isqrt",
    )
} | {"abs": abs, "round": round, "min": min, "max": max}  # fmt: skip
_GUARDS: dict[str, Callable[..., None]] = {
    name: _bounded_int(name, MAX_FACTORIAL) for name in ("factorial", "comb", "perm")
}


def _check_int(value: Number) -> Number:
    if isinstance(value, int) and value.bit_length() > MAX_INT_BITS:
        raise ToolFailed(f"result is too large (more than {MAX_INT_BITS} bits)")
    return value


def _guard_binary(op: type[ast.operator], left: Number, right: Number) -> None:
    """Refuse integer operations whose result would exceed the size cap, before computing."""
    if not (isinstance(left, int) and isinstance(right, int)):
        return
    if op is ast.Pow and right > 0 and abs(left) > 1:
        if right > MAX_INT_BITS or right * abs(left).bit_length() > MAX_INT_BITS + 64:
            raise ToolFailed(f"exponent too large: the result would exceed {MAX_INT_BITS} bits")
    elif op is ast.Mult and left.bit_length() + right.bit_length() > MAX_INT_BITS + 1:
        raise ToolFailed(f"result is too large (more than {MAX_INT_BITS} bits)")


class _Evaluator:
    def eval(self, node: ast.AST) -> Number:
        match node:
            case ast.Expression(body=body):
                return self.eval(body)
            case ast.Constant(value=value) if isinstance(value, int | float) and not isinstance(value, bool):
                return _check_int(value)
            case ast.BinOp(left=left, op=op, right=right) if type(op) in _BINARY:
                a, b = self.eval(left), self.eval(right)
                _guard_binary(type(op), a, b)
                return _check_int(_BINARY[type(op)](a, b))
            case ast.BinOp(op=op) | ast.UnaryOp(op=op) if type(op) not in _BINARY and type(op) not in _UNARY:
                raise ToolFailed(f"operator {type(op).__name__} is not allowed")
            case ast.UnaryOp(op=op, operand=operand) if type(op) in _UNARY:
                return _UNARY[type(op)](self.eval(operand))
            case ast.Name(id=name) if name in _CONSTANTS:
                return _CONSTANTS[name]
            case ast.Name(id=name):
                raise ToolFailed(f"unknown name {name!r}; constants: {', '.join(_CONSTANTS)}")
            case ast.Call(func=ast.Name(id=name), args=args, keywords=[]) if name in _FUNCTIONS:
                values = [self.eval(a) for a in args]
                if name in _GUARDS:
                    _GUARDS[name](*values)
                return _check_int(_FUNCTIONS[name](*values))
            case ast.Call(func=ast.Name(id=name)):
                raise ToolFailed(
                    f"function {name!r} is not available (or was given keyword arguments); "
                    f"functions: {', '.join(_FUNCTIONS)}"
                )
            case ast.Attribute() | ast.Call(func=ast.Attribute()):
                raise ToolFailed("attribute access is not allowed; write e.g. sqrt(2), not math.sqrt(2)")
            case _:
                raise ToolFailed(f"{type(node).__name__} is not allowed in an expression")


def evaluate(expression: str) -> Number:
    """Evaluate an arithmetic expression safely; raises ``ToolFailed`` with the reason."""
    if len(expression) > MAX_EXPRESSION_CHARS:
        raise ToolFailed(f"expression is longer than {MAX_EXPRESSION_CHARS} characters")
    try:
        tree = ast.parse(expression.strip().replace("^", "**"), mode="eval")
    except SyntaxError as exc:
        raise ToolFailed(f"cannot parse expression: {exc.msg}") from None
    try:
        result = _Evaluator().eval(tree)
    except ZeroDivisionError:
        raise ToolFailed("division by zero") from None
    except OverflowError:
        raise ToolFailed("result is too large for a floating-point number") from None
    except (ValueError, TypeError) as exc:
        raise ToolFailed(f"cannot evaluate: {exc}") from None
    except RecursionError:
        raise ToolFailed("expression is nested too deeply") from None
    if isinstance(result, complex):
        raise ToolFailed("the result is a complex number, which is not supported")
    return result


@tool(category="math", risk=Risk.LOW)
async def calculate(expression: Annotated[str, Field(min_length=1, max_length=MAX_EXPRESSION_CHARS)]) -> str:
    """Evaluate an arithmetic expression exactly (integers are arbitrary precision).

    Supports + - * / // % ** (or ^), parentheses, pi, e, tau, inf and the functions sqrt, exp,
    log(x[, base]), log10, log2, trig and hyperbolic functions, degrees, radians, floor, ceil,
    trunc, abs, round, min, max, hypot, gcd, lcm, factorial, comb, perm, isqrt.

    Args:
        expression: e.g. "2**10 + sqrt(16) / 3".
    """
    result = evaluate(expression)
    return repr(result) if isinstance(result, float) else str(result)


class Statistics(BaseModel):
    count: int
    sum: float
    mean: float
    median: float
    min: float
    max: float
    stdev: float | None
    """Sample standard deviation; None for fewer than two values."""


@tool(category="math", risk=Risk.LOW)
async def stats(values: Annotated[list[float], Field(min_length=1, max_length=100_000)]) -> Statistics:
    """Basic statistics of a list of numbers: count, sum, mean, median, min, max, sample stdev.

    Args:
        values: the numbers.
    """
    if not all(math.isfinite(v) for v in values):
        raise ToolFailed("values must be finite numbers (no inf or nan)")
    return Statistics(
        count=len(values),
        sum=math.fsum(values),
        mean=statistics.fmean(values),
        median=statistics.median(values),
        min=min(values),
        max=max(values),
        stdev=statistics.stdev(values) if len(values) > 1 else None,
    )


def math_tools() -> list[Tool]:
    return [calculate, stats]
