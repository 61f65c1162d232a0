"""The training loop: optimizer, schedule, mixed precision, checkpoints, metrics, progress."""

from nofrost.train.loop import TrainingDiverged, TrainResult, train

__all__ = ["TrainResult", "TrainingDiverged", "train"]
