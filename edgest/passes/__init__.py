"""Program-to-program passes. The base contract is in :mod:`edgest.passes.base`."""
