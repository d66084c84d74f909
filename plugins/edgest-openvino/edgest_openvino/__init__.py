"""edgest-openvino: a third-party edgest target that writes OpenVINO IR and runs it on the CPU.

Built only on edgest's public API (``edgest`` top-level names, ``edgest.testing`` and
``edgest.lean_import``) as a worked example for plugin authors. openvino itself is imported lazily
inside the target's methods, so importing this package (and ``edgest --help``) stays cheap.

``import openvino`` imports its model-conversion tooling (``openvino.tools.ovc``), which sends usage
telemetry unless the user opted out: an event on import and more per ``convert_model``, each from a
forked process waiting up to 3 s on the network (10 forks for an import and one tiny conversion; 0.4-1.8 s
of the lower stage in ``bench/compile_time.py --targets openvino``; and a fork of a multithreaded process
once JAX is loaded, which LiteRT's converter does, so a bench warned of deadlocks). The plugin hides
``openvino_telemetry`` from that first import (:func:`edgest.lean_import.install`), so OpenVINO takes
its own no-telemetry path (``openvino.tools.ovc.telemetry_stub``) in edgest's processes. The user's
setting (``opt_in_out``) is not touched; a process that imported openvino before this package keeps it.
"""

from edgest import lean_import

__version__ = "0.1.0"

#: the package whose first import reads the telemetry module, and the module hidden from it
TELEMETRY_IMPORTER, TELEMETRY = "openvino.tools.ovc", ("openvino_telemetry",)

lean_import.install(TELEMETRY_IMPORTER, TELEMETRY)
