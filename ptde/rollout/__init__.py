"""Running a policy in the envs: whole episodes (`episodes`, the value-decomposition learners'
replay and every test), step-based rollouts of auto-reset envs (`steps`, MAPPO), and greedy
tests of a policy (`greedy`)."""

from ptde.rollout.episodes import Actor, EpisodeBatch, run_episodes
from ptde.rollout.greedy import test_policy
from ptde.rollout.steps import RolloutCarry, StepRollout, collect_steps

__all__ = ["Actor", "EpisodeBatch", "RolloutCarry", "StepRollout", "collect_steps", "run_episodes", "test_policy"]
