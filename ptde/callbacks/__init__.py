"""Lightning callbacks that make a supervised-learning trainer run RL."""

from ptde.callbacks.checkpointing import CheckpointCallback
from ptde.callbacks.env_interaction import EnvInteractionCallback
from ptde.callbacks.step_interaction import StepInteractionCallback

__all__ = ["CheckpointCallback", "EnvInteractionCallback", "StepInteractionCallback"]
