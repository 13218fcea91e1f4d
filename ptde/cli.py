"""Start-up checks of command-line overrides, so a typo fails with the valid choices named.

Hydra already names the valid options of a config group (`algo=qmx`) and the valid values of
an Enum field; for a misspelt key (`trainer.lr=1`) it only says the key is not in the struct.
`precheck` composes the config once before Hydra runs and, on such an error, lists the keys
that do exist at that level.
"""

from __future__ import annotations

import re
import sys
from pathlib import Path

from hydra import compose, initialize_config_dir
from hydra.core.override_parser.overrides_parser import OverridesParser
from hydra.errors import ConfigCompositionException
from omegaconf import DictConfig, OmegaConf

CONF_DIR = str(Path(__file__).resolve().parents[1] / "conf")


def _first_values(args: list[str]) -> list[str]:
    """The overrides of the first job of a sweep (`seed=0,1,2` -> `seed=0`)."""
    parser = OverridesParser.create()
    out = []
    for o in parser.parse_overrides(args):
        if o.is_sweep_override():
            first = next(iter(o.sweep_string_iterator()))
            out.append(f"{o.get_key_element()}={first}")
        else:
            out.append(o.input_line)
    return out


def group_options(group: str) -> list[str]:
    """Every option of a config group, nested ones as `smac/3m` (Hydra lists only one level)."""
    root = Path(CONF_DIR) / group
    return sorted(str(p.relative_to(root).with_suffix("")) for p in root.rglob("*.yaml"))


def _valid_keys(config_name: str, overrides: list[str], parent: str) -> list[str]:
    groups = [o for o in overrides if "." not in o.split("=")[0].lstrip("+~") and o.split("=")[0] != parent]
    with initialize_config_dir(config_dir=CONF_DIR, version_base="1.3"):
        try:
            cfg = compose(config_name, overrides=groups)
        except ConfigCompositionException:  # another bad override: list the defaults' keys
            cfg = compose(config_name)
    node = OmegaConf.select(cfg, parent) if parent else cfg
    return sorted(node.keys()) if isinstance(node, DictConfig) else []


def precheck(config_name: str, argv: list[str] | None = None) -> None:
    # flags (-m, --help, ...) and Hydra's own settings are Hydra's business, not the run config's
    args = [a for a in (sys.argv[1:] if argv is None else argv) if not a.startswith(("-", "hydra"))]
    try:
        overrides = _first_values(args)
        with initialize_config_dir(config_dir=CONF_DIR, version_base="1.3"):
            compose(config_name, overrides=overrides)
    except ConfigCompositionException as exc:
        missing = re.search(r"Could not find '([^']+)'", str(exc))
        if missing and "Available options" not in str(exc):
            group = missing.group(1).split("/")[0]
            print(
                f"Unknown choice '{missing.group(1)}'.\nValid choices of '{group}': {', '.join(group_options(group))}",
                file=sys.stderr,
            )
            sys.exit(2)
        match = re.search(r"Could not override '([^']+)'", str(exc))
        if match is None:
            return  # Hydra's own message (group options, bad values) already names the choices
        key = match.group(1)
        parent, _, leaf = key.rpartition(".")
        valid = _valid_keys(config_name, overrides, parent)
        where = f"'{parent}'" if parent else "the top level"
        print(
            f"Unknown config key '{key}': {where} has no key '{leaf}'.\nValid keys of {where}: {', '.join(valid)}",
            file=sys.stderr,
        )
        sys.exit(2)
    except Exception:  # noqa: BLE001 - anything else is reported by Hydra itself right after
        return
