"""Distillation of a frozen teacher into the pair (``teacher`` / ``distill`` options)."""
from __future__ import annotations

from dataclasses import asdict

import pytest
import torch

from nextloc.core.errors import ConfigError, TrainingError
from nextloc.models.base import build_model, count_parameters
from nextloc.models.checkpoint import load_checkpoint, save_checkpoint
from nextloc.models.losses import average_probabilities, kl_divergence, smoothed_nll
from nextloc.training.loop import train
from nextloc.training.settings import TrainConfig
from test_every_registered_model import mixed_length_batch

SMALL = {"dim": 16, "feedforward": 32, "dropout": 0.0}


@pytest.fixture
def teacher_paths(tiny_data, tmp_path) -> list[str]:
    """Two different untrained pointer models saved as checkpoints (absolute paths)."""
    paths = []
    for seed in (1, 2):
        torch.manual_seed(seed)
        model = build_model("pointer", tiny_data.num_locations, tiny_data.num_users, **SMALL)
        path = tmp_path / f"teacher-{seed}.safetensors"
        save_checkpoint(path, model, asdict(TrainConfig(model="pointer", model_options=SMALL)))
        paths.append(str(path))
    return paths


def student(tiny_data, **options):
    torch.manual_seed(0)
    return build_model("pointer_ensemble", tiny_data.num_locations, tiny_data.num_users,
                       size=2, **SMALL, **options)


def test_the_distillation_loss_is_the_kl_divergence_from_the_teacher():
    teacher = torch.log(torch.tensor([[0.5, 0.5, 0.0], [0.25, 0.25, 0.5]]))
    own = torch.log(torch.tensor([[0.25, 0.5, 0.25], [0.25, 0.25, 0.5]]))
    # Sample 1: 0.5 log(0.5 / 0.25) + 0.5 log(0.5 / 0.5) = 0.5 log 2; sample 2: 0. Mean: 0.25 log 2.
    assert kl_divergence(own, teacher).item() == pytest.approx(0.25 * torch.log(
        torch.tensor(2.0)).item())


def test_each_member_mixes_its_own_loss_with_the_teachers_soft_target(tiny_data, teacher_paths):
    model = student(tiny_data, teacher=teacher_paths, distill=0.75)
    model.label_smoothing = 0.1
    train_split = tiny_data.splits["train"]
    model.fit_statistics(train_split)
    batch = mixed_length_batch(train_split)
    teachers = [load_checkpoint(path)[0].eval() for path in teacher_paths]
    with torch.no_grad():
        soft = average_probabilities([teacher(batch) for teacher in teachers])
    expected = torch.stack([
        0.25 * smoothed_nll(own, batch["target"], 0.1) + 0.75 * kl_divergence(own, soft)
        for own in (member(batch) for member in model.members)]).mean()
    assert torch.allclose(model.training_loss(batch), expected, atol=1e-5)


def test_the_teacher_counts_neither_in_the_parameters_nor_in_the_checkpoint(tiny_data,
                                                                           teacher_paths):
    plain = student(tiny_data)
    distilled = student(tiny_data, teacher=teacher_paths, distill=0.5)
    distilled.fit_statistics(tiny_data.splits["train"])
    assert count_parameters(distilled) == count_parameters(plain)
    assert set(distilled.state_dict()) == set(plain.state_dict())


@pytest.mark.slow
def test_a_distilled_pair_trains_and_learns(tiny_data, teacher_paths, tmp_path):
    config = TrainConfig(model="pointer_ensemble", epochs=2, warmup_epochs=1, device="cpu",
                         model_options={"size": 2, **SMALL, "teacher": teacher_paths,
                                        "distill": 0.5})
    result = train(config, tiny_data, checkpoint=tmp_path / "student.safetensors",
                   progress=False)
    assert result.history[-1]["train_loss"] < result.history[0]["train_loss"]


@pytest.mark.parametrize("options", [{"distill": 0.5}, {"teacher": ["x.safetensors"]},
                                     {"teacher": ["x.safetensors"], "distill": 1.5}])
def test_distillation_needs_a_teacher_and_a_weight_in_range(options, tiny_data):
    with pytest.raises(ConfigError, match="distill"):
        student(tiny_data, **options)


def test_a_missing_teacher_checkpoint_is_named_at_the_first_training_batch(tiny_data, tmp_path):
    model = student(tiny_data, teacher=[str(tmp_path / "gone.safetensors")], distill=0.5)
    model.fit_statistics(tiny_data.splits["train"])  # a student that only predicts needs no teacher
    model.eval()(mixed_length_batch(tiny_data.splits["test"]))
    with pytest.raises(ConfigError, match="gone.safetensors"):
        model.training_loss(mixed_length_batch(tiny_data.splits["train"]))


def test_samples_outside_the_teachers_split_are_refused(tiny_data, teacher_paths):
    model = student(tiny_data, teacher=teacher_paths, distill=0.5)
    model.fit_statistics(tiny_data.splits["train"])
    with pytest.raises(TrainingError, match="not in the split the teacher predicted"):
        model.training_loss(mixed_length_batch(tiny_data.splits["test"]))


def test_loading_the_teacher_leaves_the_students_random_stream_alone(tiny_data, teacher_paths):
    model = student(tiny_data, teacher=teacher_paths, distill=0.5)
    model.fit_statistics(tiny_data.splits["train"])
    torch.manual_seed(5)
    model.training_loss(mixed_length_batch(tiny_data.splits["train"]))  # loads the teacher
    after_loading = torch.rand(3)
    torch.manual_seed(5)
    model.training_loss(mixed_length_batch(tiny_data.splits["train"]))  # already loaded
    assert torch.equal(torch.rand(3), after_loading)
