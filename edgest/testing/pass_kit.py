"""The tests every pass plugin inherits (:class:`PassConformance`; see :mod:`edgest.testing`).

Checked: a valid lowercase name registered by a plugin edgest loads cleanly; an option table
that is valid and enforced (unknown options and wrongly typed values are refused with
``edgest.BadInput``; every declared default is accepted); ``run`` returns a ``PassResult`` whose
program runs and gives outputs of the same shapes, never changing the program it was given
(graph and weights); ``rewrite_module``, where defined, leaves the caller's module alone; and
importing the plugin imports no torch.
"""

from __future__ import annotations

import json
from typing import Any, ClassVar

import pytest

from edgest.errors import BadInput
from edgest.options import table_problem
from edgest.passes.base import Pass, PassContext, PassResult
from edgest.plugins import PluginManager, Registry
from edgest.registration import NAME
from edgest.registration import problem as registration_problem
from edgest.testing.probes import KitFixtures, imported_by, owner_module
from edgest.testing.suite import tiny_convnet

#: a value of no option type: every typed option must refuse it
_ALIEN = object()


def _snapshot(program: Any) -> tuple[str, dict[str, Any]]:
    """The program's graph code and a copy of every weight and constant."""
    tensors = {**program.state_dict, **getattr(program, "constants", {})}
    return program.graph_module.code, {k: v.detach().clone() for k, v in tensors.items() if hasattr(v, "detach")}


class PassConformance(KitFixtures):
    """Subclass in a test module and set ``pass_name`` (and ``pass_options``, ``plugin``, ``model`` if needed).

    ``model`` builds the ``nn.Module`` the pass runs on (default: a tiny conv net with a
    BatchNorm); ``target_name`` is the target in the pass context (a quantize-like pass needs
    one with a quantizer).
    """

    pass_name: ClassVar[str]
    pass_options: ClassVar[dict[str, Any]] = {}
    plugin: ClassVar[str | None] = None
    target_name: ClassVar[str] = "eager"
    input_shape: ClassVar[tuple[int, ...]] = (1, 3, 16, 16)

    def model(self) -> Any:
        """The module the pass is run on (override for a pass that needs other layers)."""
        return tiny_convnet()

    @pytest.fixture(scope="class")
    @classmethod
    def pass_cls(cls, registry: Registry, plugin_manager: PluginManager) -> type[Pass]:
        if cls.pass_name not in registry.passes:
            pytest.fail(f"no pass '{cls.pass_name}' registered (passes: {', '.join(sorted(registry.passes))}); "
                        f"plugin problems: {'; '.join(plugin_manager.load_errors) or 'none'}")
        return registry.passes[cls.pass_name]

    def _context(self, registry: Registry, example: tuple[Any, ...]) -> PassContext:
        from edgest.records import InputSpec

        target = registry.target(self.target_name)()
        return PassContext(target, example, {"spec": InputSpec(tuple(example[0].shape)), "seed": 0})

    def test_registered_under_a_valid_name(self, registry: Registry, pass_cls: type[Pass],
                                           plugin_manager: PluginManager) -> None:
        assert pass_cls.name == self.pass_name and NAME.fullmatch(pass_cls.name)
        assert issubclass(pass_cls, Pass) and registration_problem("pass", pass_cls) is None
        assert plugin_manager.infos[registry.owners[("pass", self.pass_name)]].status == "loaded"

    def test_option_table_is_valid_and_enforced(self, pass_cls: type[Pass]) -> None:
        table = pass_cls.option_table
        assert table_problem(table) is None, table_problem(table)
        with pytest.raises(BadInput, match="no_such_option_xyz"):
            pass_cls(no_such_option_xyz=1)
        for key, (allowed, default) in table.items():
            pass_cls(**{**self.pass_options, key: default})  # every declared default is accepted
            with pytest.raises(BadInput, match=key):
                pass_cls(**{**self.pass_options, key: _ALIEN if not isinstance(allowed, tuple) else "no-such-value-xyz"})
        json.dumps(pass_cls(**self.pass_options).options)  # options are recorded in the report

    def test_run_returns_a_pass_result_and_leaves_its_input_alone(self, pass_cls: type[Pass], registry: Registry) -> None:
        import torch

        from edgest.capture import capture

        example = (torch.randn(self.input_shape, generator=torch.Generator().manual_seed(0)),)
        module = self.model().eval()
        program = capture(module, example)
        before_out = program.module()(*example)
        graph, weights = _snapshot(program)
        result = pass_cls(**self.pass_options).run(program, self._context(registry, example))
        assert isinstance(result, PassResult), f"run() must return edgest.PassResult, not {type(result).__name__}"
        assert isinstance(result.program, torch.export.ExportedProgram), type(result.program).__name__
        assert isinstance(result.modified, bool) and isinstance(result.summary, str)
        json.dumps(result.details)  # details go into the report
        after_graph, after_weights = _snapshot(program)
        assert after_graph == graph, "run() changed the graph of the program it was given; build a new one"
        assert after_weights.keys() == weights.keys() and all(torch.equal(weights[k], after_weights[k]) for k in weights), \
            "run() changed weights of the program it was given in place; write new tensors"
        outs = result.program.module()(*example)
        flat = [o.shape for o in (outs if isinstance(outs, (tuple, list)) else (outs,))]
        assert flat == [o.shape for o in (before_out if isinstance(before_out, (tuple, list)) else (before_out,))]

    def test_rewrite_module_leaves_the_callers_module_alone(self, pass_cls: type[Pass]) -> None:
        import torch

        module = self.model().eval()
        state = {k: v.clone() for k, v in module.state_dict().items()}
        example = (torch.randn(self.input_shape, generator=torch.Generator().manual_seed(0)),)
        new = pass_cls(**self.pass_options).rewrite_module(module, example)
        assert new is None or isinstance(new, torch.nn.Module)
        assert all(torch.equal(state[k], v) for k, v in module.state_dict().items())

    def test_importing_the_plugin_does_not_import_torch(self, pass_cls: type[Pass], plugin_manager: PluginManager) -> None:
        modules = [owner_module(plugin_manager, "pass", self.pass_name), pass_cls.__module__]
        assert imported_by(modules, ["torch"]) == [], (
            f"importing {', '.join(dict.fromkeys(modules))} imports torch; import it inside run() so that "
            "`edgest list` and `edgest --help` stay fast")
