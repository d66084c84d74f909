"""Which torch module each ONNX node came from, kept across onnxsim.

``torch.onnx.export(dynamo=True)`` records every node's module path in its metadata
(``pkg.torch.onnx.name_scopes``: ``['', 'blocks', 'blocks.0', 'blocks.0.mlp', 'blocks.0.mlp.fc1', 'linear']``).
onnxsim drops node metadata and the weights' names say nothing (the exporter stores a Linear's
transposed weight as ``val_58``), so after it nothing names the module. :func:`index` reads
the exporter's scopes before onnxsim and :func:`attach` writes them back afterwards under
:data:`MODULE_KEY`: by node name, which onnxsim keeps for the nodes it leaves alone; for the
nodes it makes (MatMul + Add → Reshape, Gemm, Reshape, all newly named) by the weights they
read or the tensors they write, which keep their names. The quantizer reads the result to
find the nodes of a ``--quant-skip`` module.

Works on ``onnx.ModelProto`` objects; the caller imports onnx.
"""

from __future__ import annotations

import ast
from dataclasses import dataclass
from typing import Any

#: node metadata key edgest writes: the dotted path of the innermost module ('' for the top module)
MODULE_KEY = "edgest.module"
#: node metadata key of the torch.onnx dynamo exporter: the list of scopes, modules then the op
EXPORTER_KEY = "pkg.torch.onnx.name_scopes"


def _props(node: Any) -> dict[str, str]:
    return {p.key: p.value for p in node.metadata_props}


def exported_modules(model: Any) -> dict[str, str]:
    """Node name → innermost module path, from the exporter's name scopes (nodes without them are left out)."""
    out: dict[str, str] = {}
    for node in model.graph.node:
        scopes = _props(node).get(EXPORTER_KEY)
        if not scopes or not node.name:
            continue
        try:
            names = ast.literal_eval(scopes)
        except (ValueError, SyntaxError):
            continue
        # the last scope is the op itself (``linear``); the ones before it are modules, outermost first
        if isinstance(names, list) and len(names) >= 2:
            out[node.name] = str(names[-2])
    return out


@dataclass(frozen=True)
class ModuleIndex:
    """Modules of an exported graph: by node name, and by tensor name (node outputs, weights read by one module)."""

    nodes: dict[str, str]
    tensors: dict[str, str]


def index(model: Any) -> ModuleIndex:
    """The modules of ``model``'s nodes and tensors, from the exporter's name scopes."""
    nodes = exported_modules(model)
    inits = {t.name for t in model.graph.initializer}
    tensors: dict[str, str] = {}
    readers: dict[str, set[str]] = {}
    for node in model.graph.node:
        module = nodes.get(node.name)
        if module is None:
            continue
        tensors.update((o, module) for o in node.output if o)
        for i in node.input:
            if i in inits:
                readers.setdefault(i, set()).add(module)
    tensors.update((name, next(iter(mods))) for name, mods in readers.items() if len(mods) == 1)
    return ModuleIndex(nodes, tensors)


def _from_tensors(node: Any, idx: ModuleIndex, inits: set[str]) -> str | None:
    """A new node's module: that of the weights it reads (if they agree), else that of a tensor it writes."""
    by_weights = {idx.tensors[i] for i in node.input if i in inits and i in idx.tensors}
    if len(by_weights) == 1:
        return by_weights.pop()
    return next((idx.tensors[o] for o in node.output if o in idx.tensors), None)


def attach(model: Any, idx: ModuleIndex) -> int:
    """Write each node's module (see :func:`index`) into its metadata under :data:`MODULE_KEY`; returns how many."""
    inits = {t.name for t in model.graph.initializer}
    done = 0
    for node in model.graph.node:
        module = idx.nodes.get(node.name) if node.name in idx.nodes else _from_tensors(node, idx, inits)
        if module is None:
            continue
        for prop in node.metadata_props:
            if prop.key == MODULE_KEY:
                prop.value = module
                break
        else:
            prop = node.metadata_props.add()
            prop.key, prop.value = MODULE_KEY, module
        done += 1
    return done


def modules_of(model: Any) -> dict[str, str]:
    """Node name → module: edgest's key, else the exporter's (a file onnxsim did not touch)."""
    out = {n.name: p[MODULE_KEY] for n in model.graph.node if MODULE_KEY in (p := _props(n))}
    return out or exported_modules(model)


def module_of(node_name: str, modules: dict[str, str]) -> str | None:
    """The module of ``node_name``; a node ORT's optimiser made from node X (``X/MatMulAddFusion``) inherits X's."""
    if node_name in modules:
        return modules[node_name]
    stem = node_name.rsplit("/", 1)[0] if "/" in node_name else None
    return module_of(stem, modules) if stem else None


def in_module(module: str | None, name: str) -> bool:
    """Whether ``module`` is ``name`` or inside it (``blocks.0.mlp.fc1`` is inside ``blocks.0``, not ``blocks.01``)."""
    name = name.rstrip(".")
    return module is not None and (module == name or module.startswith(name + "."))
