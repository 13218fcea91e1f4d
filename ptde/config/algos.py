"""Schemas of the learners (`conf/algo/*.yaml` start from one of these)."""

from __future__ import annotations

from dataclasses import dataclass

from omegaconf import MISSING

from ptde.config.choices import BufferDtype, Learner, MixerKind


@dataclass
class ValueDecompositionConfig:
    """PyMARL2 defaults; the paper's Table 7 values where it gives them."""

    name: str = MISSING  # qmix | vdn (the variant suffix is added from `variant.name`)
    learner: Learner = Learner.value_decomposition
    mixer: MixerKind = MixerKind.qmix
    # agent network
    rnn_hidden_dim: int = 64
    # mixer network (QMIX; QPLEX's weighted head uses hypernet_embed too)
    mixing_embed_dim: int = 32
    hypernet_embed: int = 64
    # QPLEX's duplex weights λ_i(s, a): attention heads and their extractors' width (PyMARL2's qplex.yaml)
    num_kernel: int = 4
    adv_hypernet_embed: int = 64
    # optimisation
    lr: float = 1e-3
    gamma: float = 0.99
    td_lambda: float = 0.6
    double_q: bool = True
    grad_norm_clip: float = 10.0
    batch_size: int = 128  # episodes per update
    buffer_size: int = 5000  # episodes
    # storage type of the replay's obs and state (upcast to float32 when sampled): float16 halves them
    buffer_dtype: BufferDtype = BufferDtype.float32
    target_update_interval: int = 200  # episodes between hard target updates
    # 0: the hard updates above; in (0, 1]: a soft (Polyak) update after every update instead,
    # target <- (1 - tau) target + tau online (EPyMARL's target_update_interval_or_tau below 1)
    target_update_tau: float = 0.0
    # episodes per length-sorted chunk of an update (0 = the whole batch at once); only speed changes
    update_chunk: int = 32
    # exploration (epsilon-greedy, linear anneal over env steps)
    epsilon_start: float = 1.0
    epsilon_finish: float = 0.05
    epsilon_anneal_time: int = 100_000


@dataclass
class CTDSConfig(ValueDecompositionConfig):
    """CTDS (Zhao et al. 2022): a state-reading teacher trained by TD, a local student distilled alongside."""

    name: str = "ctds"
    learner: Learner = Learner.ctds
    distill_coef: float = 1.0  # weight of the student's Σ_i Σ_a (Q^S_i − Q^T_i)² next to the TD loss


@dataclass
class COPAConfig(ValueDecompositionConfig):
    """COPA (Liu et al. 2021): an attention coach sends strategies every `comm_interval` steps."""

    name: str = "copa"
    learner: Learner = Learner.copa
    coach_dim: int = 64  # coach hidden size = strategy size
    coach_heads: int = 4
    comm_interval: int = 4  # T: the coach speaks at steps 0, T, 2T, ...
    # adaptive communication at execution: resend z_i only if ||z_new - z_old|| > threshold (0: every T steps)
    comm_threshold: float = 0.0
    vi_coef: float = 0.001  # weight of the variational objective (marl-copa's vi_lambda default)


@dataclass
class CSRLConfig(ValueDecompositionConfig):
    """CSRL (Chen et al. 2022): a commander issues each agent specific information from the state."""

    name: str = "csrl"
    learner: Learner = Learner.csrl
    commander_dim: int = 64  # size of the specific information c_i
    commander_hyper_hidden: int = 64


@dataclass
class MAPPOConfig:
    """MAPPO (Yu et al. 2021) as marlbenchmark/on-policy runs it on SMAC. Every default is
    on-policy's (`onpolicy/config.py`, and where all its SMAC scripts set a value, the scripts'):
    recurrent actor and critic of width 64 (`rmappo`), Adam 5e-4 (eps 1e-5) for both, GAE(γ 0.99,
    λ 0.95), PPO clip 0.2 (also the value clip), 15 epochs of 1 minibatch per rollout, entropy
    bonus 0.01, Huber value loss (δ 10) on a normalised value (ValueNorm), gradient clip 10 for
    each network, 400 steps of each of the 8 envs per rollout, 10-step recurrent chunks.
    Per-map settings (epochs, clip, recurrent, stacked frames, value active masks) come from
    `conf/algo/mappo_map/<env>.yaml`, the scripts' values for the paper's maps."""

    name: str = MISSING  # mappo (the variant suffix is added from `variant.name`)
    learner: Learner = Learner.mappo
    rnn_hidden_dim: int = 64  # actor (--hidden_size)
    critic_hidden_dim: int = 64
    lr: float = 5e-4  # actor
    critic_lr: float = 5e-4
    optim_eps: float = 1e-5
    gamma: float = 0.99
    gae_lambda: float = 0.95
    clip_param: float = 0.2
    ppo_epochs: int = 15  # --ppo_epoch
    num_mini_batch: int = 1  # minibatches of recurrent chunks per epoch
    entropy_coef: float = 0.01
    value_loss_coef: float = 1.0
    huber_delta: float = 10.0
    clipped_value_loss: bool = True
    value_norm: bool = True  # --use_valuenorm: running mean/std of the returns, updated on every minibatch
    grad_norm_clip: float = 10.0
    # steps of each parallel env per rollout (--episode_length 400 in every SMAC script); envs reset
    # as their episodes end, and episodes and recurrent states run on into the next rollout
    rollout_steps: int = 400
    # recurrent training on chunks of this many steps, each starting from the state the rollout
    # had there (--data_chunk_length); must divide rollout_steps
    data_chunk_length: int = 10
    # rmappo (true) or mappo (false: a feed-forward actor and critic, on-policy's non-recurrent policy)
    recurrent: bool = True
    # inputs of the last k steps concatenated (--stacked_frames with --use_stacked_frames; zeros
    # before the episode start); k > 1 needs recurrent=false, as on-policy's scripts use it
    stacked_frames: int = 1
    use_feature_normalization: bool = True  # LayerNorm on the actor's and critic's inputs
    use_orthogonal: bool = True  # orthogonal weights, zero biases
    gain: float = 0.01  # gain of the policy's output layer (with use_orthogonal)
    # dead agents' steps (SMAX's ally_alive) left out of the policy loss, the entropy and the
    # advantage-normalisation statistics / out of the value loss
    use_policy_active_masks: bool = True
    use_value_active_masks: bool = True
    # The rollout's exploration knob, read by the env-interaction callback like the Q-learners' ε:
    # each agent's action is drawn from the policy with probability ε, else it is the policy's most
    # probable one. ε = 1 while training (on-policy PPO); tests and evaluation run with ε = 0.
    epsilon_start: float = 1.0
    epsilon_finish: float = 1.0
    epsilon_anneal_time: int = 1
