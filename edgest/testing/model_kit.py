"""The tests every model plugin inherits (:class:`ModelConformance`; see :mod:`edgest.testing`).

Checked: the entry is valid (name, family, an ``InputSpec`` whose layout matches its shape,
``num_classes``, a factory) and registered by a plugin edgest loads cleanly; building is
deterministic and gives a module in eval mode; the module runs at the spec's input shape
(and at batch 2, as ``--input-shape 2x...`` asks) and a classifier's output is
``(batch, num_classes)``; ``torch.export`` captures it and the captured program agrees with
eager; importing the plugin imports no torch (models are built only when used).
"""

from __future__ import annotations

from typing import Any, ClassVar

import pytest

from edgest.model import ModelEntry
from edgest.plugins import PluginManager, Registry
from edgest.registration import problem as registration_problem
from edgest.testing.probes import KitFixtures, imported_by, owner_module


def _outputs(out: Any) -> list[Any]:
    return list(out) if isinstance(out, (tuple, list)) else [out]


class ModelConformance(KitFixtures):
    """Subclass in a test module and set ``model_name`` (and ``plugin`` to test an uninstalled plugin)."""

    model_name: ClassVar[str]
    plugin: ClassVar[str | None] = None

    @pytest.fixture(scope="class")
    @classmethod
    def entry(cls, registry: Registry, plugin_manager: PluginManager) -> ModelEntry:
        if cls.model_name not in registry.models:
            pytest.fail(f"no model '{cls.model_name}' registered; plugin problems: "
                        f"{'; '.join(plugin_manager.load_errors) or 'none'}")
        return registry.models[cls.model_name]

    @pytest.fixture(scope="class")
    @classmethod
    def built(cls, entry: ModelEntry) -> Any:
        return entry.build()

    def test_registered_with_a_valid_spec(self, entry: ModelEntry, registry: Registry,
                                          plugin_manager: PluginManager) -> None:
        assert registration_problem("model", entry) is None, registration_problem("model", entry)
        assert entry.spec.name == self.model_name
        assert plugin_manager.infos[registry.owners[("model", self.model_name)]].status == "loaded"

    def test_builds_deterministically_in_eval_mode(self, entry: ModelEntry, built: Any) -> None:
        import torch

        assert isinstance(built, torch.nn.Module) and not built.training, "the factory must return an nn.Module"
        again = entry.build().state_dict()
        assert all(torch.equal(v, again[k]) for k, v in built.state_dict().items()), \
            "two builds differ: initialise from torch's seeded generator only (edgest seeds it before building)"

    def test_runs_at_its_input_shape_and_outputs_num_classes(self, entry: ModelEntry, built: Any) -> None:
        import torch

        spec = entry.spec
        shapes = [spec.input.shape]
        if spec.input.layout.startswith("B,"):
            shapes.append((2, *spec.input.shape[1:]))  # --input-shape changes the batch
        for shape in shapes:
            with torch.no_grad():
                outs = _outputs(built(torch.randn(shape, generator=torch.Generator().manual_seed(0))))
            assert all(torch.isfinite(o).all() for o in outs), f"non-finite output at input {shape}"
            if spec.num_classes:
                assert tuple(outs[0].shape) == (shape[0], spec.num_classes), (
                    f"input {shape}: first output is {tuple(outs[0].shape)}, the spec says num_classes="
                    f"{spec.num_classes}, so it should be {(shape[0], spec.num_classes)}")

    def test_captures_with_torch_export(self, entry: ModelEntry, built: Any) -> None:
        import torch

        from edgest.capture import capture

        example = (torch.randn(entry.spec.input.shape, generator=torch.Generator().manual_seed(1)),)
        program = capture(built, example)
        with torch.no_grad():
            eager, captured = _outputs(built(*example)), _outputs(program.module()(*example))
        assert len(eager) == len(captured)
        assert all(torch.allclose(a, b, rtol=1e-4, atol=1e-5) for a, b in zip(eager, captured))

    def test_importing_the_plugin_does_not_import_torch(self, entry: ModelEntry, plugin_manager: PluginManager) -> None:
        module = owner_module(plugin_manager, "model", self.model_name)
        assert imported_by([module], ["torch"]) == [], (
            f"importing {module} imports torch; register the factory as a 'module:function' string (imported "
            "when the model is built) so that `edgest list` and `edgest --help` stay fast")
