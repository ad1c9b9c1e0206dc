"""The one training loop: AdamW, label smoothing, warm-up + cosine schedule, gradient clipping,
early stopping on validation Acc@1, and a single test evaluation of the chosen weights."""
from __future__ import annotations

import json
import math
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Callable

import numpy as np
import pandas as pd
import torch
from torch import nn
from tqdm import tqdm

from nextloc.data.batching import batches, keep_recent_fraction, mask_new_locations
from nextloc.data.split import Dataset, Split
from nextloc.core.device import keep_freed_memory, resolve_device, set_seed, set_threads
from nextloc.core.errors import TrainingError
from nextloc.training.metrics import MetricAccumulator, known_places, top1
from nextloc.models import NextLocationModel, build_model, count_parameters
from nextloc.models.checkpoint import save_checkpoint
from nextloc.training.optimizer import FlatAdamW, lr_factor
from nextloc.core.paths import atomic_write
from nextloc.training.settings import TrainConfig


def to_device(batch: dict[str, torch.Tensor], device: torch.device) -> dict[str, torch.Tensor]:
    return {name: tensor.to(device, non_blocking=True) for name, tensor in batch.items()}


# Batches of 128 keep a small model's activations in the CPU's cache: on one thread a
# validation pass of the pointer takes about 20 % less time than with batches of 512.
EVALUATION_BATCH_SIZE = 128


@torch.inference_mode()
def predict_scores(model: NextLocationModel, split: Split, device: torch.device,
                   batch_size: int = EVALUATION_BATCH_SIZE, max_batches: int | None = None,
                   order: np.ndarray | None = None):
    """Yield (batch, scores) over a split in order (or in ``order``), in eval mode."""
    model.eval()
    for number, batch in enumerate(batches(split, batch_size, order=order)):
        if max_batches is not None and number >= max_batches:
            return
        batch = to_device(batch, device)
        yield batch, model(batch)


def evaluate(model: NextLocationModel, split: Split, device: torch.device,
             max_batches: int | None = None, return_predictions: bool = False):
    """Count-based metrics over the split. The samples run shortest history first (less
    padding: about twice as fast), and the predictions come back in the split's order."""
    accumulator = MetricAccumulator(model.num_locations)
    order = None if max_batches is not None else np.argsort(split.lengths, kind="stable")
    rank_parts, top1_parts = [], []
    for batch, scores in predict_scores(model, split, device, max_batches=max_batches,
                                        order=order):
        rank_parts.append(accumulator.update(scores, batch["target"]))
        if return_predictions:
            top1_parts.append(top1(scores).cpu())
    metrics = accumulator.compute()
    if not return_predictions:
        return metrics
    n = metrics["n"]
    ranks, predicted = torch.cat(rank_parts).numpy(), torch.cat(top1_parts).numpy()
    if order is not None:
        ranks[order], predicted[order] = ranks.copy(), predicted.copy()
    predictions = pd.DataFrame({"staypoint_id": split.staypoint_id[:n],
                                "target": split.target[:n], "top1": predicted, "rank": ranks})
    return metrics, predictions


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
                "train_seconds": round(self.train_seconds, 2), "device": self.device,
                **{f"test_{k}": v for k, v in known_places(
                    self.test_predictions["target"], self.test_predictions["rank"]).items()}}

    def save(self, out_dir: str | Path, experiment: str) -> None:
        """metrics.json, history.csv, config.json and test_predictions.csv.gz, each atomically."""
        out_dir = Path(out_dir)
        out_dir.mkdir(parents=True, exist_ok=True)
        summary = {**self.metrics_row(experiment), "val": self.val, "test": self.test}
        atomic_write(out_dir / "metrics.json", lambda p: p.write_text(json.dumps(summary, indent=1)))
        atomic_write(out_dir / "config.json",
                     lambda p: p.write_text(json.dumps(self.config, indent=1, sort_keys=True)))
        history = pd.DataFrame(self.history, columns=None if self.history else ["epoch"])
        atomic_write(out_dir / "history.csv", lambda p: history.to_csv(p, index=False))
        atomic_write(out_dir / "test_predictions.csv.gz",
                     lambda p: self.test_predictions.to_csv(p, index=False, compression="gzip"))


def train(config: TrainConfig, data: Dataset, checkpoint: str | Path | None = None,
          progress: bool = True, evaluate_test: bool = True,
          on_epoch: Callable[[dict], None] | None = None) -> RunResult:
    """Train ``config.model`` on ``data`` and evaluate the chosen weights once on test.

    Without ``refit`` the weights of the epoch with the best validation Acc@1 are kept (early
    stopping after ``patience`` epochs without improvement). With ``refit`` the model trains on
    train + validation for exactly ``epochs`` and the final weights are evaluated. A
    hyperparameter search passes ``evaluate_test=False``: it never sees the test split, and
    ``on_epoch``, called with each epoch's history row (it may raise to stop the run early).
    """
    if config.num_threads:
        set_threads(config.num_threads)
    device = resolve_device(config.device)
    set_seed(config.seed)
    model, train_split = prepare(config, data, device)
    start = time.perf_counter()
    history, best_epoch = fit(model, config, train_split, data.splits["validation"], device,
                              progress, on_epoch)
    train_seconds = time.perf_counter() - start
    if checkpoint is not None and any(p.requires_grad for p in model.parameters()):
        save_checkpoint(checkpoint, model, asdict(config))
    return final_result(model, config, data, device, evaluate_test, history, best_epoch,
                        train_seconds)


def prepare(config: TrainConfig, data: Dataset,
            device: torch.device) -> tuple[NextLocationModel, Split]:
    """The model, with its count statistics fitted, and the split it trains on."""
    model = build_model(config.model, data.num_locations, data.num_users,
                        over_budget_ok=config.over_budget_ok, **config.model_options)
    model.label_smoothing = config.label_smoothing
    train_split = data.splits["train"]
    if config.mask_new_locations_after is not None:
        train_split = mask_new_locations(train_split, config.mask_new_locations_after)
    # After the masking, which is computed on the whole training period like the vocabulary.
    train_split = keep_recent_fraction(train_split, config.train_fraction)
    if config.refit:
        train_split = Split.concat([train_split, data.splits["validation"]])
    model.fit_statistics(train_split)
    return model.to(device), train_split


class EarlyStopping:
    """Keeps the weights of the epoch with the best validation Acc@1; says when ``patience``
    epochs have passed without a better one."""

    def __init__(self, patience: int):
        self.patience, self.best_acc, self.best_epoch, self.best_state = patience, -1.0, 0, None

    def should_stop(self, epoch: int, val_acc1: float, model: nn.Module) -> bool:
        if val_acc1 > self.best_acc:
            self.best_acc, self.best_epoch = val_acc1, epoch
            self.best_state = {k: v.detach().clone() for k, v in model.state_dict().items()}
            return False
        return epoch - self.best_epoch >= self.patience


def fit(model: NextLocationModel, config: TrainConfig, train_split: Split, validation: Split,
        device: torch.device, progress: bool,
        on_epoch: Callable[[dict], None] | None = None) -> tuple[list[dict], int]:
    """The epochs: train, then (unless refitting) evaluate on validation and stop early;
    ``on_epoch`` sees each epoch's history row. Returns the per-epoch history and the chosen
    epoch; the model ends with that epoch's weights (a refit: the last epoch's), averaged when
    ``config.weight_average`` is set."""
    trainable = [p for p in model.parameters() if p.requires_grad]
    if not trainable or not config.epochs:
        return [], 0
    keep_freed_memory()
    # One fused AdamW step over one flat buffer of all parameters (see nextloc.training.optimizer).
    optimizer = FlatAdamW(trainable, lr=config.lr, weight_decay=config.weight_decay,
                          fused=device.type in ("cpu", "cuda"), average=config.weight_average)
    steps_per_epoch = math.ceil(len(train_split) / config.batch_size)
    if config.max_batches:
        steps_per_epoch = min(steps_per_epoch, config.max_batches)
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer.optimizer, lambda s: lr_factor(
        s, config.warmup_epochs * steps_per_epoch, config.epochs * steps_per_epoch))
    rng = np.random.default_rng(config.seed)
    stopper, history = EarlyStopping(config.patience), []
    bar = tqdm(range(1, config.epochs + 1), desc=config.model, disable=not progress,
               mininterval=5)
    for epoch in bar:
        epoch_start = time.perf_counter()
        loss = train_one_epoch(model, optimizer, scheduler, train_split, config, device, rng,
                               steps_per_epoch)
        row, stop = {"epoch": epoch, "train_loss": loss, "lr": scheduler.get_last_lr()[0]}, False
        if not config.refit:
            with optimizer.averaged_weights():  # what early stopping keeps: the average
                val = evaluate(model, validation, device, config.max_batches)
                stop = stopper.should_stop(epoch, val["acc1"], model)
            row.update({f"val_{k}": v for k, v in val.items() if k != "n"})
        row["seconds"] = time.perf_counter() - epoch_start
        history.append(row)
        bar.set_postfix(loss=f"{loss:.3f}", val_acc1=f"{row.get('val_acc1', float('nan')):.4f}")
        if on_epoch is not None:
            on_epoch(row)
        if stop:
            break
    if config.refit:
        optimizer.keep_average()
        return history, len(history)
    if stopper.best_state is not None:
        model.load_state_dict(stopper.best_state)
    return history, stopper.best_epoch


def train_one_epoch(model: NextLocationModel, optimizer: FlatAdamW, scheduler, split: Split,
                    config: TrainConfig, device: torch.device, rng: np.random.Generator,
                    steps: int) -> float:
    """One pass over ``steps`` shuffled batches; the mean training loss per sample."""
    model.train()
    loss_sum, seen = 0.0, 0
    for number, batch in enumerate(batches(split, config.batch_size, shuffle=True, rng=rng)):
        if number >= steps:
            break
        batch = to_device(batch, device)
        loss = model.training_loss(batch)
        optimizer.zero_grad()
        loss.backward()
        if config.grad_clip:
            optimizer.clip_grad_norm(config.grad_clip)
        optimizer.step()
        scheduler.step()
        value = loss.item()  # the batch's one synchronisation with the device
        if not math.isfinite(value):
            raise TrainingError(f"{config.model}: the training loss is {value} at batch "
                                f"{number + 1}; training diverged. Lower lr (now {config.lr}) "
                                f"or check the inputs.")
        loss_sum += value * len(batch["target"])
        seen += len(batch["target"])
    if not bool(torch.isfinite(optimizer.flat).all()):
        raise TrainingError(f"{config.model}: the weights are no longer finite; training "
                            f"diverged. Lower lr (now {config.lr}) or check the inputs.")
    return loss_sum / seen


def final_result(model: NextLocationModel, config: TrainConfig, data: Dataset,
                 device: torch.device, evaluate_test: bool, history: list[dict],
                 best_epoch: int, train_seconds: float) -> RunResult:
    """Validation metrics of the kept weights (none for a refit) and the one test evaluation."""
    val_metrics = ({} if config.refit else
                   evaluate(model, data.splits["validation"], device, config.max_batches))
    test_metrics, predictions = {}, pd.DataFrame()
    if evaluate_test:
        test_metrics, predictions = evaluate(model, data.splits["test"], device,
                                             config.max_batches, return_predictions=True)
    return RunResult(config=asdict(config), n_params=count_parameters(model),
                     best_epoch=best_epoch, val=val_metrics, test=test_metrics, history=history,
                     train_seconds=train_seconds, device=str(device),
                     test_predictions=predictions)
