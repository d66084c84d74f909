"""Quantisation in one package: the contract targets implement, per-layer sensitivity, and the stage.

Calibration data comes from :mod:`edgest.data.calibration` (inputs belong with the other data readers).
"""

from edgest.quantize.contract import (
    PASS_NAME, PRECISION, SCHEMES, ArtifactQuantizer, ArtifactStep, ProgramQuantizer, Quantized, Quantizer, Stage,
)
from edgest.quantize.folded import bn_after_convs, relabel_folded_convs
from edgest.quantize.marks import is_quantized
from edgest.quantize.prequant import batch_norm_as_depthwise_conv, before_torchao_folding, fold_constant_weights
from edgest.quantize.sensitivity import SENSITIVITY_INPUTS, quantizable_layers, sensitivity, sensitivity_inputs
from edgest.quantize.skip import check_skip, in_modules, module_names, output_path, skipped_nodes
from edgest.quantize.state import loop_of, state_loop

__all__ = [
    "PASS_NAME", "PRECISION", "SCHEMES", "SENSITIVITY_INPUTS", "ArtifactQuantizer", "ArtifactStep", "ProgramQuantizer",
    "Quantized", "Quantizer", "Stage", "batch_norm_as_depthwise_conv", "before_torchao_folding", "bn_after_convs",
    "check_skip", "fold_constant_weights", "in_modules", "is_quantized", "loop_of", "module_names", "output_path",
    "quantizable_layers", "relabel_folded_convs", "sensitivity", "sensitivity_inputs", "skipped_nodes", "state_loop",
]
