"""edgest-openvino: a third-party edgest target that writes OpenVINO IR and runs it on the CPU.

Built only on edgest's public API (``edgest`` top-level names and ``edgest.testing``) as a
worked example for plugin authors. openvino itself is imported lazily inside the target's
methods, so importing this package (and ``edgest --help``) stays cheap.
"""

__version__ = "0.1.0"
