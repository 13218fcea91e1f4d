"""The commands and links of README.md, docs/*.md and benchmarks/**/README.md still work.

Every `python -m ptde.<entry> ...` command in a code block or in inline code, and every
`make train|benchmark|report|paper-*` command (which call those entry points), is composed in
process with Hydra's compose API: the config `--cfg job` would print, so a renamed key, group
option or value breaks the build without running anything. How a command becomes overrides:

- Hydra's flags (`-m`, `--cfg job`, `--help`, ...) are dropped; with `-m` every job of the sweep is
  composed (`seed=0,1,2`: three), without it a sweep value fails as it would on the command line;
- a placeholder (`<run folder>`, `...`): in a config group's option (`env=smac/<map>`) it matches
  the group's options and the first is taken; any other placeholder override is dropped, and its
  key must still exist in the composed config; `[key=...]` (an optional argument) is unwrapped;
- `a|b` in a value (`mode=centralized|decentralized`) composes each alternative;
- the `extra` overrides of `ptde.sweep` / `ptde.tools.campaign` are composed as `ptde.train`'s.

Every relative link (and image) must point to an existing file, and a `#fragment` to a heading.
"""

from __future__ import annotations

import fnmatch
import functools
import itertools
import re
import shlex
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from conftest import CONF, REPO

DOCS = [
    REPO / "README.md",
    *sorted((REPO / "docs").glob("*.md")),
    *sorted((REPO / "benchmarks").glob("**/README.md")),
]
# entry point -> its Hydra config in conf/
ENTRY_CONFIGS = {
    "ptde.train": "config",
    "ptde.distill": "distill",
    "ptde.evaluate": "evaluate",
    "ptde.sweep": "sweep",
    "ptde.report": "report",
    "ptde.tools.campaign": "benchmark",
}
# modules the docs run that take no Hydra overrides (argparse), so there is nothing to compose
NOT_HYDRA = {
    "ptde.tools.bench": "argparse flags (--parts ...)",
    "ptde.tools.bench_checkpoint": "argparse flags",
    "ptde.tools.bench_replay": "argparse flags",
    "ptde.tools.bench_speed": "argparse flags",
    "ptde.tools.profile_run": "documented only as `<overrides>`",
    "ptde.report.windows": "argparse: run folders and --every/--columns",
}
# make targets that run an entry point; the rest (demo, test, lint, bench, clean, ...) run none
MAKE_TARGETS = {"train", "benchmark", "report"}
PLACEHOLDER = "@PLACEHOLDER@"
HYDRA_FLAGS_WITH_VALUE = {"--cfg", "-c", "--package", "-p", "--config-name", "-cn", "--config-path", "-cp"}
HYDRA_FLAGS_WITH_VALUE |= {"--config-dir", "-cd", "--experimental-rerun"}
INFO_CHOICES = {"all", "config", "defaults", "defaults-tree", "plugins", "searchpath"}
MAX_JOBS = 16


# ---------------------------------------------------------------- finding the commands


@dataclass
class Command:
    where: str  # file:line
    text: str  # as written (comment stripped)
    config: str = ""  # the entry point's config name
    overrides: list[str] = field(default_factory=list)
    multirun: bool = False
    key_checks: list[str] = field(default_factory=list)  # keys of dropped placeholder overrides


def _strip_comment(line: str) -> str:
    """The line without a shell comment (a `#` after whitespace, outside quotes)."""
    quote = None
    i = 0
    while i < len(line):
        ch = line[i]
        if quote and ch == "\\" and quote == '"':
            i += 1  # an escaped character inside double quotes
        elif quote and ch == quote:
            quote = None
        elif not quote and ch in "'\"":
            quote = ch
        elif not quote and ch == "#" and (i == 0 or line[i - 1].isspace()):
            return line[:i].rstrip()
        i += 1
    return line


def _balanced(text: str) -> bool:
    try:
        shlex.split(text)
    except ValueError:
        return False
    return True


def _code_blocks(lines: list[str]) -> tuple[list[tuple[int, str]], set[int]]:
    """(line number, logical line) of every code block line, joined over `\\` and open quotes, and
    the numbers of all code block lines (fenced or indented by 4 spaces after a blank line)."""
    in_code: set[int] = set()
    fenced = False
    indented = False
    for i, line in enumerate(lines):
        if line.lstrip().startswith("```"):
            fenced = not fenced
            in_code.add(i)
            continue
        if fenced:
            in_code.add(i)
            continue
        if line.startswith("    ") and (indented or i == 0 or not lines[i - 1].strip()):
            indented = True
            in_code.add(i)
        elif line.strip():
            indented = False
    logical: list[tuple[int, str]] = []
    pending: tuple[int, str] | None = None
    for i in sorted(in_code):
        line = re.sub(r"<[^<>]*>", PLACEHOLDER, lines[i].strip())  # `<the sweep's folder>` is one word
        start, text = (pending[0], f"{pending[1]} {line}") if pending else (i, line)
        text = _strip_comment(text)
        if text.endswith("\\"):
            pending = (start, text[:-1])
        elif not _balanced(text) and i + 1 in in_code:
            pending = (start, text)  # a quote open over the line's end
        else:
            pending = None
            logical.append((start, text))
    return logical, in_code


def _inline_code(lines: list[str], in_code: set[int]) -> list[tuple[int, str]]:
    """(line number, text) of every inline code span outside code blocks (spans may wrap lines)."""
    text = "\n".join("" if i in in_code else line for i, line in enumerate(lines))
    return [(text.count("\n", 0, m.start()), " ".join(m.group(1).split())) for m in re.finditer(r"`([^`]+)`", text)]


_COMMAND = re.compile(r"(?:^|\s)(?:\S*/)?python3?\s+-m\s+(ptde(?:\.\w+)+)(.*)$|(?:^|\s)make\s+([\w-]+)(?=\s|$)(.*)$")


def _tokens(args: str) -> list[str]:
    args = re.sub(r"<[^<>]*>", PLACEHOLDER, args)  # a placeholder may hold spaces: `<stage-1 run>`
    tokens = shlex.split(args)
    for stop in ("|", "&&", ";", ">", "||"):  # the command ends where the shell's next one starts
        if stop in tokens:
            tokens = tokens[: tokens.index(stop)]
    return tokens


def _make_command(target: str, tokens: list[str]) -> tuple[str, list[str]] | None:
    """The entry point and arguments that the Makefile's target runs (see its recipes)."""
    if target not in MAKE_TARGETS and not target.startswith("paper-"):
        return None
    var = dict(t.split("=", 1) for t in tokens if re.match(r"^[A-Z_]+=", t))
    args = shlex.split(var.get("ARGS", ""))  # the recipe's shell splits $(ARGS) once more
    if target == "train":
        return "ptde.train", args
    if target == "report":
        return "ptde.report", [f"source={var.get('SOURCE', '')}", *args]
    if target == "benchmark":
        head = [f"campaign={var.get('CAMPAIGN', 'smax')}", f"budget={var.get('BUDGET', 'full')}"]
        return "ptde.tools.campaign", [*head, f"jobs={var.get('JOBS', '2')}", *args]
    head = [f"grid={target.replace('-', '_')}", f"budget={var.get('BUDGET', 'full')}"]
    head.append(f"launcher={var.get('LAUNCHER', 'basic')}")
    for make_var, key in (("ALGOS", "algos"), ("MAPS", "envs"), ("SEEDS", "seeds")):
        if var.get(make_var):
            head.append(f"{key}=[{var[make_var]}]")
    return "ptde.sweep", [*head, *args]


def _group_dirs() -> set[str]:
    return {p.name for p in CONF.iterdir() if p.is_dir()} | {"hydra/launcher"}


def _group_options(group: str) -> list[str]:
    if group == "hydra/launcher":
        return ["basic", "joblib", "submitit_slurm", *sorted(p.stem for p in (CONF / "hydra/launcher").glob("*.yaml"))]
    root = CONF / group
    return sorted(str(p.relative_to(root).with_suffix("")) for p in root.rglob("*.yaml"))


def _to_command(where: str, text: str) -> Command | None:
    m = _COMMAND.search(text)
    if m is None:
        return None
    try:
        tokens = _tokens(m.group(2) if m.group(1) else m.group(4))
    except ValueError as exc:  # unbalanced quotes: the command cannot be pasted either
        raise AssertionError(f"{where}: `{text}` does not parse as a shell command: {exc}") from exc
    if m.group(1):
        module = m.group(1)
    else:
        made = _make_command(m.group(3), tokens)
        if made is None:
            return None
        module, tokens = made
    if module in NOT_HYDRA:
        return None
    assert module in ENTRY_CONFIGS, f"{where}: `{text}` runs {module}, which tests/test_docs.py does not know"
    cmd = Command(where, text, ENTRY_CONFIGS[module])
    i = 0
    while i < len(tokens):
        tok = tokens[i]
        i += 1
        if tok in ("-m", "--multirun"):
            cmd.multirun = True
        elif tok in HYDRA_FLAGS_WITH_VALUE:
            i += 1
        elif tok in ("--info", "-i"):
            i += i < len(tokens) and tokens[i] in INFO_CHOICES
        elif tok.startswith("-"):
            continue  # --help, --resolve, ...
        elif tok == "..." or tok == PLACEHOLDER:
            continue  # `ptde.train ... stage=2`: the elided part of a command
        else:
            if tok.startswith("[") and tok.endswith("]") and "=" in tok:
                tok = tok[1:-1]  # an optional argument: `[entity=...]`
            cmd.overrides.append(tok)
    return cmd


def _resolve_placeholders(cmd: Command) -> Command:
    """Group options with a placeholder matched against conf/; other placeholder overrides dropped."""
    groups = _group_dirs()
    kept = []
    for o in cmd.overrides:
        key, _, value = o.partition("=")
        if PLACEHOLDER not in value and "..." not in value:
            kept.append(o)
            continue
        bare = key.lstrip("+~")
        if bare in groups:
            pattern = value.replace(PLACEHOLDER, "*").replace("...", "*")
            options = fnmatch.filter(_group_options(bare), pattern)
            assert options, f"{cmd.where}: no option of {bare} matches {value!r}"
            kept.append(f"{key}={options[0]}")
        elif not bare.startswith("hydra"):
            cmd.key_checks.append(bare)
    cmd.overrides = kept
    return cmd


def collect() -> list[Command]:
    commands = []
    for path in DOCS:
        rel = path.relative_to(REPO)
        lines = path.read_text().splitlines()
        code, in_code = _code_blocks(lines)
        for n, text in [*code, *_inline_code(lines, in_code)]:
            cmd = _to_command(f"{rel}:{n + 1}", text)
            if cmd is not None:
                commands.append(_resolve_placeholders(cmd))
    return commands


COMMANDS = collect()


# ---------------------------------------------------------------- composing them


def _jobs(cmd: Command) -> list[list[str]]:
    """The overrides of each job: one per `a|b` alternative, and per sweep value under `-m`."""
    from hydra.core.override_parser.overrides_parser import OverridesParser

    alternatives = [[f"{o.partition('=')[0]}={v}" for v in o.partition("=")[2].split("|")]
                    if "|" in o and "=" in o and " " not in o else [o] for o in cmd.overrides]  # fmt: skip
    jobs = []
    for overrides in itertools.product(*alternatives):
        if not cmd.multirun:
            jobs.append(list(overrides))
            continue
        choices = []
        for o in OverridesParser.create().parse_overrides(list(overrides)):
            if o.is_sweep_override():
                choices.append([f"{o.get_key_element()}={v}" for v in o.sweep_string_iterator()])
            else:
                choices.append([o.input_line])
        jobs.extend(list(job) for job in itertools.islice(itertools.product(*choices), MAX_JOBS))
    return jobs


def _has_key(cfg, key: str) -> bool:
    """Whether the composed config has `key` (a mandatory `???` value counts)."""
    from omegaconf import DictConfig, OmegaConf

    parent, _, leaf = key.rpartition(".")
    node = OmegaConf.select(cfg, parent, default=None) if parent else cfg
    return isinstance(node, DictConfig) and leaf in node.keys()


@functools.cache
def _register() -> None:
    from ptde.config import register_configs, register_entry_configs

    register_configs()
    register_entry_configs()


@functools.cache
def _compose_once(config: str, overrides: tuple[str, ...]):
    from hydra import compose, initialize_config_dir
    from omegaconf import OmegaConf

    _register()
    with initialize_config_dir(config_dir=str(CONF), version_base="1.3"):
        cfg = compose(config, overrides=list(overrides))
    OmegaConf.to_container(cfg, resolve=True)  # every interpolation resolves
    return cfg


def _compose(config: str, overrides: list[str]):
    """The composed config (read only: the same overrides compose once for all the docs)."""
    return _compose_once(config, tuple(overrides))


def test_the_docs_hold_the_commands_to_check():
    """The extraction finds the commands (a broken parser would let every command pass)."""
    texts = [" ".join(c.text.split()) for c in COMMANDS]
    assert len(COMMANDS) >= 40, texts
    assert any("ptde.train algo=qmix_gip env=grf/counterattack_hard -m seed=0,1,2" in t for t in texts)
    assert {c.config for c in COMMANDS} == set(ENTRY_CONFIGS.values())


@pytest.mark.parametrize("cmd", COMMANDS, ids=[f"{c.where} {' '.join(c.text.split())[:60]}" for c in COMMANDS])
def test_documented_command_composes(cmd: Command):
    from omegaconf import OmegaConf

    for job in _jobs(cmd):
        try:
            cfg = _compose(cmd.config, job)
        except Exception as exc:  # noqa: BLE001 - the message names the command it came from
            pytest.fail(f"{cmd.where}: `{cmd.text}` does not compose ({job}):\n{exc}")
        for key in cmd.key_checks:
            assert _has_key(cfg, key), f"{cmd.where}: the config has no key {key!r}"
        if cmd.config in ("sweep", "benchmark"):  # their `extra` are ptde.train overrides of every run
            launcher = OmegaConf.select(cfg, "launcher", default="basic")
            extra = list(cfg.extra)
            head = [f"hydra/launcher={launcher}"] if launcher != "basic" else []
            if extra:
                try:
                    _compose("config", [*head, *extra])
                except Exception as exc:  # noqa: BLE001
                    pytest.fail(f"{cmd.where}: extra={extra} does not compose for ptde.train:\n{exc}")
        if cmd.config == "sweep":
            for key, group in (("algos", "algo"), ("envs", "env")):
                unknown = set(cfg[key] or []) - set(_group_options(group))
                assert not unknown, f"{cmd.where}: {key} {sorted(unknown)} not in conf/{group}"


# ---------------------------------------------------------------- links


def _slug(heading: str) -> str:
    """GitHub's anchor of a heading: its text without markup, lower case, punctuation dropped."""
    text = re.sub(r"\[([^\]]*)\]\([^)]*\)", r"\1", heading).replace("`", "").replace("*", "")
    return re.sub(r"[^\w\- ]", "", text.strip().lower()).replace(" ", "-")


def _anchors(path: Path) -> set[str]:
    lines = path.read_text().splitlines()
    _, in_code = _code_blocks(lines)
    return {_slug(line.lstrip("#")) for i, line in enumerate(lines) if line.startswith("#") and i not in in_code}


def _links() -> list[tuple[str, Path, str]]:
    found = []
    for path in DOCS:
        lines = path.read_text().splitlines()
        _, in_code = _code_blocks(lines)
        for i, line in enumerate(lines):
            if i in in_code:
                continue
            line = re.sub(r"`[^`]*`", "", line)  # links inside inline code are not links
            for target in re.findall(r"!?\[[^\]]*\]\(([^)\s]+)\)", line):
                if not re.match(r"^[a-z]+:", target):
                    found.append((f"{path.relative_to(REPO)}:{i + 1}", path, target))
    return found


LINKS = _links()


def test_the_docs_have_links_to_check():
    assert len(LINKS) >= 40


@pytest.mark.parametrize(("where", "path", "target"), LINKS, ids=[f"{w} {t}" for w, _, t in LINKS])
def test_relative_link_resolves(where: str, path: Path, target: str):
    file, _, fragment = target.partition("#")
    dest = (path.parent / file).resolve() if file else path
    assert dest.exists(), f"{where}: {target} -> {dest} does not exist"
    if fragment and dest.suffix == ".md":
        assert fragment in _anchors(dest), f"{where}: {dest.relative_to(REPO)} has no heading #{fragment}"
