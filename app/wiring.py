"""Gradio passes values by position; the app's handlers take and give them by name.

`by_name` builds an event's arguments from {name: component} trees (nested dicts allowed): the
handler is called with the same names as keyword arguments and returns {name: value} in the shape
of the outputs' tree; names it leaves out keep their components unchanged.
"""

from __future__ import annotations

import inspect

import gradio as gr


def leaves(tree: dict, path: tuple = ()):
    """(path, leaf) for every leaf of a nested dict, depth first, in insertion order."""
    for key, value in tree.items():
        if isinstance(value, dict):
            yield from leaves(value, path + (key,))
        else:
            yield path + (key,), value


def _nest(pairs) -> dict:
    tree: dict = {}
    for path, value in pairs:
        node = tree
        for key in path[:-1]:
            node = node.setdefault(key, {})
        node[path[-1]] = value
    return tree


def _lookup(tree: dict, path: tuple):
    """(True, value) at `path` in `tree`, or (False, None) when it is not there."""
    node = tree
    for key in path:
        if not isinstance(node, dict) or key not in node:
            return False, None
        node = node[key]
    return True, node


def by_name(handler, inputs: dict, outputs: dict, **options) -> dict:
    """Keyword arguments for an event listener (`button.click(**by_name(...))`)."""
    named_inputs, named_outputs = list(leaves(inputs)), list(leaves(outputs))
    wants_progress = "progress" in inspect.signature(handler).parameters

    def event(*values, progress=gr.Progress()):
        named = _nest((path, value) for (path, _), value in zip(named_inputs, values, strict=True))
        result = handler(**named, **({"progress": progress} if wants_progress else {}))
        found = ((component, _lookup(result, path)) for path, component in named_outputs)
        return {component: value for component, (present, value) in found if present}

    return dict(fn=event, inputs=[c for _, c in named_inputs], outputs=[c for _, c in named_outputs], **options)


def rows_by_name(inputs: dict, rows: list[dict]) -> list[list]:
    """Example rows ({name: value} trees) in the order of the inputs' components."""
    return [[_lookup(row, path)[1] for path, _ in leaves(inputs)] for row in rows]
