"""The compile's stages, each a function of records in and records out (see :func:`edgest.pipeline.compile`).

build → capture → passes (quantize among them) → lower → quantize (artifact stage) → checks → report.
Stage values that hold tensors or programs live only in memory; everything written is a record.
"""
