"""edgest's Core ML target: torch.export → coremltools ML Program (.mlpackage); prediction on macOS only."""

from edgest_coreml.lean_import import install

install()  # coremltools' import skips frameworks edgest never converts from (edgest_coreml.lean_import)
