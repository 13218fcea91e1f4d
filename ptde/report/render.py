"""One greedy episode as an animated GIF (the paper's Appendix A strategy visualisation).

SMAX: every unit at its position, allies blue and enemies red, a health bar over each, dead units
as grey crosses. GRF: a pitch plot of both teams and the ball. The engine's own renderer needs an
OpenGL display, which a headless training machine does not have, so GRF frames are drawn from the
raw observation's positions instead. One frame per env step plus the first observation, so an
episode of T steps gives T + 1 frames. Pillow writes the GIF.
"""

from __future__ import annotations

import io
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
from PIL import Image  # noqa: E402

from ptde.envs.base import BattleFrame, MultiAgentEnv, PitchFrame  # noqa: E402
from ptde.rollout import Actor, EpisodeBatch, run_episodes  # noqa: E402

ALLY, ENEMY, DEAD = "#1f77b4", "#d62728", "#999999"


def record_episode(
    env: MultiAgentEnv, policy: Actor, n_actions: int
) -> tuple[list[BattleFrame | PitchFrame], EpisodeBatch]:
    """Greedy episode(s) of `env`; the frames of its first environment, T + 1 of them."""
    frames: list[BattleFrame | PitchFrame] = []
    batch = run_episodes(env, policy, n_actions, epsilon=0.0, observer=lambda e: frames.append(e.frame(0)))
    return frames[: int(batch.length[0]) + 1], batch


def battle_view(frames: list[BattleFrame], margin: float = 2.5) -> tuple[float, float, float]:
    """(x0, y0, side) of a square around every position the units take in the episode: SMAX's
    map is 32 x 32 but the fights are a few units wide, so the whole map would show dots."""
    pos = np.concatenate([f.positions for f in frames])  # [frames * units, 2]
    lo, hi = pos.min(0) - margin, pos.max(0) + margin
    side = float(max(hi - lo))
    centre = (lo + hi) / 2
    return float(centre[0] - side / 2), float(centre[1] - side / 2), side


def draw_battle(ax: plt.Axes, f: BattleFrame, view: tuple[float, float, float]) -> None:
    x0, y0, side = view
    w, lift = side / 14, side / 22  # health bar width and height above the unit
    for i, (x, y) in enumerate(f.positions):
        ally = i < f.n_allies
        if not f.alive[i]:
            ax.plot(x, y, "x", color=DEAD, markersize=7)
            continue
        color = ALLY if ally else ENEMY
        ax.plot(x, y, "o", color=color, markersize=11, alpha=0.85)
        ax.text(x, y, f.unit_types[i][0].upper(), ha="center", va="center", fontsize=6, color="white")
        # health bar: grey full width, coloured the remaining fraction
        ax.plot([x - w / 2, x + w / 2], [y + lift] * 2, color="#dddddd", linewidth=3, solid_capstyle="butt")
        hp = float(np.clip(f.health[i], 0, 1))
        ax.plot([x - w / 2, x - w / 2 + w * hp], [y + lift] * 2, color=color, linewidth=3, solid_capstyle="butt")
    allies = int(f.alive[: f.n_allies].sum())
    enemies = int(f.alive[f.n_allies :].sum())
    ax.set_xlim(x0, x0 + side)
    ax.set_ylim(y0, y0 + side)
    ax.set_aspect("equal")
    ax.set_title(
        f"t = {f.t}   allies alive {allies}/{f.n_allies}   enemies alive {enemies}/{len(f.alive) - f.n_allies}"
    )


def draw_pitch(ax: plt.Axes, f: PitchFrame) -> None:
    ax.add_patch(plt.Rectangle((-1, -0.42), 2, 0.84, fill=True, color="#3a7d3a", zorder=0))
    ax.plot([0, 0], [-0.42, 0.42], color="white", linewidth=1)
    for side in (-1, 1):
        ax.add_patch(plt.Rectangle((side * 1 - (0.16 if side > 0 else 0), -0.2), 0.16, 0.4, fill=False, color="white"))
        ax.plot([side, side], [-0.044, 0.044], color="yellow", linewidth=4)  # goal mouth
    others = [i for i in range(len(f.left)) if i not in f.agents]
    ax.scatter(f.left[others, 0], f.left[others, 1], s=60, color="#9ecae1", edgecolor="black", label="left (AI)")
    ax.scatter(f.left[f.agents, 0], f.left[f.agents, 1], s=90, color=ALLY, edgecolor="black", label="agents")
    ax.scatter(f.right[:, 0], f.right[:, 1], s=60, color=ENEMY, edgecolor="black", label="right")
    height = float(np.clip(f.ball[2], 0, 3))  # a ball in the air is drawn larger (z up to 3)
    ax.scatter([f.ball[0]], [f.ball[1]], s=30 * (1 + height), color="white", edgecolor="black", label="ball")
    ax.set_xlim(-1.05, 1.05)
    ax.set_ylim(-0.47, 0.47)
    ax.set_aspect("equal")
    ax.legend(loc="upper left", fontsize=6, ncol=4)
    ax.set_title(f"t = {f.t}   ball height {height:.2f}")


def frame_image(frame: BattleFrame | PitchFrame, title: str, view: tuple[float, float, float] | None) -> Image.Image:
    battle = isinstance(frame, BattleFrame)
    fig, ax = plt.subplots(figsize=(5, 5) if battle else (6, 3.4))
    if battle:
        draw_battle(ax, frame, view or (0.0, 0.0, frame.width))
    else:
        draw_pitch(ax, frame)
    fig.suptitle(title, fontsize=9)
    fig.tight_layout()
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=90)
    plt.close(fig)
    buf.seek(0)
    return Image.open(buf).convert("RGB")


def write_gif(frames: list[BattleFrame | PitchFrame], path: Path, title: str, fps: int = 8) -> int:
    """Draw and save the frames as a looping GIF; returns the number of frames written."""
    battles = [f for f in frames if isinstance(f, BattleFrame)]
    view = battle_view(battles) if battles else None
    images = [frame_image(f, title, view) for f in frames]
    path.parent.mkdir(parents=True, exist_ok=True)
    # every frame shows its own step number, so Pillow never merges two frames as duplicates
    images[0].save(path, save_all=True, append_images=images[1:], duration=int(1000 / fps), loop=0)
    return len(images)
