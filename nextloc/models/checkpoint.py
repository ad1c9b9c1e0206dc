"""Checkpoints as safetensors (no pickle): the weights, with the training config and the
vocabulary sizes as metadata, enough to rebuild the model by name. Lives beside the models so
that evaluation-only models (ensembles, MC dropout) can load trained members."""
from __future__ import annotations

import json
from pathlib import Path

import torch
from safetensors import SafetensorError, safe_open
from safetensors.torch import load_file, save_file

from nextloc.core.device import resolve_device
from nextloc.core.errors import ConfigError
from nextloc.models.base import NextLocationModel, build_model
from nextloc.core.paths import atomic_write


def save_checkpoint(path: str | Path, model: NextLocationModel, config: dict) -> None:
    metadata = {"config": json.dumps(config), "num_locations": str(model.num_locations),
                "num_users": str(model.num_users)}
    # clone: safetensors refuses tensors that share memory, and after training the parameters
    # are views into one buffer (nextloc.training.optimizer)
    state = {k: v.detach().cpu().clone(memory_format=torch.contiguous_format)
             for k, v in model.state_dict().items()}
    atomic_write(path, lambda tmp: save_file(state, str(tmp), metadata=metadata))


def load_checkpoint(path: str | Path, device: str = "auto") -> tuple[NextLocationModel, dict]:
    """Rebuild a trained model, and its training config, from :func:`save_checkpoint`."""
    try:
        with safe_open(str(path), framework="pt") as stored:
            metadata = stored.metadata() or {}
        config = json.loads(metadata["config"])
        num_locations, num_users = int(metadata["num_locations"]), int(metadata["num_users"])
        state = load_file(str(path))
    except (SafetensorError, OSError, KeyError, ValueError) as err:
        raise ConfigError(f"{path}: not a readable nextloc checkpoint ({type(err).__name__}); "
                          f"re-run the experiment that writes it.") from None
    model = build_model(config["model"], num_locations, num_users,
                        over_budget_ok=config.get("over_budget_ok", False),
                        **config.get("model_options", {}))
    model.load_state_dict(state)
    return model.to(resolve_device(device)), config
