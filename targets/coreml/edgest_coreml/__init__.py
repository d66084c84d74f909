"""edgest's Core ML target: torch.export → coremltools ML Program (.mlpackage); prediction on macOS only."""
