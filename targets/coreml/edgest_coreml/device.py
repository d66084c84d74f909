"""Core ML runner (``MLModel.predict``, macOS only), shared by the host checks and device bundles.

Needs only NumPy and coremltools (no edgest, no torch): ``edgest bundle`` copies this file into
a bundle as the device runner, where it runs the real Core ML runtime on a Mac. On the host,
:meth:`edgest_coreml.target.CoreMLTarget.load` uses a subclass that raises edgest's errors, and
falls back to edgest's MIL reference interpreter off macOS (a bundle does not: off macOS it
refuses, saying so).
"""

from __future__ import annotations

import os
import platform
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import numpy as np

_NUMPY = {"FLOAT32": "float32", "FLOAT16": "float16", "DOUBLE": "float64", "INT32": "int32"}


def _array_type(feature: Any) -> str:
    from coremltools.proto import FeatureTypes_pb2 as ft

    return ft.ArrayFeatureType.ArrayDataType.Name(feature.type.multiArrayType.dataType)


class CoreMLRunner:
    """An ``.mlpackage`` loaded by Core ML (macOS only) and run with ``MLModel.predict``.

    Inputs are fed by the names and dtypes in the package's spec; outputs come back in the
    spec's order, fp16 ones widened to float32. Core ML schedules its own threads (there is
    no setting for them), so ``threads`` is 0: "the runtime's choice".
    """

    threads: int = 0
    #: raised when Core ML cannot load the package here / the path holds no package / inputs are wrong
    unavailable: type[Exception] = RuntimeError
    unsupported: type[Exception] = RuntimeError
    bad_input: type[Exception] = ValueError

    def __init__(self, path: str | Path, compute_units: str = "ALL") -> None:
        import coremltools as ct

        self.path = Path(path)
        if not (self.path / "Manifest.json").is_file():
            raise self.unsupported(f"no Core ML package at {self.path} (a .mlpackage folder with Manifest.json)")
        self.model = ct.models.MLModel(str(self.path), compute_units=getattr(ct.ComputeUnit, compute_units))
        if self.model.__proxy__ is None:  # coremltools warned and kept only the spec
            spec_version = self.model.get_spec().specificationVersion
            cause = getattr(self.model, "_framework_error", None)
            raise self.unavailable(
                f"target 'coreml' cannot run here: Core ML on macOS {platform.mac_ver()[0]} could not load "
                f"{self.path.name} (specification version {spec_version})"
                + (f": {str(cause).splitlines()[0][:200]}" if cause else "; lower minimum_deployment_target or use a newer macOS")
            )
        spec = self.model.get_spec()
        self._inputs = [(f.name, _NUMPY.get(_array_type(f), "float32")) for f in spec.description.input]
        self._outputs = [f.name for f in spec.description.output]
        self.compute_units = compute_units

    def run(self, inputs: Sequence[np.ndarray]) -> list[np.ndarray]:
        """One prediction; every output in the spec's order."""
        import numpy as np

        if len(inputs) != len(self._inputs):
            raise self.bad_input(f"{self.path.name} takes {len(self._inputs)} input(s), got {len(inputs)}")
        feed = {name: np.ascontiguousarray(x, dtype=dtype) for (name, dtype), x in zip(self._inputs, inputs)}
        out = self.model.predict(feed)
        results = []
        for name in self._outputs:
            y = np.asarray(out[name])
            results.append(y.astype(np.float32) if y.dtype == np.float16 else y)
        return results


def load(path: str, threads: int) -> CoreMLRunner:
    """The device-runner entry point: the package on Core ML, compute units from ``EDGEST_COMPUTE_UNITS`` (ALL)."""
    if sys.platform != "darwin":
        raise RuntimeError(f"Core ML prediction needs macOS (this host is {platform.system() or sys.platform}); "
                           "run this bundle on a Mac")
    return CoreMLRunner(path, compute_units=os.environ.get("EDGEST_COMPUTE_UNITS", "ALL"))
