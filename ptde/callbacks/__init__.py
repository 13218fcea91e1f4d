"""Lightning callbacks that make a supervised-learning trainer run RL."""

from ptde.callbacks.env_interaction import EnvInteractionCallback

__all__ = ["EnvInteractionCallback"]
