"""The one training loop: AdamW, label smoothing, warm-up + cosine schedule, gradient clipping,
early stopping on validation Acc@1, and a single test evaluation of the chosen weights."""
from __future__ import annotations

import json
import math
import os
import random
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
import torch
from safetensors import safe_open
from safetensors.torch import load_file, save_file
from tqdm import tqdm

from nextloc.data import GeolifeData, Split, batches, mask_new_locations
from nextloc.errors import ConfigError
from nextloc.metrics import MetricAccumulator
from nextloc.models import build_model, count_parameters
from nextloc.models.base import NextLocationModel


@dataclass
class TrainConfig:
    model: str = "baseline"
    model_options: dict = field(default_factory=dict)
    seed: int = 42
    epochs: int = 60            # upper bound with early stopping; exact count when refitting
    batch_size: int = 64
    lr: float = 1e-3
    weight_decay: float = 1e-4
    label_smoothing: float = 0.1
    warmup_epochs: int = 2
    patience: int = 10          # epochs without a better validation Acc@1 before stopping
    grad_clip: float = 1.0
    refit: bool = False         # train on train + validation for exactly `epochs`, no selection
    # fraction of each user's training days after which new locations are relabelled "unseen"
    # (see nextloc.data.mask_new_locations); None leaves the training split as it is
    mask_new_locations_after: float | None = None
    max_batches: int | None = None  # quick mode: cap batches per epoch (and per evaluation)
    device: str = "auto"
    num_threads: int | None = None
    over_budget_ok: bool = False

    def __post_init__(self):
        if self.epochs < 0 or self.batch_size < 1 or self.lr <= 0 or self.patience < 1:
            raise ConfigError(f"invalid training config: epochs={self.epochs}, batch_size="
                              f"{self.batch_size}, lr={self.lr}, patience={self.patience}")


def resolve_device(device: str) -> torch.device:
    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(device)


def set_seed(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


def to_device(batch: dict[str, torch.Tensor], device: torch.device) -> dict[str, torch.Tensor]:
    return {name: tensor.to(device, non_blocking=True) for name, tensor in batch.items()}


@torch.inference_mode()
def predict_scores(model: NextLocationModel, split: Split, device: torch.device,
                   batch_size: int = 512, max_batches: int | None = None):
    """Yield (batch, scores) over a split in order, in eval mode."""
    model.eval()
    for number, batch in enumerate(batches(split, batch_size)):
        if max_batches is not None and number >= max_batches:
            return
        batch = to_device(batch, device)
        yield batch, model(batch)


def evaluate(model: NextLocationModel, split: Split, device: torch.device,
             max_batches: int | None = None, return_predictions: bool = False):
    accumulator = MetricAccumulator(model.num_locations)
    rank_parts, top1_parts = [], []
    for batch, scores in predict_scores(model, split, device, max_batches=max_batches):
        rank_parts.append(accumulator.update(scores, batch["target"]))
        top1_parts.append(scores.argmax(1).cpu())
    metrics = accumulator.compute()
    if not return_predictions:
        return metrics
    n = metrics["n"]
    predictions = pd.DataFrame({"staypoint_id": split.staypoint_id[:n],
                                "target": split.target[:n],
                                "top1": torch.cat(top1_parts).numpy(),
                                "rank": torch.cat(rank_parts).numpy()})
    return metrics, predictions


def lr_factor(step: int, warmup_steps: int, total_steps: int) -> float:
    """Linear warm-up to 1, then cosine decay to 0 at ``total_steps``."""
    if step < warmup_steps:
        return (step + 1) / warmup_steps
    progress = (step - warmup_steps) / max(1, total_steps - warmup_steps)
    return 0.5 * (1.0 + math.cos(math.pi * min(1.0, progress)))


@dataclass
class RunResult:
    config: dict
    n_params: int
    best_epoch: int
    val: dict
    test: dict
    history: list[dict]
    train_seconds: float
    device: str
    test_predictions: pd.DataFrame

    def metrics_row(self, experiment: str) -> dict:
        return {"experiment": experiment, "model": self.config["model"],
                "seed": self.config["seed"], "n_params": self.n_params,
                "best_epoch": self.best_epoch, "val_acc1": self.val.get("acc1", float("nan")),
                "test_acc1": self.test["acc1"], "test_acc5": self.test["acc5"],
                "test_acc10": self.test["acc10"], "test_mrr": self.test["mrr"],
                "test_ndcg10": self.test["ndcg10"], "test_f1": self.test["f1"],
                "train_seconds": round(self.train_seconds, 2), "device": self.device}

    def save(self, out_dir: str | Path, experiment: str) -> None:
        """metrics.json, history.csv, config.json and test_predictions.csv.gz, each atomically."""
        out_dir = Path(out_dir)
        out_dir.mkdir(parents=True, exist_ok=True)
        summary = {**self.metrics_row(experiment), "val": self.val, "test": self.test}
        _atomic_write(out_dir / "metrics.json", lambda p: p.write_text(json.dumps(summary, indent=1)))
        _atomic_write(out_dir / "config.json",
                      lambda p: p.write_text(json.dumps(self.config, indent=1, sort_keys=True)))
        history = pd.DataFrame(self.history, columns=None if self.history else ["epoch"])
        _atomic_write(out_dir / "history.csv", lambda p: history.to_csv(p, index=False))
        _atomic_write(out_dir / "test_predictions.csv.gz",
                      lambda p: self.test_predictions.to_csv(p, index=False, compression="gzip"))


def _atomic_write(path: Path, write) -> None:
    tmp = path.with_name(f".{path.name}.tmp")
    write(tmp)
    os.replace(tmp, path)


def train(config: TrainConfig, data: GeolifeData, checkpoint: str | Path | None = None,
          progress: bool = True, evaluate_test: bool = True) -> RunResult:
    """Train ``config.model`` on ``data`` and evaluate the chosen weights once on test.

    Without ``refit`` the weights of the epoch with the best validation Acc@1 are kept (early
    stopping after ``patience`` epochs without improvement). With ``refit`` the model trains on
    train + validation for exactly ``epochs`` and the final weights are evaluated. A
    hyperparameter search passes ``evaluate_test=False``: it never sees the test split.
    """
    if config.num_threads:
        torch.set_num_threads(config.num_threads)
    device = resolve_device(config.device)
    set_seed(config.seed)
    model = build_model(config.model, data.num_locations, data.num_users,
                        over_budget_ok=config.over_budget_ok, **config.model_options)
    model.label_smoothing = config.label_smoothing
    train_split = data.splits["train"]
    if config.mask_new_locations_after is not None:
        train_split = mask_new_locations(train_split, config.mask_new_locations_after)
    if config.refit:
        train_split = Split.concat([train_split, data.splits["validation"]])
    model.fit_statistics(train_split)
    model.to(device)
    n_params = count_parameters(model)
    trainable = [p for p in model.parameters() if p.requires_grad]
    epochs = config.epochs if trainable else 0

    history: list[dict] = []
    best_acc, best_epoch, best_state = -1.0, 0, None
    start = time.perf_counter()
    if epochs:
        optimizer = torch.optim.AdamW(trainable, lr=config.lr, weight_decay=config.weight_decay)
        steps_per_epoch = math.ceil(len(train_split) / config.batch_size)
        if config.max_batches:
            steps_per_epoch = min(steps_per_epoch, config.max_batches)
        scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda s: lr_factor(
            s, config.warmup_epochs * steps_per_epoch, epochs * steps_per_epoch))
        rng = np.random.default_rng(config.seed)
        bar = tqdm(range(1, epochs + 1), desc=config.model, disable=not progress, mininterval=5)
        for epoch in bar:
            epoch_start = time.perf_counter()
            model.train()
            loss_sum, seen = 0.0, 0
            for number, batch in enumerate(batches(train_split, config.batch_size, shuffle=True,
                                                   rng=rng)):
                if number >= steps_per_epoch:
                    break
                batch = to_device(batch, device)
                loss = model.training_loss(batch)
                optimizer.zero_grad(set_to_none=True)
                loss.backward()
                if config.grad_clip:
                    torch.nn.utils.clip_grad_norm_(trainable, config.grad_clip)
                optimizer.step()
                scheduler.step()
                loss_sum += loss.item() * len(batch["target"])
                seen += len(batch["target"])
            row = {"epoch": epoch, "train_loss": loss_sum / seen, "lr": scheduler.get_last_lr()[0]}
            if not config.refit:
                val = evaluate(model, data.splits["validation"], device, config.max_batches)
                row.update({f"val_{k}": v for k, v in val.items() if k != "n"})
            row["seconds"] = time.perf_counter() - epoch_start
            history.append(row)
            bar.set_postfix(loss=f"{row['train_loss']:.3f}",
                            val_acc1=f"{row.get('val_acc1', float('nan')):.4f}")
            if config.refit:
                best_epoch = epoch
                continue
            if row["val_acc1"] > best_acc:
                best_acc, best_epoch = row["val_acc1"], epoch
                best_state = {k: v.detach().clone() for k, v in model.state_dict().items()}
            elif epoch - best_epoch >= config.patience:
                break
        if best_state is not None:
            model.load_state_dict(best_state)
    train_seconds = time.perf_counter() - start

    val_metrics = ({} if config.refit else
                   evaluate(model, data.splits["validation"], device, config.max_batches))
    test_metrics, predictions = {}, pd.DataFrame()
    if evaluate_test:
        test_metrics, predictions = evaluate(model, data.splits["test"], device,
                                             config.max_batches, return_predictions=True)
    config_dict = asdict(config)
    if checkpoint is not None and trainable:
        save_checkpoint(checkpoint, model, config_dict, data)
    return RunResult(config=config_dict, n_params=n_params, best_epoch=best_epoch,
                     val=val_metrics, test=test_metrics, history=history,
                     train_seconds=train_seconds, device=str(device),
                     test_predictions=predictions)


def save_checkpoint(path: str | Path, model: NextLocationModel, config: dict,
                    data: GeolifeData) -> None:
    """Weights as safetensors (no pickle), with the config and vocabulary sizes as metadata."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    metadata = {"config": json.dumps(config), "num_locations": str(data.num_locations),
                "num_users": str(data.num_users)}
    state = {k: v.detach().cpu().contiguous() for k, v in model.state_dict().items()}
    _atomic_write(path, lambda p: save_file(state, str(p), metadata=metadata))


def load_checkpoint(path: str | Path, device: str = "auto") -> tuple[NextLocationModel, dict]:
    """Rebuild a trained model, and its training config, from :func:`save_checkpoint`."""
    with safe_open(str(path), framework="pt") as stored:
        metadata = stored.metadata()
    config = json.loads(metadata["config"])
    model = build_model(config["model"], int(metadata["num_locations"]),
                        int(metadata["num_users"]), over_budget_ok=config["over_budget_ok"],
                        **config["model_options"])
    model.load_state_dict(load_file(str(path)))
    return model.to(resolve_device(device)), config
