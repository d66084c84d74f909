"""The build phase: the model with its weights, the calibration inputs, and every peer's artifact (cached).

A peer's artifact folder is reused when its ``build.json`` holds the same cache key
(:func:`peers_lib.builders.cache_key`: model, weights, seed, calibration size, toolchain versions);
a failed build is tried again on the next run.
"""

from __future__ import annotations

import importlib.util
import json
import shutil
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from peers_lib.builders import PEERS, BuildContext, Peer, cache_key, first_line


def load_module(model: str, weights: str | Path | None) -> Any:
    """The registered model at its spec's config, eval mode, with ``weights`` loaded (None: its seeded init)."""
    import torch

    from edgest.plugins import get_registry
    from edgest.weights import load_weights

    entry = get_registry().model(model)
    torch.manual_seed(0)
    module = entry.build(entry.spec.config).eval()
    if weights is not None:
        load_weights(module, Path(weights), family=entry.spec.family, model_name=entry.spec.name)
    return module.eval()


def input_shape(model: str) -> tuple[int, ...]:
    """The model's input shape from its spec."""
    from edgest.plugins import get_registry

    return tuple(get_registry().model(model).spec.input.shape)


def _row(peer: Peer, **extra: Any) -> dict[str, Any]:
    return {"key": peer.name, "side": "peer", "label": peer.label, "precision": peer.precision, "runner": peer.runner,
            "options": dict(peer.options), **extra}


def _cached(folder: Path, key: str) -> dict[str, Any] | None:
    try:
        record = json.loads((folder / "build.json").read_text())
    except (OSError, ValueError):
        return None
    return record if record.get("key") == key and (folder / record["artifact"]).exists() else None


def _build_one(peer: Peer, ctx: BuildContext, folder: Path, key: str) -> dict[str, Any]:
    """The peer's candidate row: its artifact (cached or built now) or its one-line error."""
    if peer.needs and importlib.util.find_spec(peer.needs) is None:
        return _row(peer, error=f"not installed (no module '{peer.needs}')")
    if peer.build is None:
        return _row(peer, how="built in the timing process")
    record = _cached(folder, key)
    if record is None:
        shutil.rmtree(folder, ignore_errors=True)
        folder.mkdir(parents=True)
        t0 = time.perf_counter()
        try:
            details = peer.build(ctx, folder)
        except Exception as exc:  # noqa: BLE001 - a peer that cannot build this model is a row, not a crash
            return _row(peer, error=first_line(exc))
        record = {**details, "key": key, "build_s": round(time.perf_counter() - t0, 1)}
        (folder / "build.json").write_text(json.dumps(record, indent=1))
    return _row(peer, path=str(folder / record["artifact"]), how=record["how"], build_s=record["build_s"])


def build_all(model: str, weights: Path | None, names: Sequence[str], root: Path, seed: int = 0,
              calibration_size: int | None = None) -> list[dict[str, Any]]:
    """Candidate rows of the peers ``names`` for ``model``: artifacts under ``root/peers``, or errors."""
    from edgest.checks.accuracy import seeded_inputs
    from edgest.data.calibration import DEFAULT_SIZE, calibration_inputs
    from edgest.plugins import get_registry

    spec = get_registry().model(model).spec
    size = calibration_size or DEFAULT_SIZE
    key = cache_key(model, weights, seed, size)
    if not (root / "shared" / "key").is_file() or (root / "shared" / "key").read_text() != key:
        shutil.rmtree(root / "shared", ignore_errors=True)  # shared exports of other weights or versions
        (root / "shared").mkdir(parents=True)
        (root / "shared" / "key").write_text(key)
    module = load_module(model, weights)
    example = seeded_inputs([tuple(spec.input.shape)], 1, seed)[0][0]
    calib = calibration_inputs(spec, size, None, seed)  # what edgest's quantize pass calibrates on by default
    ctx = BuildContext(module, example, list(calib.inputs), root)
    rows = []
    for name in names:
        t0 = time.perf_counter()
        row = _build_one(PEERS[name], ctx, root / "peers" / name, key)
        row["calibration"] = calib.source if PEERS[name].precision == "int8" else ""
        rows.append(row)
        print(f"  {name}: {'error: ' + row['error'] if 'error' in row else 'ok'} ({time.perf_counter() - t0:.0f} s)", flush=True)
    return rows
