"""The command line before Hydra parses it: flags where Hydra expects them, sweep folder names,
and start-up checks of the overrides, so a typo fails with the valid choices named.

Hydra's parser takes its flags (`-m`, `--cfg job`, `--help`, ...) only before the overrides
(`python -m ptde.train seed=0,1 -m` fails with "unrecognized arguments"); `hydra_argv` moves them
there. For a multirun it also tells Hydra which overrides are the same for every job, so the
job's folder name (`hydra.sweep.subdir`, via `hydra.job.override_dirname`) carries exactly the
overrides that differ between jobs.

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


def conf_dir() -> Path:
    """The repository's Hydra config folder (conf/, beside the package), the one every entry point
    composes from. Kept here, in a module that imports nothing of ptde, so that tools outside the
    entry points (the bench) find the same folder instead of working the path out again from
    wherever their own file happens to live."""
    return Path(__file__).resolve().parents[1] / "conf"


CONF_DIR = str(conf_dir())

# Hydra's flags that take a value (`-c job`, `--config-name x`); `--info` takes one of INFO_CHOICES or none
_VALUE_FLAGS = {"--cfg", "-c", "--package", "-p", "--config-path", "-cp", "--config-name", "-cn"}
_VALUE_FLAGS |= {"--config-dir", "-cd", "--experimental-rerun"}
_INFO_FLAGS = {"--info", "-i"}
_INFO_CHOICES = {"all", "config", "defaults", "defaults-tree", "plugins", "searchpath"}
_MULTIRUN = {"-m", "--multirun"}
EXCLUDE_KEYS = "hydra.job.config.override_dirname.exclude_keys"


def split_flags(args: list[str]) -> tuple[list[str], list[str]]:
    """(Hydra's flags with their values, the overrides), each in command-line order."""
    flags, overrides = [], []
    i = 0
    while i < len(args):
        a = args[i]
        if not a.startswith("-"):
            overrides.append(a)
        elif a in _VALUE_FLAGS and i + 1 < len(args):
            flags += [a, args[i + 1]]
            i += 1
        elif a in _INFO_FLAGS:  # its value is optional: spelt out, so that it never takes an override
            value = args[i + 1] if i + 1 < len(args) and args[i + 1] in _INFO_CHOICES else None
            flags += [a, value or "all"]
            i += value is not None
        else:
            flags.append(a)
        i += 1
    return flags, overrides


def task_overrides(args: list[str]) -> list[str]:
    """The run config's overrides of a command line: no flags, no Hydra settings (`hydra.*`, `hydra/...`)."""
    return [a for a in split_flags(args)[1] if not a.startswith("hydra")]


def hydra_argv(argv: list[str], config_name: str) -> list[str]:
    """`argv` as Hydra parses it: flags first; for a multirun, the keys that every job shares excluded
    from `hydra.job.override_dirname` (the suffix of the job's folder name).

    The entry config's own `exclude_keys` (the keys the folder name already shows, such as algo and
    seed) stay excluded; a command line that sets `exclude_keys` itself is left as it is.
    """
    flags, overrides = split_flags(argv[1:])
    if not _MULTIRUN & set(flags) or any(o.startswith(EXCLUDE_KEYS + "=") for o in overrides):
        return [argv[0], *flags, *overrides]
    try:
        parsed = OverridesParser.create().parse_overrides(task_overrides(overrides))
    except Exception:  # noqa: BLE001 - a malformed override: Hydra itself reports it right after
        return [argv[0], *flags, *overrides]
    shared = [o.key_or_group for o in parsed if not o.is_sweep_override()]
    own = OmegaConf.select(OmegaConf.load(Path(CONF_DIR) / f"{config_name}.yaml"), EXCLUDE_KEYS, default=[])
    keys = list(dict.fromkeys([*own, *shared]))
    return [argv[0], *flags, *overrides, f"{EXCLUDE_KEYS}=[{','.join(repr(k) for k in keys)}]"]


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
    args = task_overrides(sys.argv[1:] if argv is None else argv)
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


def prepare_command_line(config_name: str) -> None:
    """`sys.argv` ready for Hydra (`hydra_argv`), its overrides checked first (`precheck`)."""
    sys.argv = hydra_argv(sys.argv, config_name)
    precheck(config_name)
