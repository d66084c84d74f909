"""edgest-example-pass: a graph pass written only against edgest's public API (``fuse-bn``)."""
