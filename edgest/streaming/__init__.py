"""Streaming compiles (``--streaming``): a model's step module lowered as a plain multi-input program.

* :mod:`edgest.streaming.spec`: the step-module protocol a model family opts into (``ModelSpec.step``)
  and the interface a compile documents (``streaming.json``, the report's ``streaming``);
* :mod:`edgest.streaming.build`: the build stage's streaming form: step inputs with realistic
  states, whole sequences and the parallel model's per-step reference;
* :mod:`edgest.streaming.stepping`: streaming a step artifact with its state fed back, the per-step
  figures and timing; NumPy only, shared with device bundles (copied in as ``edgest_check/stepping.py``);
* :mod:`edgest.streaming.worker`: what the isolated check process does with them (state fed back,
  per-step timing);
* :mod:`edgest.streaming.check`: the streaming check: per-step agreement with the parallel model,
  drift, and per-step latency with its real-time factor.
"""
