"""``edgest train``: a short recipe that gives zoo models real accuracy on the synthetic clip set.

Small checkpoints trained in CPU minutes make later quantisation figures mean something: a
drop in task top-1 is measurable only if there is top-1 to lose. The checkpoint is a plain
``state_dict`` that ``edgest compile --weights`` loads.
"""

from __future__ import annotations

import json
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import click

from edgest.errors import BadInput


@dataclass(frozen=True)
class TrainResult:
    """What a training run produced and how good it is."""

    model: str
    weights: str
    epochs: int
    train_clips: int
    val_clips: int
    val_top1: float
    seconds: float


def train(model_name: str, out: Path, epochs: int = 4, train_clips: int = 640, val_clips: int = 200,
          batch_size: int = 16, lr: float = 2e-3, seed: int = 0) -> TrainResult:
    """Train ``model_name`` on synthetic clips; write ``out`` (state_dict) and return the validation top-1."""
    import torch

    from edgest.data import SyntheticClips
    from edgest.plugins import get_registry

    entry = get_registry().model(model_name)
    shape = entry.spec.input.shape
    if entry.spec.input.layout != "B,C,T,H,W" or len(shape) != 5 or shape[3] != shape[4]:
        raise BadInput(f"model '{model_name}' takes {entry.spec.input.layout or shape} input; synthetic video clips need B,C,T,H,W with square frames")
    if entry.spec.num_classes < 2:
        raise BadInput(f"model '{model_name}' has {entry.spec.num_classes} classes; training needs a classifier")
    classes = min(entry.spec.num_classes, 10)
    data = SyntheticClips(num_frames=shape[2], image_size=shape[3], size=train_clips + val_clips, seed=seed, num_classes=classes)
    torch.manual_seed(seed)
    model = entry.build().train()
    opt = torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=0.05)
    steps = epochs * -(-train_clips // batch_size)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=lr, total_steps=steps)
    t0 = time.perf_counter()
    order = torch.Generator().manual_seed(seed)
    for _ in range(epochs):
        perm = torch.randperm(train_clips, generator=order).tolist()
        for i in range(0, train_clips, batch_size):
            items = [data[j] for j in perm[i:i + batch_size]]
            x = torch.from_numpy(__import__("numpy").stack([c for c, _ in items]))
            y = torch.tensor([label for _, label in items])
            loss = torch.nn.functional.cross_entropy(model(x), y)
            opt.zero_grad()
            loss.backward()
            opt.step()
            sched.step()
    model.eval()
    correct = 0
    with torch.no_grad():
        for x, y in data.batches(batch_size, start=train_clips):
            correct += int((model(torch.from_numpy(x)).argmax(-1).numpy() == y).sum())
    out.parent.mkdir(parents=True, exist_ok=True)
    torch.save(model.state_dict(), out)
    return TrainResult(model_name, str(out), epochs, train_clips, val_clips, correct / val_clips, round(time.perf_counter() - t0, 1))


@click.command("train")
@click.option("--model", "model", required=True, help="Zoo model with B,C,T,H,W input.")
@click.option("--data", type=click.Choice(["synthetic"]), default="synthetic", show_default=True)
@click.option("--out", type=click.Path(dir_okay=False, path_type=Path), required=True, help="Checkpoint (.pt) to write.")
@click.option("--epochs", default=4, show_default=True, type=click.IntRange(1, 1000))
@click.option("--train-clips", default=640, show_default=True, type=click.IntRange(10, 10**6))
@click.option("--val-clips", default=200, show_default=True, type=click.IntRange(10, 10**6))
@click.option("--seed", default=0, show_default=True, type=int)
@click.option("--json", "as_json", is_flag=True)
def train_cmd(model: str, data: str, out: Path, epochs: int, train_clips: int, val_clips: int, seed: int, as_json: bool) -> int:
    """Train a zoo model on the synthetic clip set and save its state_dict."""
    result = train(model, out, epochs=epochs, train_clips=train_clips, val_clips=val_clips, seed=seed)
    if as_json:
        click.echo(json.dumps(asdict(result), indent=2))
    else:
        click.echo(f"{model}: validation top-1 {result.val_top1:.1%} on {val_clips} synthetic clips "
                   f"after {epochs} epochs ({result.seconds:.0f} s); weights: {out}")
    return 0
