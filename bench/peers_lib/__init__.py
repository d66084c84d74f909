"""Helpers of ``bench/peers.py``: the peers' builders (:mod:`.builders`), their runners (:mod:`.runners`),
edgest's own candidates (:mod:`.edgest_side`), the timing process (:mod:`.worker`) and the tables (:mod:`.tables`)."""
