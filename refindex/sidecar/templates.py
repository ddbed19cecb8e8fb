"""kerchunk's ``templates`` and ``gen``: ``{{name}}`` substitution and generated references.

kerchunk renders these with jinja2; a sidecar is data written by someone else, so here the
expressions are evaluated by a small arithmetic-only evaluator instead of a template engine.
"""

from __future__ import annotations

import ast
import itertools
import operator
import re

from refindex.errors import SidecarError

_PLACEHOLDER = re.compile(r"{{(.*?)}}")
_BINARY = {
    ast.Add: operator.add,
    ast.Sub: operator.sub,
    ast.Mult: operator.mul,
    ast.FloorDiv: operator.floordiv,
    ast.Mod: operator.mod,
    ast.Pow: operator.pow,
}


def render(text: str, variables: dict, name: str, key: str) -> str:
    """``text`` with every ``{{ expression }}`` replaced by its value."""
    if "{{" not in text:
        return text

    def substitute(match: re.Match) -> str:
        return str(_evaluate(match.group(1).strip(), variables, name, key))

    return _PLACEHOLDER.sub(substitute, text)


def expand_gen(gen: dict, templates: dict, name: str) -> dict[str, list]:
    """The references one ``gen`` entry generates: key → [url, offset, length] or [url]."""
    try:
        key_t, url_t, dims = gen["key"], gen["url"], gen["dimensions"]
    except (KeyError, TypeError):
        raise SidecarError(f"{name}: a 'gen' entry needs 'key', 'url' and 'dimensions'") from None
    axes = {dim: _dimension_values(dim, spec, name) for dim, spec in dims.items()}
    refs: dict[str, list] = {}
    for values in itertools.product(*axes.values()):
        variables = {**templates, **dict(zip(axes, values, strict=True))}
        key = render(key_t, variables, name, key_t)
        url = render(url_t, variables, name, key)
        if "offset" in gen and "length" in gen:
            offset = int(render(str(gen["offset"]), variables, name, key))
            length = int(render(str(gen["length"]), variables, name, key))
            refs[key] = [url, offset, length]
        else:
            refs[key] = [url]
    return refs


def _dimension_values(dim: str, spec: object, name: str) -> list:
    if isinstance(spec, list):
        return spec
    if isinstance(spec, dict) and "stop" in spec:
        return list(range(spec.get("start", 0), spec["stop"], spec.get("step", 1)))
    raise SidecarError(f"{name}: gen dimension {dim!r} must be a list or {{start, stop, step}}")


def _evaluate(expression: str, variables: dict, name: str, key: str) -> object:
    try:
        tree = ast.parse(expression, mode="eval")
        return _node_value(tree.body, variables)
    except (SyntaxError, ValueError, KeyError, TypeError, ZeroDivisionError) as exc:
        raise SidecarError(f"{name}: {key}: cannot evaluate template {{{{{expression}}}}}: "
                           f"{exc}") from None


def _node_value(node: ast.AST, variables: dict) -> object:
    if isinstance(node, ast.Constant) and isinstance(node.value, int | str):
        return node.value
    if isinstance(node, ast.Name):
        if node.id not in variables:
            raise KeyError(f"unknown name {node.id!r}")
        return variables[node.id]
    if isinstance(node, ast.BinOp) and type(node.op) in _BINARY:
        left, right = _node_value(node.left, variables), _node_value(node.right, variables)
        if isinstance(node.op, ast.Pow) and isinstance(right, int) and right > 64:
            raise ValueError("exponent too large")
        return _BINARY[type(node.op)](left, right)
    if isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.USub):
        return -_node_value(node.operand, variables)
    raise ValueError(f"unsupported expression element {type(node).__name__}")
