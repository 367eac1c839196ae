"""``llm-bridge migrate PATH``: move a codebase written for the openai client to llm-bridge.

It reads every Python file under PATH with libcst (never running it) and:

- **reports** each openai call site (``file:line``, the method, the parameters written
  there, the model and where the config sends it) with what the configured providers make
  of it: an API llm-bridge does not serve (images, audio, files, batches ...), a parameter
  a provider drops, json_schema emulated, ``n`` fanned out, a Responses feature missing.
  The verdicts come from llm-bridge's own translation run dry (`_migrate_check`);
- **rewrites** the imports so the clients are llm-bridge's (`_migrate_scan` says exactly
  what changes): shown as a unified diff, applied with ``--write``;
- **writes a starter config** (``llm_bridge.toml``) with an alias for every model name
  found, mapped to a provider model and commented (`_migrate_models`): printed, written
  with ``--config-out FILE`` or, under ``--write``, into PATH. The SDK reads only
  ``$LLM_BRIDGE_CONFIG`` or ``./llm_bridge.toml``, so when the file written is not what a
  program run from here reads, the report says how it will be found (`_finding_hint`).

A model or ``dimensions`` imported from another module of the codebase (``from
.config import EMBEDDING_MODEL``) is read there, with ``ast`` (`_resolve_imported`): the
call is judged against the alias for that name, and the starter config prefers an
embedding model offering the sizes the code asks for (`_dimensions`).

Virtual and conda environments, ``site-packages``, vendored and build directories are
skipped, and symlinked files and directories are listed, not followed (``--write`` must
not rewrite a file outside PATH, or one twice); a directory that cannot be listed, and a
file that does not parse, is reported (it blocks) and never touched (a file that
mentions neither openai, llm_bridge nor an OpenAI model name is not parsed at all).
Jupyter notebooks' code cells are reported (``PATH cell N:LINE``), never rewritten.
Settings files (YAML, TOML, INI, ``.env``) are read for model names only (``model:
gpt-4o``, ``OPENAI_MODEL=gpt-4o``): the starter config aliases them too. With ``--json``
the report is one JSON object on stdout. On a terminal with rich installed (the
``[cli]`` extra) the table is rich's and a progress bar shows on large trees; otherwise
plain text (as every command prints, `_output`).

Exit codes: 0, the scan found nothing that blocks; 1, something blocks (a call site the
configured providers cannot serve or that is refused before sending, a client left as
openai's, a file that could not be parsed); 2, a usage error (no such path, an unknown
provider, a config that does not load, libcst missing, a config file in the way).

The package's import stays free of libcst and rich: they load when the command runs.
"""

from __future__ import annotations

import argparse
import difflib
import json
import os
import sys
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING, Any, Optional

if TYPE_CHECKING:
    from ._migrate_scan import CallSite, FileScan, Finding, ModelName

__all__ = ["EXIT_BLOCKED", "EXIT_OK", "EXIT_USAGE", "SKIP_DIRS", "configure", "main", "run"]

EXIT_OK = 0
EXIT_BLOCKED = 1
EXIT_USAGE = 2

#: Directories never scanned: environments, installed and vendored packages, build output.
#: Hidden directories (``.git``, ``.venv``, ``.tox`` ...) and any directory holding a
#: ``pyvenv.cfg`` or ``conda-meta/`` (an environment of any name) are skipped too.
SKIP_DIRS = frozenset(
    {
        "venv",
        "env",
        "site-packages",
        "dist-packages",
        "node_modules",
        "__pycache__",
        "build",
        "dist",
        "vendor",
        "vendored",
        "_vendor",
        "third_party",
        "third-party",
        "__pypackages__",
    }
)

#: How many files make a tree large enough for a progress bar.
PROGRESS_AT = 50

#: The providers a starter config maps to, in order of preference (the first is used;
#: the others are named as alternatives in its comments).
DEFAULT_PROVIDERS = ("zhipu", "dashscope", "qianfan")

_HELP = "scan a codebase for openai usage; rewrite its imports; write a starter config"
_EPILOG = """\
exit codes:
  0  nothing blocks the migration
  1  something blocks: a call the configured providers do not serve or refuse, a client
     left as openai's, a file that could not be parsed
  2  usage error (no such path, unknown provider, a config that does not load, libcst
     not installed, a config file already at --config-out)
"""


def configure(subparsers: Any) -> None:
    """Add the ``migrate`` command to the ``llm-bridge`` parser's subcommands."""
    parser = subparsers.add_parser(
        "migrate",
        help=_HELP,
        description=_HELP + ' (needs the [cli] extra: pip install "llm-bridge-cn[cli]")',
        epilog=_EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("path", help="a Python file or a directory to scan")
    parser.add_argument(
        "--write",
        action="store_true",
        help="rewrite the files (default: show the rewrite as a diff) and write the starter "
        "config into PATH unless one is there",
    )
    parser.add_argument(
        "--config-out",
        metavar="FILE",
        help="write the starter config to FILE (never over an existing file)",
    )
    parser.add_argument(
        "--config",
        metavar="FILE",
        help="judge the call sites against this config (default: PATH's llm_bridge.toml "
        "if it has one, else the starter config)",
    )
    parser.add_argument(
        "--provider",
        action="append",
        metavar="NAME",
        help="a provider the starter config maps to, in order of preference (repeat it; "
        f"default: {', '.join(DEFAULT_PROVIDERS)})",
    )
    parser.add_argument("--json", action="store_true", help="the report as one JSON object")
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")
    parser.set_defaults(run=run)


def main(argv: Optional[Sequence[str]] = None) -> int:
    """``llm-bridge migrate`` on its own: ``main(["PATH", "--write"])``."""
    parser = argparse.ArgumentParser(prog="llm-bridge")
    configure(parser.add_subparsers(title="commands"))
    args = parser.parse_args(["migrate", *(sys.argv[1:] if argv is None else argv)])
    return run(args)


# --------------------------------------------------------------------------- the run


@dataclass
class _Run:
    """Everything one run found, for the report."""

    root: Path
    scans: list[FileScan] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)
    links: list[str] = field(default_factory=list)
    settings: list[ModelName] = field(default_factory=list)
    models: dict[str, Any] = field(default_factory=dict)
    found: dict[str, list[tuple[str, Optional[str]]]] = field(default_factory=dict)
    judged_against: str = ""
    config_text: Optional[str] = None
    config_path: Optional[Path] = None
    config_written: bool = False
    written: list[str] = field(default_factory=list)


def run(args: argparse.Namespace) -> int:
    """The command: scan, judge, rewrite, write the config, report. Returns the exit code."""
    try:
        import libcst  # noqa: F401  (the parser every step needs)
    except ImportError:
        return _usage('llm-bridge migrate needs libcst: pip install "llm-bridge-cn[cli]"')
    from .._config import DEFAULT_CONFIG_FILE, builtin_providers, load_config
    from .._errors import ConfigError
    from ._migrate_check import Checker, openai_api
    from ._migrate_models import pick, starter_config
    from ._migrate_scan import scan_notebook, scan_source, settings_models

    root = Path(args.path)
    if not root.exists():
        return _usage(f"{root}: no such file or directory")
    base = root if root.is_dir() else root.parent
    existing = Path(args.config) if args.config else base / DEFAULT_CONFIG_FILE
    if args.config and not existing.is_file():
        return _usage(f"{existing}: config file not found")
    has_config = existing.is_file()
    out: Optional[Path] = Path(args.config_out) if args.config_out else None
    if out is not None and out.exists():
        return _usage(f"{out}: already exists; the starter config is never written over a file")
    if out is None and args.write and not has_config:
        out = base / DEFAULT_CONFIG_FILE
    try:
        defaults = load_config(str(existing)) if has_config else load_config({})
    except ConfigError as error:
        return _usage(str(error))
    providers = args.provider or [p for p in DEFAULT_PROVIDERS if p in defaults.providers]
    unknown = [p for p in providers if p not in defaults.providers]
    if unknown:
        known = ", ".join(sorted(set(defaults.providers) | set(builtin_providers())))
        return _usage(f"unknown provider {unknown[0]!r} (known: {known})")

    state = _Run(root)
    files = sorted(_python_files(root, state))
    api = openai_api()
    for path in _progress(files, enabled=not args.no_progress):
        rel = _relative(path, root)
        if _is_settings(path.name):
            state.settings += _settings(path, rel, settings_models)
            continue
        try:
            source = path.read_bytes()
        except OSError as error:
            from ._migrate_scan import FileScan

            state.scans.append(FileScan(rel, error=f"could not be read: {error}"))
            continue
        scan = scan_notebook if path.suffix == ".ipynb" else scan_source
        state.scans.append(scan(rel, source, api))

    resolved = _resolve_imported(state.scans, root)
    for model in [m for scan in state.scans for m in scan.models] + state.settings + resolved:
        state.found.setdefault(model.name, []).append(
            (f"{model.path}:{model.line}", model.used_for)
        )
    origin = " ".join([str(args.path), *(f"--provider {p}" for p in args.provider or ())])
    text, choices = starter_config(
        defaults, state.found, providers, origin=origin, dimensions=_dimensions(state.scans)
    )
    state.models = choices
    if has_config:
        judge = defaults
        state.judged_against = str(existing)
    else:
        judge = load_config(_toml(text))
        state.judged_against = "the starter config"
    if out is not None or not has_config:
        state.config_text = text
    first = providers[0] if providers else None
    fallback = {}
    if first is not None:
        for kind, cls in (("chat", "flagship"), ("embedding", "embedding")):
            model = pick(judge, first, cls)
            if model:
                fallback[kind] = f"{first}/{model}"
    checker = Checker(judge, fallback)
    for scan in state.scans:
        for site in scan.calls:
            verdict = checker.check(site)
            site.target = verdict.target
            site.findings.extend(verdict.findings)

    if args.write:
        for scan in state.scans:
            if scan.rewritten is not None:
                _replace(root / scan.path if root.is_dir() else root, scan.rewritten)
                state.written.append(scan.path)
    if out is not None and state.config_text is not None:
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(state.config_text, encoding="utf-8")
        state.config_path, state.config_written = out, True

    code = EXIT_BLOCKED if _blocked(state) else EXIT_OK
    if args.json:
        json.dump(_as_json(state, args, code), sys.stdout, ensure_ascii=False, indent=2)
        sys.stdout.write("\n")
    else:
        _print_report(state, args, code)
    return code


def _module_file(root: Path, importer: str, module: str, level: int) -> Optional[Path]:
    """The file under ``root`` that ``from MODULE import ...`` in ``importer`` (a path
    relative to ``root``) reads: relative to the importer for a relative import, else
    from the importer's directory or any directory above it up to ``root`` (a flat
    layout, ``src/``); None when the module is not in the tree."""
    base = root if root.is_dir() else root.parent
    here = (base / importer).parent
    parts = [p for p in module.split(".") if p]
    if level:
        for _ in range(level - 1):
            here = here.parent
        starts = [here]
    else:
        starts = [here, *[d for d in here.parents if d == base or base in d.parents]]
    for start in starts:
        target = start.joinpath(*parts) if parts else start
        for candidate in (target.with_suffix(".py"), target / "__init__.py"):
            if parts and candidate.is_file():
                return candidate
            if not parts and candidate.name == "__init__.py" and candidate.is_file():
                return candidate
    return None


def _module_constants(path: Path) -> dict[str, tuple[Any, int]]:
    """A module's top-level constants (``NAME = "gpt-4o"``, ``DIM = 1536``, an
    environment read's default): name -> (value, line). Read with ``ast``, never run."""
    import ast

    try:
        tree = ast.parse(path.read_bytes())
    except (SyntaxError, ValueError, OSError):
        return {}
    found: dict[str, tuple[Any, int]] = {}
    for node in tree.body:
        targets: list[ast.expr] = []
        if isinstance(node, ast.Assign):
            targets, value = list(node.targets), node.value
        elif isinstance(node, ast.AnnAssign) and node.value is not None:
            value = node.value
            targets.append(node.target)
        else:
            continue
        if isinstance(value, ast.Call) and len(value.args) >= 2:  # os.getenv("X", "gpt-4o")
            func = ast.unparse(value.func)
            if func in ("os.getenv", "getenv", "os.environ.get", "environ.get"):
                value = value.args[1]
        try:
            constant = ast.literal_eval(value)
        except (ValueError, TypeError, SyntaxError, MemoryError, RecursionError):
            continue
        if not isinstance(constant, (str, int, float, bool)):
            continue
        for target in targets:
            if isinstance(target, ast.Name):
                found[target.id] = (constant, node.lineno)
    return found


def _resolve_imported(scans: list[FileScan], root: Path) -> list[ModelName]:
    """Fill in parameters whose value is a constant imported from another file of the
    codebase (``model=EMBEDDING_MODEL`` after ``from rag_starter.config import
    EMBEDDING_MODEL``): the call is then judged against the config's alias for that name,
    not a generic target, and its ``dimensions`` checked. Each resolved model is returned
    as a model name used at the call (so the starter config aliases it for that use)."""
    import dataclasses

    from ._migrate_scan import UNKNOWN, Finding, ModelName
    from ._migrate_scan import _api_kind as api_kind

    cache: dict[Path, dict[str, tuple[Any, int]]] = {}
    models: list[ModelName] = []
    for scan in scans:
        for site in scan.calls:
            for index, param in enumerate(site.params):
                if param.value is not UNKNOWN or param.origin is None:
                    continue
                module, level, name = param.origin
                source = _module_file(root, scan.path, module, level)
                if source is None:
                    continue
                if source not in cache:
                    cache[source] = _module_constants(source)
                if name not in cache[source]:
                    continue
                value, line = cache[source][name]
                site.params[index] = dataclasses.replace(param, value=value)
                where = f"{_relative(source, root) if root.is_dir() else source.name}:{line}"
                site.findings.append(
                    Finding(
                        "note",
                        f"{param.code} is {value!r} ({where}): judged as that",
                        param.name,
                    )
                )
                if param.name == "model" and isinstance(value, str):
                    models.append(ModelName(value, site.path, site.line, api_kind(site.resource)))
    return models


def _dimensions(scans: list[FileScan]) -> dict[str, list[Any]]:
    """The ``dimensions`` each embedding model is asked for at the call sites: an int
    where the code gives it (a literal, a constant), else the code's text."""
    from ._migrate_scan import UNKNOWN

    asked: dict[str, list[Any]] = {}
    for scan in scans:
        for site in scan.calls:
            model = site.model
            if site.resource != "embeddings.create" or not isinstance(model, str):
                continue
            for param in site.params:
                if param.name == "dimensions":
                    value = param.value
                    known = isinstance(value, int) and value is not UNKNOWN
                    asked.setdefault(model, []).append(value if known else param.code)
    return asked


def _replace(path: Path, data: bytes) -> None:
    """Write ``data`` over ``path`` atomically (a temporary file beside it, then a rename),
    keeping its permissions: an interrupted ``--write`` leaves the old file whole, never
    a truncated one."""
    import shutil
    import tempfile

    path = path.resolve()  # PATH itself may be a symlink: rewrite its target, keep the link
    handle, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(handle, "wb") as file:
            file.write(data)
        shutil.copymode(path, temporary)
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise


def _usage(message: str) -> int:
    print(f"llm-bridge migrate: {message}", file=sys.stderr)
    return EXIT_USAGE


def _toml(text: str) -> dict[str, Any]:
    if sys.version_info >= (3, 11):
        import tomllib
    else:  # pragma: no cover - the same parser, before 3.11
        import tomli as tomllib
    return tomllib.loads(text)


def _python_files(root: Path, state: _Run) -> Iterator[Path]:
    """The files to read under ``root`` in a stable order, minus the skipped directories
    (their paths, relative to ``root``, are added to ``state.skipped``, symlinked ones
    too: ``venv -> ../envs/app``) and the other symlinked files and directories (added
    to ``state.links``: never followed, as their targets are scanned where they live or
    are outside the tree, and ``--write`` must not rewrite a file twice or one the user
    did not point at). A directory that cannot be listed is a file not parsed (it
    blocks): its files would otherwise vanish from the report."""
    if root.is_file():
        yield root
        return
    for directory, dirs, names in os.walk(root, onerror=partial(_unlisted, state)):
        here = Path(directory)
        keep = []
        for name in sorted(dirs):
            path = here / name
            if _is_skipped(path):  # first: a symlinked venv is an environment, skipped
                state.skipped.append(_relative(path, root))
            elif path.is_symlink():
                state.links.append(_relative(path, root))
            else:
                keep.append(name)
        dirs[:] = keep
        for name in sorted(names):
            if not (name.endswith((".py", ".ipynb")) or _is_settings(name)):
                continue
            if (here / name).is_symlink():
                state.links.append(_relative(here / name, root))
            else:
                yield here / name


def _is_skipped(directory: Path) -> bool:
    """Whether ``directory`` is never scanned: an environment (a virtual one, by its
    ``pyvenv.cfg``, or conda's, by its ``conda-meta``), installed, vendored or build
    output, or hidden. (``os.path``'s checks: one that cannot look inside says no, and
    the walk then reports the directory as unreadable.)"""
    name = directory.name
    return (
        name in SKIP_DIRS
        or name.startswith(".")
        or name.endswith(".egg-info")
        or os.path.exists(directory / "pyvenv.cfg")
        or os.path.isdir(directory / "conda-meta")
    )


def _unlisted(state: _Run, error: OSError) -> None:
    """`os.walk`'s ``onerror``: a directory that could not be listed is reported as not
    parsed, so the run blocks instead of passing over its files."""
    from ._migrate_scan import FileScan

    where = Path(error.filename) if error.filename else state.root
    state.scans.append(
        FileScan(
            _relative(where, state.root),
            error=f"directory could not be read: {error.strerror or error}",
        )
    )


#: Settings files read for model names (`_is_settings`), and the ones that are not.
SETTINGS_SUFFIXES = (".yaml", ".yml", ".toml", ".ini", ".cfg", ".env")
NOT_SETTINGS = frozenset({"llm_bridge.toml", "pyvenv.cfg"})
#: A settings file larger than this is data, not settings: not read.
SETTINGS_LIMIT = 1 << 20


def _is_settings(name: str) -> bool:
    """Whether a file named ``name`` is a settings file that may name a model."""
    if name in NOT_SETTINGS:
        return False
    return name.endswith(SETTINGS_SUFFIXES) or name == ".env" or name.startswith(".env.")


def _settings(path: Path, rel: str, read: Any) -> list[ModelName]:
    """The model names a settings file gives (`settings_models`); none when it cannot be
    read as text or is too large to be settings."""
    try:
        if path.stat().st_size > SETTINGS_LIMIT:
            return []
        text = path.read_text(encoding="utf-8", errors="replace")
    except OSError:
        return []
    found: list[ModelName] = read(rel, text)
    return found


def _relative(path: Path, root: Path) -> str:
    if root.is_file():
        return path.name
    return path.relative_to(root).as_posix()


def _progress(files: list[Path], *, enabled: bool) -> Iterator[Path]:
    """``files``, with rich's progress bar on stderr for a large tree on a terminal."""
    from ._output import rich_console

    console = rich_console(sys.stderr) if enabled and len(files) >= PROGRESS_AT else None
    if console is None:
        yield from files
        return
    from rich.progress import Progress

    with Progress(console=console, transient=True) as progress:
        task = progress.add_task("scanning", total=len(files))
        for path in files:
            yield path
            progress.advance(task)


# --------------------------------------------------------------------------- the report


def _status(findings: Sequence[Finding]) -> str:
    severities = {f.severity for f in findings}
    if "blocks" in severities:
        return "blocks"
    return "changes" if "changes" in severities else "ok"


def _blocked(state: _Run) -> bool:
    for scan in state.scans:
        if scan.error is not None:
            return True
        if any(f.severity == "blocks" for _, f in scan.findings):
            return True
        if any(_status(site.findings) == "blocks" for site in scan.calls):
            return True
    return False


def _diff(scan: FileScan) -> str:
    assert scan.rewritten is not None
    before = scan.original.decode(scan.encoding, errors="replace").splitlines(keepends=True)
    after = scan.rewritten.decode(scan.encoding, errors="replace").splitlines(keepends=True)
    lines = difflib.unified_diff(before, after, f"a/{scan.path}", f"b/{scan.path}")
    return "".join(line if line.endswith("\n") else line + "\n" for line in lines)


def _jsonable(value: Any) -> Any:
    from ._migrate_scan import UNKNOWN

    if value is UNKNOWN:
        return None
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple, set)):
        return [_jsonable(v) for v in value]
    if isinstance(value, (str, int, float, bool)) or value is None:
        return value
    return repr(value)


def _is_literal(value: Any) -> bool:
    from ._migrate_scan import UNKNOWN

    if value is UNKNOWN:
        return False
    if isinstance(value, dict):
        return all(_is_literal(v) for v in value.values())
    if isinstance(value, list):
        return all(_is_literal(v) for v in value)
    return True


def _summary(state: _Run) -> dict[str, Any]:
    sites = [site for scan in state.scans for site in scan.calls]
    statuses = [_status(site.findings) for site in sites]
    return {
        "files_scanned": len(state.scans),
        "files_using_openai": sum(scan.uses_openai for scan in state.scans),
        "files_not_parsed": sum(scan.error is not None for scan in state.scans),
        "files_to_rewrite": sum(scan.rewritten is not None for scan in state.scans),
        "files_written": len(state.written),
        "call_sites": len(sites),
        "ok": statuses.count("ok"),
        "changes": statuses.count("changes"),
        "blocks": statuses.count("blocks"),
        "not_analysed": sum(site.reference for site in sites),
        "file_findings": sum(len(scan.findings) for scan in state.scans),
        "models": len(state.found),
    }


def _as_json(state: _Run, args: argparse.Namespace, code: int) -> dict[str, Any]:
    return {
        "path": str(args.path),
        "call_sites": [
            {
                "file": site.path,
                "line": site.line,
                "column": site.column,
                "kind": site.kind,
                "call": site.resource,
                "written": site.written,
                "parameters": [
                    {
                        "name": p.name,
                        "value": _jsonable(p.value),
                        "literal": _is_literal(p.value),
                        "code": p.code,
                    }
                    for p in site.params
                ],
                "parameters_via_star": site.star_kwargs,
                "model": _jsonable(site.model),
                "target": site.target,
                "status": _status(site.findings),
                "findings": [
                    {"severity": f.severity, "param": f.param, "message": f.message}
                    for f in site.findings
                ],
            }
            for scan in state.scans
            for site in scan.calls
        ],
        "file_findings": [
            {"file": scan.path, "line": line, "severity": f.severity, "message": f.message}
            for scan in state.scans
            for line, f in scan.findings
        ],
        "not_parsed": [
            {"file": scan.path, "error": scan.error}
            for scan in state.scans
            if scan.error is not None
        ],
        "skipped_directories": state.skipped,
        "skipped_symlinks": state.links,
        "rewrites": [
            {"file": scan.path, "written": scan.path in state.written, "diff": _diff(scan)}
            for scan in state.scans
            if scan.rewritten is not None
        ],
        "models": {
            name: {
                "class": choice.cls,
                "target": choice.target,
                "about": choice.about,
                "found_at": [where for where, _ in state.found[name]],
            }
            for name, choice in state.models.items()
        },
        "config": {
            "judged_against": state.judged_against,
            "path": str(state.config_path) if state.config_path else None,
            "written": state.config_written,
            "text": state.config_text,
            "how_to_use": _finding_hint(state.config_path) if state.config_written else None,
        },
        "summary": _summary(state),
        "exit_code": code,
    }


def _params_text(site: CallSite) -> str:
    parts = []
    for param in site.params:
        if param.name == "model":
            continue
        value = param.value
        if isinstance(value, (bool, int, float)) or (isinstance(value, str) and len(value) <= 16):
            parts.append(
                f"{param.name}={value!r}" if isinstance(value, str) else f"{param.name}={value}"
            )
        else:
            parts.append(param.name)
    if site.star_kwargs:
        parts.append("**…")
    return ", ".join(parts) or "-"


def _model_text(site: CallSite) -> str:
    model = site.model
    shown = model if isinstance(model, str) else ("(computed)" if site.target else "")
    if site.target:
        return f"{shown} → {site.target}" if shown else f"→ {site.target}"
    return shown or "-"


@dataclass
class _Row:
    where: str
    call: str
    params: str
    model: str
    status: str
    findings: list[Finding]


def _rows(state: _Run) -> list[_Row]:
    from ._migrate_scan import Finding

    rows: list[tuple[tuple[str, int], _Row]] = []
    for scan in state.scans:
        for site in scan.calls:
            call = f"{site.resource}()" if site.kind == "client" else site.resource
            rows.append(
                (
                    (scan.path, site.line),
                    _Row(
                        f"{site.path}:{site.line}",
                        call,
                        _params_text(site),
                        _model_text(site),
                        _status(site.findings),
                        site.findings,
                    ),
                )
            )
        for line, finding in scan.findings:
            where = f"{scan.path}:{line}" if line else scan.path  # 0: the whole file
            rows.append(
                (
                    (scan.path, line),
                    _Row(where, "(file)", "-", "-", _status([finding]), [finding]),
                )
            )
        if scan.error is not None:
            finding = Finding("blocks", f"not parsed, left untouched: {scan.error}")
            rows.append(
                ((scan.path, 0), _Row(scan.path, "(not parsed)", "-", "-", "blocks", [finding]))
            )
    return [row for _, row in sorted(rows, key=lambda item: item[0])]


def _print_report(state: _Run, args: argparse.Namespace, code: int) -> None:
    """The report on stdout: rich's table on a terminal (with rich installed), else plain
    aligned text (`_output`'s rule for every command)."""
    from ._output import rich_console

    rows = _rows(state)
    summary = _summary(state)
    console = rich_console(sys.stdout)
    if console is not None:
        _print_rich(console, state, rows, summary, args)
    else:
        _print_plain(state, rows, summary, args)


def _n(count: int, noun: str) -> str:
    """``1 file``, ``2 files``: a count with its noun."""
    if count == 1:
        return f"1 {noun}"
    return f"{count} {noun[:-1] + 'ies' if noun.endswith('y') else noun + 's'}"


def _summary_lines(state: _Run, summary: dict[str, Any], args: argparse.Namespace) -> list[str]:
    lines = [
        f"{_n(summary['files_scanned'], 'Python file')} scanned "
        f"({summary['files_using_openai']} import openai), "
        f"{_n(len(state.skipped), 'directory')} skipped; "
        f"{_n(summary['call_sites'], 'call site')}: {summary['ok']} ok, {summary['changes']} "
        f"with changes, {summary['blocks']} blocked.",
    ]
    if summary["not_analysed"]:
        lines.append(
            f"{_n(summary['not_analysed'], 'openai method')} referenced but not called where "
            "the scan can see the call: not analysed (see the notes)."
        )
    if state.links:
        lines.append(
            f"{_n(len(state.links), 'symlink')} not followed: "
            f"{', '.join(state.links)}; scan what they point to."
        )
    if summary["files_not_parsed"]:
        lines.append(
            f"{_n(summary['files_not_parsed'], 'file')} could not be parsed: left untouched."
        )
    if state.written:
        lines.append(f"{_n(len(state.written), 'file')} rewritten.")
    elif summary["files_to_rewrite"]:
        lines.append(
            f"{_n(summary['files_to_rewrite'], 'file')} to rewrite (the diff above); "
            "--write applies it."
        )
    if state.config_written:
        lines.append(f"Starter config written to {state.config_path}.")
        hint = _finding_hint(state.config_path)
        if hint:
            lines.append(hint)
    elif state.config_text is not None:
        lines.append("Starter config shown above; --config-out FILE (or --write) writes it.")
    lines.append(f"Judged against {state.judged_against}.")
    return lines


def _print_plain(
    state: _Run, rows: list[_Row], summary: dict[str, Any], args: argparse.Namespace
) -> None:
    write = sys.stdout.write
    write(f"llm-bridge migrate {args.path}\n\n")
    if rows:
        headers = ("where", "call", "parameters", "model → target", "status")
        cells = [(r.where, r.call, _cut(r.params, 48), r.model, r.status) for r in rows]
        widths = [min(max(len(h), *(len(c[i]) for c in cells)), 60) for i, h in enumerate(headers)]
        write("  ".join(h.ljust(w) for h, w in zip(headers, widths)).rstrip() + "\n")
        for row, cell in zip(rows, cells):
            write("  ".join(c.ljust(w) for c, w in zip(cell, widths)).rstrip() + "\n")
            for finding in row.findings:
                about = f"{finding.param}: " if finding.param else ""
                write(f"    {finding.severity}: {about}{finding.message}\n")
        write("\n")
    if not state.written:
        for scan in state.scans:
            if scan.rewritten is not None:
                write(_diff(scan))
        if summary["files_to_rewrite"]:
            write("\n")
    if state.config_text is not None and not state.config_written:
        write("# ---- starter config ----\n")
        write(state.config_text + "\n")
    for line in _summary_lines(state, summary, args):
        write(line + "\n")


def _print_rich(
    console: Any,
    state: _Run,
    rows: list[_Row],
    summary: dict[str, Any],
    args: argparse.Namespace,
) -> None:
    from rich.syntax import Syntax
    from rich.table import Table
    from rich.text import Text

    colours = {"blocks": "red", "changes": "yellow", "note": "cyan", "ok": "green"}
    console.print(Text(f"llm-bridge migrate {args.path}", style="bold"))
    if rows:
        table = Table(show_lines=True, expand=False)
        table.add_column("where", no_wrap=True)
        table.add_column("call", no_wrap=True)
        table.add_column("parameters", overflow="fold", max_width=40)
        table.add_column("model → target", overflow="fold", max_width=40)
        table.add_column("findings", overflow="fold", min_width=30)
        for row in rows:
            text = Text(row.status, style=colours[row.status])
            for finding in row.findings:
                about = f"{finding.param}: " if finding.param else ""
                text.append("\n")
                text.append(finding.severity, style=colours[finding.severity])
                text.append(f": {about}{finding.message}")
            table.add_row(row.where, row.call, row.params, row.model, text)
        console.print(table)
    if not state.written:
        diffs = "".join(_diff(scan) for scan in state.scans if scan.rewritten is not None)
        if diffs:
            console.print(Syntax(diffs, "diff", theme="ansi_dark", background_color="default"))
    if state.config_text is not None and not state.config_written:
        console.print(Text("starter config", style="bold"))
        console.print(
            Syntax(state.config_text, "toml", theme="ansi_dark", background_color="default")
        )
    for line in _summary_lines(state, summary, args):
        console.print(line)


def _finding_hint(path: Optional[Path]) -> Optional[str]:
    """How a program will find the config written to ``path``, when it would not on its
    own: the SDK reads ``$LLM_BRIDGE_CONFIG``, else ``./llm_bridge.toml`` in the working
    directory, never PATH's (``migrate src/ --write`` writes ``src/llm_bridge.toml``).
    None when a program run from here reads it already."""
    from .._config import CONFIG_ENV, DEFAULT_CONFIG_FILE

    if path is None:
        return None
    where = path.resolve()
    env = os.environ.get(CONFIG_ENV)
    if env:
        if Path(env).resolve() == where:
            return None
        return (
            f"${CONFIG_ENV} is set to {env}: the program reads that file, not this one; "
            f"set {CONFIG_ENV}={where} to use it."
        )
    if where == (Path.cwd() / DEFAULT_CONFIG_FILE).resolve():
        return None
    if where.name == DEFAULT_CONFIG_FILE:
        return (
            f"The program reads ./{DEFAULT_CONFIG_FILE} from its working directory or the file "
            f"${CONFIG_ENV} names: run the program from {where.parent}, or set "
            f"{CONFIG_ENV}={where}."
        )
    return (
        f"The program reads ./{DEFAULT_CONFIG_FILE} from its working directory or the file "
        f"${CONFIG_ENV} names: set {CONFIG_ENV}={where}."
    )


def _cut(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


if __name__ == "__main__":
    sys.exit(main())
