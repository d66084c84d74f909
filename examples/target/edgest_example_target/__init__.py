"""edgest-example-target: the smallest real edgest target, written only against edgest's public API.

``example-pt2`` saves the captured ``torch.export.ExportedProgram`` as a ``.pt2`` file and runs
it with PyTorch. Copy this package to start a target for another runtime: ``target.py`` holds
the contract (lower, load, options, install hint), ``device.py`` the runner a device bundle
runs with only the runtime and NumPy, ``plugin.py`` the entry point.
"""
