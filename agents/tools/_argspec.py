"""Declared arguments for ``[tools.shell] sandbox = "off"``: anything not declared is refused.

Without a sandbox, a program's options are its attack surface: GNU ``sort`` runs any program
given as ``--compress-program``, writes where ``-o`` says and reads the file list
``--files0-from`` names; ``date -f`` prints any file line by line. So each program declares the
options it may get (``ProgramArgs``), and the checker reads the command line the way GNU
``getopt_long`` does, but strictly:

- a cluster of short options (``-la``) passes only if every letter is a declared flag;
- a short option's value must be the next argument: attached values (``-n5``, ``-o/x``,
  ``-f../x``) are refused, which also closes the clusters that end in a value (``-zo/x``);
- long options must match a declared name exactly (getopt accepts any unambiguous prefix,
  ``--compress=sh`` or ``--files0=list``); ``--name=value`` only for declared value options;
- ``--`` ends the options; every later argument is an operand;
- values and operands are checked by kind: ``path`` must be relative and stay in the workspace
  lexically and through links, must not match the deny list, must exist, and a regular file
  must have a single hard link; ``number`` is an integer; ``text`` is free.

Dangerous options (``--files0-from``, ``-o``, ``-f``, ``--compress-program``, ``-T``, ``-r``/``-R``
where recursion could leave the workspace, ``date -f``/``-r``/``-s``…) are simply never
declared here. One rule holds whatever is declared: ``date``'s operand must be a ``+FORMAT``,
since any other operand sets the system clock.

Declaring an option of a program, an operator should remember that getopt lets an option
with an optional value (``--color[=WHEN]``) take it only after ``=``: such an option is a flag
here, never a value option (its "value" would be the next operand, unchecked).
"""

from __future__ import annotations

import re
import stat
from collections.abc import Sequence
from pathlib import Path

from hub.errors import ToolDenied, ToolFailed

from . import _paths
from .config import ArgKind, ProgramArgs, ShellToolsConfig

_NUMBER = re.compile(r"[+-]?[0-9]+")


def _spec(
    flags: str = "",
    long_flags: str = "",
    options: dict[str, ArgKind] | None = None,
    operands: ArgKind | None = "path",
    first_operand: ArgKind | None = None,
) -> ProgramArgs:
    """A declaration from compact flag lists: ``"la"`` is ``-l -a``; long flags space-separated."""
    declared = (*(f"-{c}" for c in flags), *(f"--{n}" for n in long_flags.split()))
    return ProgramArgs(flags=declared, options=options or {}, operands=operands, first_operand=first_operand)


_HEAD: dict[str, ArgKind] = {"-n": "number", "-c": "number", "--lines": "number", "--bytes": "number"}

BUILTIN_PROGRAMS: dict[str, ProgramArgs] = {
    "ls": _spec(
        "laAh1tSrdFisngoGpUXvcuQN",
        "all almost-all human-readable reverse size directory classify inode numeric-uid-gid group-directories-first",
    ),
    "cat": _spec("nbsETAvet", "number number-nonblank squeeze-blank show-all show-ends show-tabs show-nonprinting"),
    "echo": _spec("neE", operands="text"),
    "grep": _spec(
        "ivclLnhHoqswxFEGPaIbTZz",
        "ignore-case invert-match count files-with-matches files-without-match line-number no-filename "
        "with-filename only-matching quiet silent no-messages word-regexp line-regexp fixed-strings "
        "extended-regexp basic-regexp perl-regexp text byte-offset initial-tab null null-data",
        {
            "-m": "number",
            "--max-count": "number",
            "-A": "number",
            "-B": "number",
            "-C": "number",
            "--after-context": "number",
            "--before-context": "number",
            "--context": "number",
        },
        first_operand="text",
    ),
    "wc": _spec("lwcmL", "lines words bytes chars max-line-length"),
    "head": _spec("qvz", "quiet silent verbose zero-terminated", _HEAD),
    "tail": _spec("qvz", "quiet silent verbose zero-terminated", _HEAD),
    "sort": _spec(
        "bdfgiMhnRrVcCmsuz",
        "ignore-leading-blanks dictionary-order ignore-case general-numeric-sort ignore-nonprinting "
        "month-sort human-numeric-sort numeric-sort random-sort reverse version-sort check merge stable "
        "unique zero-terminated",
        {
            "-k": "text",
            "--key": "text",
            "-t": "text",
            "--field-separator": "text",
            "-S": "text",
            "--buffer-size": "text",
            "--parallel": "number",
        },
    ),
    "uniq": _spec(
        "cdDuiz",
        "count repeated unique ignore-case zero-terminated",
        {
            "-f": "number",
            "-s": "number",
            "-w": "number",
            "--skip-fields": "number",
            "--skip-chars": "number",
            "--check-chars": "number",
        },
    ),
    "cut": _spec(
        "snz",
        "complement only-delimited zero-terminated",
        {
            "-b": "text",
            "-c": "text",
            "-f": "text",
            "-d": "text",
            "--bytes": "text",
            "--characters": "text",
            "--fields": "text",
            "--delimiter": "text",
            "--output-delimiter": "text",
        },
    ),
    "tr": _spec("cCdst", "complement delete squeeze-repeats truncate-set1", operands="text"),
    "pwd": _spec("LP", operands=None),
    "stat": _spec("Lft", "dereference file-system terse", {"-c": "text", "--format": "text", "--printf": "text"}),
    "du": _spec(
        "abchkmsxlS",
        "all bytes total human-readable summarize one-file-system count-links separate-dirs",
        {"-d": "number", "--max-depth": "number", "--exclude": "text"},
    ),
    "diff": _spec(
        "qsuciwbBEZatTy",
        "brief report-identical-files ignore-case ignore-all-space ignore-space-change ignore-blank-lines "
        "ignore-tab-expansion ignore-trailing-space text expand-tabs initial-tab side-by-side",
        {"-U": "number", "-C": "number", "-W": "number", "--width": "number"},
    ),
    "basename": _spec("az", "multiple zero", {"-s": "text", "--suffix": "text"}, operands="text"),
    "dirname": _spec("z", "zero", operands="text"),
    "sha256sum": _spec("btz", "binary text zero tag"),
    "md5sum": _spec("btz", "binary text zero tag"),
    "date": _spec("uRI", "utc universal rfc-email debug", {"-d": "text", "--date": "text"}, operands="text"),
}
"""The simple programs ``sandbox = "off"`` runs, with the arguments each may get."""


def declaration(program: str, cfg: ShellToolsConfig) -> ProgramArgs | None:
    """The arguments ``program`` may get: the operator's ``programs`` entry, else the built-in one."""
    return cfg.programs.get(program, BUILTIN_PROGRAMS.get(program))


def undeclared(program: str) -> ToolDenied:
    """The refusal of a program that has no declaration, saying how to declare one."""
    return ToolDenied(
        f'command {program!r} is allowed, but runs without a sandbox ([tools.shell] sandbox = "off") only with '
        f"declared arguments, and it has none: declare them in [tools.shell.programs.{program}] (flags = [...], "
        'options = {"-n" = "number"}, operands = "path"), or run commands in the bubblewrap sandbox '
        '(sandbox = "bwrap")'
    )


def check_arguments(program: str, argv: Sequence[str], spec: ProgramArgs, root: Path, denied: _paths.DenyList) -> None:
    """Refuse ``argv`` (the arguments after the program name) unless ``spec`` declares all of it.

    Args:
        program: the program's name, for messages.
        argv: its arguments.
        spec: what it may get.
        root: the workspace (real path): where ``path`` values must stay.
        denied: names no argument may lead to.

    Raises:
        ToolDenied: an undeclared or mis-spelt option, a path outside the workspace or refused.
        ToolFailed: a missing value, a path that does not exist.
    """
    operands: list[str] = []
    with _paths.Workspace(root, denied) as ws:
        i, options_ended = 0, False
        while i < len(argv):
            arg = argv[i]
            i += 1
            if options_ended or arg == "-" or not arg.startswith("-"):
                operands.append(arg)
            elif arg == "--":
                options_ended = True
            elif arg.startswith("--"):
                i = _long_option(program, arg, argv, i, spec, ws)
            else:
                i = _short_options(program, arg, argv, i, spec, ws)
        _check_operands(program, operands, spec, ws)


def _value(program: str, option: str, argv: Sequence[str], i: int) -> str:
    if i >= len(argv):
        raise ToolFailed(f"{program}: option {option} needs a value (as the next argument)")
    return argv[i]


def _long_option(program: str, arg: str, argv: Sequence[str], i: int, spec: ProgramArgs, ws: _paths.Workspace) -> int:
    name, eq, value = arg.partition("=")
    if name in spec.options:
        if not eq:
            value, i = _value(program, name, argv, i), i + 1
        _check_value(program, name, value, spec.options[name], ws)
        return i
    if name in spec.flags and not eq:
        return i
    if name in spec.flags:
        raise ToolDenied(f"{program}: option {name} takes no value ({arg!r})")
    raise ToolDenied(
        f'{program}: option {name} is not declared for sandbox = "off" (long options must be spelt out in full '
        f"as declared; abbreviations are refused); declared: {_declared(spec)}"
    )


def _short_options(program: str, arg: str, argv: Sequence[str], i: int, spec: ProgramArgs, ws: _paths.Workspace) -> int:
    if arg in spec.options:
        _check_value(program, arg, _value(program, arg, argv, i), spec.options[arg], ws)
        return i + 1
    for letter in arg[1:]:
        option = f"-{letter}"
        if option in spec.flags:
            continue
        if option in spec.options:
            raise ToolDenied(
                f"{program}: {arg!r} attaches a value to {option}; give the value as the next argument ({option} VALUE)"
            )
        within = f" (in {arg!r})" if arg != option else ""
        raise ToolDenied(
            f'{program}: option {option}{within} is not declared for sandbox = "off"; declared: {_declared(spec)}'
        )
    return i


def _declared(spec: ProgramArgs) -> str:
    return " ".join((*spec.flags, *(f"{name} VALUE" for name in spec.options))) or "(no options)"


def _check_operands(program: str, operands: Sequence[str], spec: ProgramArgs, ws: _paths.Workspace) -> None:
    if operands and spec.operands is None:
        raise ToolDenied(f"{program}: takes no operands here ({operands[0]!r})")
    for n, operand in enumerate(operands):
        kind = spec.first_operand if n == 0 and spec.first_operand is not None else spec.operands
        assert kind is not None
        if program == "date" and not operand.startswith("+"):
            raise ToolDenied(f"date: only a +FORMAT operand is accepted ({operand!r} would set the clock)")
        _check_value(program, "operand", operand, kind, ws)


def _check_value(program: str, what: str, value: str, kind: ArgKind, ws: _paths.Workspace) -> None:
    if kind == "number":
        if not _NUMBER.fullmatch(value):
            raise ToolDenied(f"{program}: {what} needs a whole number, not {value!r}")
    elif kind == "path" and value != "-":
        check_path(value, ws)


def check_path(value: str, ws: _paths.Workspace) -> None:
    """Refuse a path argument unless it is relative, inside, allowed and singly linked.

    Raises:
        ToolDenied: absolute, outside (through ``..`` or a link), deny-listed, or a hard-linked file.
        ToolFailed: it does not exist.
    """
    if value.startswith("/"):
        raise ToolDenied(f"path {value!r} is absolute; use a path relative to the workspace")
    st, _parts = ws.stat(value)
    if stat.S_ISREG(st.st_mode) and st.st_nlink > 1:
        raise ToolDenied(
            f"{value!r} has {st.st_nlink} hard links; files with other names are refused because the other "
            "names may be outside the workspace"
        )
