"""``llm-bridge migrate``: one Python file read with libcst, and rewritten if it should be.

`scan_source` parses a file (never executing it) and returns a `FileScan`: its openai
imports, every call of an openai method (``client.chat.completions.create(...)``,
``self.client.images.generate(...)``: any attribute chain ending in a method the installed
openai client has, in a file that imports openai or llm_bridge) with the parameters written
there, every client construction, the model names it mentions, and the rewritten source.

The rewrite changes imports, and nothing else it can avoid:

- ``from openai import OpenAI, AsyncOpenAI, X`` keeps ``X`` from openai and imports the
  clients from llm_bridge on a line of their own, right after (``as`` names, the import's
  parentheses, commas and comments kept; a moved name's comment goes with it);
- ``import openai`` with ``openai.OpenAI(...)`` constructions: those expressions become
  ``llm_bridge.OpenAI(...)`` and ``import llm_bridge`` is added after ``import openai``
  (unless a module-level one runs before it: one in a function does not bind it here).
  The rest of ``openai.`` (types, errors, helpers) is left alone: llm-bridge's clients and
  errors subclass openai's. ``import llm_bridge as openai`` was not chosen: it would make
  ``openai.NOT_GIVEN``, ``openai.pydantic_function_tool`` and the module's own client
  fail, and make the name lie;
- a client name stays openai's where a construction passes a keyword llm-bridge's
  constructor lacks (``workload_identity=``, openai's ``provider=bedrock(...)``): moving it
  would break the call; the file says so (``blocks``);
- imports under ``if TYPE_CHECKING:`` stay: annotations naming openai's classes accept
  llm-bridge's clients, which subclass them (its ``else:`` runs, and is rewritten);
- a file calling openai's module-level client (``openai.chat.completions.create(...)``)
  gets ``openai.http_client = llm_bridge.http_client()`` right after a top-level
  ``import openai`` (`_hook_module_client`): that client then sends through llm-bridge.

A method saved in a name (``completion = client.chat.completions.create``) is a call site
where the name is called (`_Methods`); a method passed on without a call the scan can see
is reported as a reference, its API judged, its parameters not.

libcst keeps every byte it is not asked to change: formatting, comments, encoding and
line endings.
"""

from __future__ import annotations

import ast
import dataclasses
import json
import re
from collections.abc import Collection, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Optional, Union

import libcst as cst
from libcst.metadata import CodeRange, MetadataWrapper, PositionProvider, ScopeProvider

if TYPE_CHECKING:
    from ._migrate_check import OpenAIApi

__all__ = [
    "OPENAI_MODEL",
    "UNKNOWN",
    "CallSite",
    "FileScan",
    "Finding",
    "ModelName",
    "Param",
    "scan_notebook",
    "scan_source",
    "settings_models",
]


class _Unknown:
    """A value the code computes: not known before it runs."""

    _instance: Optional[_Unknown] = None

    def __new__(cls) -> _Unknown:
        if cls._instance is None:
            cls._instance = super().__new__(cls)
        return cls._instance

    def __repr__(self) -> str:
        return "<computed>"


UNKNOWN: Any = _Unknown()

#: Names OpenAI gives its models (and the Azure-style deployments that reuse them): a string
#: of this shape found next to "model" is a model name even outside the call sites.
OPENAI_MODEL = re.compile(
    r"^(gpt-|chatgpt-|o\d(-|$)|text-embedding-|text-search-|text-similarity-|davinci|"
    r"babbage|whisper|tts-|dall-e|omni-moderation|text-moderation|computer-use|codex-|sora)",
    re.IGNORECASE,
)
_MODEL_VARIABLE = re.compile(r"model", re.IGNORECASE)
#: A quoted OpenAI model name anywhere in a file's bytes: the file is worth a full read
#: even without an openai import (``Agent(model="gpt-4o")`` in a framework's example).
_MODEL_HINT = re.compile(
    rb"""["'](gpt-|chatgpt-|o\d|text-embedding-|text-search-|text-similarity-|davinci|"""
    rb"babbage|whisper|tts-|dall-e|omni-moderation|text-moderation|computer-use|codex-|sora)",
    re.IGNORECASE,
)
#: What a model id looks like (``gpt-4o``, ``qwen/qwen3``, ``ft:gpt-4o:org::id``).
_MODEL_ID = re.compile(r"^[A-Za-z0-9][\w.:/@+-]*$")
#: Calls that read an environment variable and take a default: ``os.getenv("OPENAI_MODEL",
#: "gpt-4o")``. The default is the model the code asks for wherever the variable is unset
#: (production, CI), whatever a ``.env`` beside the code sets it to.
_ENV_READERS = frozenset(
    {
        "os.getenv",
        "getenv",
        "os.environ.get",
        "environ.get",
        "os.environ.setdefault",
        "environ.setdefault",
    }
)


@dataclass(frozen=True)
class Finding:
    """Something a migration should know: ``severity`` is ``blocks``, ``changes`` or
    ``note``; ``param`` names the parameter it is about, if one."""

    severity: str
    message: str
    param: Optional[str] = None


@dataclass(frozen=True)
class Param:
    """A keyword argument as written: its value where it is a literal (`UNKNOWN` in the
    parts the code computes), and its source text (shortened). ``origin`` says where a
    bare name the file imports comes from (module, relative level, name): ``from .config
    import MODEL`` gives ``("config", 1, "MODEL")``, which `migrate` reads in that file."""

    name: str
    value: Any
    code: str
    origin: Optional[tuple[str, int, str]] = None


@dataclass
class CallSite:
    """One call: of an openai method (``kind="api"``, ``resource`` such as
    ``chat.completions.create``) or of a client constructor (``kind="client"``,
    ``resource`` ``OpenAI`` / ``AsyncOpenAI``)."""

    path: str
    line: int
    column: int
    kind: str
    resource: str
    written: str
    params: list[Param]
    star_kwargs: bool = False
    module_client: bool = False
    #: For a module-level client call: ``"set"`` when the file already gives openai's
    #: module llm-bridge's HTTP client, ``"own"`` when it gives it a client of its own (the
    #: call stays openai's), ``"unknown"`` when it gives it one the scan cannot trace (a
    #: name imported or bound in several ways, an attribute), ``"added"`` when the rewrite
    #: adds that line, None when none of these (the call stays openai's).
    module_hook: Optional[str] = None
    #: The method is referenced (stored in a name never called here, or passed on), not
    #: called: where it is called, and with what, is not known.
    reference: bool = False
    target: Optional[str] = None
    findings: list[Finding] = field(default_factory=list)

    @property
    def model(self) -> Any:
        for param in self.params:
            if param.name == "model":
                return param.value
        return None


@dataclass(frozen=True)
class ModelName:
    """A model name the code mentions, where, and which API it was seen used with
    (``"chat"``, ``"embedding"``, ``"responses"`` or ``None``)."""

    name: str
    path: str
    line: int
    used_for: Optional[str] = None


@dataclass
class FileScan:
    """What `scan_source` found in one file; ``error`` is set (and nothing else) when the
    file could not be parsed."""

    path: str
    uses_openai: bool = False
    calls: list[CallSite] = field(default_factory=list)
    models: list[ModelName] = field(default_factory=list)
    findings: list[tuple[int, Finding]] = field(default_factory=list)
    #: The file's bytes, kept only when it is rewritten (for the diff).
    original: bytes = b""
    rewritten: Optional[bytes] = None
    encoding: str = "utf-8"
    error: Optional[str] = None


# --------------------------------------------------------------------------- literals


def literal(node: cst.BaseExpression) -> Any:
    """The Python value of a literal expression; `UNKNOWN` for what the code computes (in
    a list or dict, only the computed parts are `UNKNOWN`)."""
    if isinstance(node, (cst.SimpleString, cst.Integer, cst.Float, cst.Imaginary)):
        try:
            return ast.literal_eval(node.value)
        except (ValueError, SyntaxError):
            return UNKNOWN
    if isinstance(node, cst.ConcatenatedString):
        left, right = literal(node.left), literal(node.right)
        if isinstance(left, str) and isinstance(right, str):
            return left + right
        return UNKNOWN
    if isinstance(node, cst.Name):
        return {"True": True, "False": False, "None": None}.get(node.value, UNKNOWN)
    if isinstance(node, cst.UnaryOperation) and isinstance(node.operator, (cst.Minus, cst.Plus)):
        value = literal(node.expression)
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            return -value if isinstance(node.operator, cst.Minus) else value
        return UNKNOWN
    if isinstance(node, (cst.List, cst.Tuple, cst.Set)):
        items: list[Any] = []
        for element in node.elements:
            if not isinstance(element, cst.Element):
                return UNKNOWN  # a starred element: the length is not known
            items.append(literal(element.value))
        return items
    if isinstance(node, cst.Dict):
        out: dict[Any, Any] = {}
        for element in node.elements:
            if not isinstance(element, cst.DictElement):
                continue  # **other: the keys it adds are not known
            key = literal(element.key)
            if isinstance(key, (str, int)):
                out[key] = literal(element.value)
        return out
    return UNKNOWN


def _dotted(node: cst.BaseExpression) -> Optional[str]:
    """``a.b.c`` for a chain of names, else None."""
    if isinstance(node, cst.Name):
        return node.value
    if isinstance(node, cst.Attribute):
        head = _dotted(node.value)
        return f"{head}.{node.attr.value}" if head else None
    return None


def _chain(node: cst.BaseExpression) -> tuple[Optional[str], list[str]]:
    """The attribute names of ``root.a.b.c`` and the root's name (None for a call,
    subscript ...): ``self.client.chat.create`` -> ``("self", ["client", "chat", "create"])``."""
    names: list[str] = []
    while isinstance(node, cst.Attribute):
        names.append(node.attr.value)
        node = node.value
    names.reverse()
    return (node.value if isinstance(node, cst.Name) else None), names


def _is_env_read(node: cst.BaseExpression) -> bool:
    """Whether ``node`` reads an environment variable (``os.getenv(...)`` and the like)."""
    return isinstance(node, cst.Call) and _dotted(node.func) in _ENV_READERS


def _env_default(node: cst.BaseExpression) -> Optional[cst.BaseExpression]:
    """The default of an environment read (the ``"gpt-4o"`` of ``os.getenv("OPENAI_MODEL",
    "gpt-4o")``, ``os.environ.get(NAME, default=...)``), else None."""
    if not isinstance(node, cst.Call) or not _is_env_read(node):
        return None
    for arg in node.args:
        if arg.keyword is not None and arg.keyword.value == "default":
            return arg.value
    positional = [arg for arg in node.args if arg.keyword is None and not arg.star]
    return positional[1].value if len(positional) >= 2 else None


def _is_type_checking(test: cst.BaseExpression) -> bool:
    return _dotted(test) in ("TYPE_CHECKING", "typing.TYPE_CHECKING", "t.TYPE_CHECKING")


# --------------------------------------------------------------------------- imports


@dataclass
class _ImportedName:
    """``from openai import NAME as BOUND`` (one alias of one statement)."""

    name: str
    bound: str
    statement: cst.ImportFrom
    index: int
    type_checking: bool


class _Imports(cst.CSTVisitor):
    """Pass 1: what the file imports from openai (and whether it imports llm_bridge)."""

    def __init__(self) -> None:
        super().__init__()
        self.uses_openai = False
        self.uses_llm_bridge = False
        #: Import statements (ids) a module-level ``import llm_bridge`` runs before: what
        #: the rewrite adds after one of them may name llm_bridge without importing it.
        self.after_llm_bridge: set[int] = set()
        #: The callees, as written, whose call makes llm-bridge's HTTP client
        #: (``llm_bridge.http_client``, ``http_client`` imported from llm_bridge).
        self.http_clients: set[str] = set()
        self.modules: dict[str, list[cst.Import]] = {}  # bound name -> `import openai` stmts
        self.names: list[_ImportedName] = []
        self.azure: dict[str, cst.ImportFrom] = {}  # bound name of AzureOpenAI & co
        self.langchain: set[str] = set()  # bound names of langchain_openai's classes
        self.stars: list[cst.ImportFrom] = []
        #: Names imported from the codebase's (or any) other modules: bound name ->
        #: (module, relative level, name), for constants read from another file.
        self.from_names: dict[str, tuple[str, int, str]] = {}
        #: ``import pkg.config as cfg``: bound name -> module.
        self.module_names: dict[str, str] = {}
        self._type_checking = 0
        self._type_checking_bodies: set[int] = set()  # `if TYPE_CHECKING:` bodies (ids)
        self._top_level: set[int] = set()  # the module body's own small statements
        self._llm_bridge_imported = False  # a module-level `import llm_bridge` seen

    def visit_Module(self, node: cst.Module) -> None:
        self._top_level = {
            id(small)
            for statement in node.body
            if isinstance(statement, cst.SimpleStatementLine)
            for small in statement.body
        }

    def visit_If(self, node: cst.If) -> None:
        if _is_type_checking(node.test):
            # its body only: the `else:` is what runs
            self._type_checking_bodies.add(id(node.body))

    def on_visit(self, node: cst.CSTNode) -> bool:
        if id(node) in self._type_checking_bodies:
            self._type_checking += 1
        return super().on_visit(node)

    def on_leave(self, original_node: cst.CSTNode) -> None:
        super().on_leave(original_node)
        if id(original_node) in self._type_checking_bodies:
            self._type_checking -= 1

    def visit_Import(self, node: cst.Import) -> None:
        for alias in node.names:
            name = _dotted(alias.name) or ""
            top = name.split(".")[0]
            if top not in ("openai", "llm_bridge"):
                bound_as = _dotted(alias.asname.name) if alias.asname is not None else name
                self.module_names[bound_as or name] = name
            if top == "llm_bridge":
                self._llm_bridge_module(node, alias, name)
            if top != "openai":
                continue
            self.uses_openai = True
            if alias.asname is not None:
                if "." in name:
                    continue  # import openai.types as t: binds a submodule
                bound = _dotted(alias.asname.name) or "openai"
            else:
                bound = "openai"
            if not self._type_checking:
                self.modules.setdefault(bound, []).append(node)
        if self._llm_bridge_imported:
            self.after_llm_bridge.add(id(node))

    def _llm_bridge_module(self, node: cst.Import, alias: cst.ImportAlias, name: str) -> None:
        """Record ``import llm_bridge`` (``as lb``): the names its HTTP client factories
        are called by, and whether it binds ``llm_bridge`` for the whole module (a plain
        import in the module's own body; one in a function or under ``if TYPE_CHECKING:``
        does not, so the rewrite must add its own)."""
        self.uses_llm_bridge = True
        if self._type_checking:
            return
        bound = _dotted(alias.asname.name) if alias.asname is not None else "llm_bridge"
        if alias.asname is None or name == "llm_bridge":
            self.http_clients.update(f"{bound}.{factory}" for factory in _HTTP_CLIENTS)
        if alias.asname is None and id(node) in self._top_level:
            self._llm_bridge_imported = True

    def visit_ImportFrom(self, node: cst.ImportFrom) -> None:
        self._other_module(node)
        if node.relative or node.module is None:
            return
        module = _dotted(node.module) or ""
        top = module.split(".")[0]
        if top == "llm_bridge":
            self.uses_llm_bridge = True
            self._llm_bridge_names(node)
        if top == "langchain_openai" and not isinstance(node.names, cst.ImportStar):
            for alias in node.names:
                if (_dotted(alias.name) or "") in _LANGCHAIN:
                    bound = alias.asname.name if alias.asname is not None else alias.name
                    self.langchain.add(_dotted(bound) or "")
        if top != "openai":
            return
        self.uses_openai = True
        if isinstance(node.names, cst.ImportStar):
            if module == "openai":
                self.stars.append(node)
            return
        for index, alias in enumerate(node.names):
            name = _dotted(alias.name) or ""
            bound = _dotted(alias.asname.name) if alias.asname is not None else name
            bound = bound or name
            if name in _AZURE:
                self.azure[bound] = node
            elif module == "openai":
                self.names.append(_ImportedName(name, bound, node, index, self._type_checking > 0))

    def _llm_bridge_names(self, node: cst.ImportFrom) -> None:
        """Record ``from llm_bridge import http_client`` (``as NAME``): a call of it makes
        llm-bridge's HTTP client."""
        if self._type_checking or isinstance(node.names, cst.ImportStar):
            return
        for alias in node.names:
            if _dotted(alias.name) in _HTTP_CLIENTS:
                bound = alias.asname.name if alias.asname is not None else alias.name
                self.http_clients.add(_dotted(bound) or "")

    def _other_module(self, node: cst.ImportFrom) -> None:
        """Record ``from MODULE import NAME`` for a module other than openai's and ours."""
        module = _dotted(node.module) if node.module is not None else ""
        level = len(node.relative)
        if module is None or isinstance(node.names, cst.ImportStar):
            return
        if not level and module.split(".")[0] in ("openai", "llm_bridge", "langchain_openai"):
            return
        for alias in node.names:
            name = _dotted(alias.name) or ""
            bound = _dotted(alias.asname.name) if alias.asname is not None else name
            self.from_names[bound or name] = (module, level, name)


# --------------------------------------------------------------------------- saved methods


@dataclass
class _Bound:
    """A name bound to an openai method (``completion = client.chat.completions.create``)."""

    resource: str
    module_client: bool
    code: str
    node: cst.CSTNode
    used: bool = False


def method_of(
    node: cst.BaseExpression, api: OpenAIApi, modules: Mapping[str, Any]
) -> Optional[tuple[str, bool]]:
    """The openai method an attribute chain names (``client.images.generate`` ->
    ``images.generate``, wrappers skipped), and whether it is the openai module's own
    client's (``openai.images.generate``); None for anything else."""
    if not isinstance(node, cst.Attribute):
        return None
    root, names = _chain(node)
    resource = api.find([n for n in names if n not in _WRAPPERS])
    if resource is None:
        return None
    prefix = len(names) - len(resource.split(".")) - sum(n in _WRAPPERS for n in names)
    return resource, prefix == 0 and root in modules


_Scope = Union[cst.Module, cst.ClassDef, cst.FunctionDef]


class _Scoped(cst.CSTVisitor):
    """A visitor that knows the scopes around the node it visits: ``_scopes`` is the
    module, then each class body and function it is in, innermost last. Both passes need
    it, to see a name as Python would (`_Methods.lookup`); a subclass that keeps more per
    scope extends the ``visit_``/``leave_`` methods and calls these first."""

    def __init__(self) -> None:
        super().__init__()
        self._scopes: list[_Scope] = []

    def visit_Module(self, node: cst.Module) -> None:
        self._scopes.append(node)

    def leave_Module(self, original_node: cst.Module) -> None:
        self._scopes.pop()

    def visit_ClassDef(self, node: cst.ClassDef) -> None:
        self._scopes.append(node)

    def leave_ClassDef(self, original_node: cst.ClassDef) -> None:
        self._scopes.pop()

    def visit_FunctionDef(self, node: cst.FunctionDef) -> None:
        self._scopes.append(node)

    def leave_FunctionDef(self, original_node: cst.FunctionDef) -> None:
        self._scopes.pop()


class _Methods(_Scoped):
    """Pass 1b: openai methods used without being called where they are named.

    ``completion = client.chat.completions.create`` (shell_gpt does this) binds a name,
    in its scope: a module's name is seen by every function that does not bind it itself,
    a class body's as ``self.NAME``, ``self.gen = client.images.generate`` as ``self.gen``.
    `_Calls` turns a call of such a name into a call site. Any other use of a method
    (``partial(client.chat.completions.create, ...)``, a callback argument) is a
    reference: reported, its call not analysed."""

    def __init__(
        self, api: OpenAIApi, modules: Mapping[str, Any], http_clients: Collection[str]
    ) -> None:
        super().__init__()
        self.api = api
        self.modules = modules
        self.http_clients = http_clients  # what makes llm-bridge's HTTP client (`_Imports`)
        self.bindings: dict[int, dict[str, _Bound]] = {}  # id(scope) -> name -> method
        self.attributes: dict[str, _Bound] = {}  # "self.gen" -> method
        self.local: dict[int, set[str]] = {}  # id(scope) -> every name it binds
        self.references: list[tuple[cst.Attribute, str, bool]] = []
        #: Each VALUE of ``openai.http_client = VALUE`` in the file (`_hook_kind` says whose
        #: client it is).
        self.hooks: list[cst.BaseExpression] = []
        #: The value of each plain assignment ``NAME = VALUE`` (or ``NAME: T = VALUE``), by
        #: the id of its target ``NAME``: what a name set as ``openai.http_client`` holds.
        self.assigned: dict[int, cst.BaseExpression] = {}
        self._skip: set[int] = set()  # call targets and bound values: not references

    def visit_FunctionDef(self, node: cst.FunctionDef) -> None:
        super().visit_FunctionDef(node)
        names = self.local.setdefault(id(node), set())
        for param in (
            *node.params.params,
            *node.params.kwonly_params,
            *node.params.posonly_params,
        ):
            names.add(param.name.value)
        for star in (node.params.star_arg, node.params.star_kwarg):
            if isinstance(star, cst.Param):
                names.add(star.name.value)

    def visit_Call(self, node: cst.Call) -> None:
        self._skip.add(id(node.func))

    def visit_Assign(self, node: cst.Assign) -> None:
        for target in node.targets:
            self._bind(target.target, node.value)

    def visit_AnnAssign(self, node: cst.AnnAssign) -> None:
        if node.value is not None:
            self._bind(node.target, node.value)

    def _bind(self, target: cst.BaseExpression, value: cst.BaseExpression) -> None:
        scope = self._scopes[-1]
        dotted = _dotted(target)
        if (
            isinstance(target, cst.Attribute)
            and target.attr.value == "http_client"
            and isinstance(target.value, cst.Name)
            and target.value.value in self.modules
        ):
            self.hooks.append(value)
        if isinstance(target, cst.Name):
            self.local.setdefault(id(scope), set()).add(target.value)
            self.assigned[id(target)] = value
        found = method_of(value, self.api, self.modules)
        if found is None or dotted is None:
            return
        self._skip.add(id(value))
        bound = _Bound(found[0], found[1], " ".join(_code(value).split()), value)
        if isinstance(target, cst.Attribute):
            self.attributes[dotted] = bound
        elif isinstance(scope, cst.ClassDef):
            self.attributes[f"self.{dotted}"] = self.attributes[f"cls.{dotted}"] = bound
            self.bindings.setdefault(id(scope), {})[dotted] = bound
        else:
            self.bindings.setdefault(id(scope), {})[dotted] = bound

    def visit_Attribute(self, node: cst.Attribute) -> bool:
        if id(node) in self._skip:
            return False
        # an attribute of the method itself (a test's `....create.return_value = ...`):
        # the method is configured, not passed on to be called
        self._skip.add(id(node.value))
        found = method_of(node, self.api, self.modules)
        if found is None:
            return True
        self.references.append((node, found[0], found[1]))
        return False

    def lookup(self, func: cst.BaseExpression, scopes: list[_Scope]) -> Optional[_Bound]:
        """The method a called expression is bound to, seen from ``scopes`` (innermost
        last): a name bound in a function's own scope or an enclosing one (class bodies
        are not enclosing), unless a nearer function binds it to something else."""
        if isinstance(func, cst.Attribute):
            dotted = _dotted(func)
            return self.attributes.get(dotted) if dotted else None
        if not isinstance(func, cst.Name):
            return None
        for depth, scope in enumerate(reversed(scopes)):
            if isinstance(scope, cst.ClassDef) and depth > 0:
                continue
            bound = self.bindings.get(id(scope), {}).get(func.value)
            if bound is not None:
                return bound
            if func.value in self.local.get(id(scope), set()):
                return None  # a local of another meaning
        return None


def _hook_kind(
    value: cst.BaseExpression,
    methods: _Methods,
    scopes: Mapping[cst.CSTNode, Any],
    seen: frozenset[int] = frozenset(),
) -> str:
    """Whose client ``openai.http_client = VALUE`` gives openai's module: ``"set"`` for
    llm-bridge's (a call of ``llm_bridge.http_client``/``async_http_client``, under any
    name the file imports them by), ``"own"`` for one known not to be (a call of anything
    else, such as ``httpx.Client(...)``; ``None``; the factory itself, not called),
    ``"unknown"`` when the file does not say. A name is followed to what it is bound to
    where it is read (``scopes``, libcst's `ScopeProvider`): every binding must be a plain
    assignment, and all of one kind, for the name to be of that kind (an import, a loop,
    a parameter or two assignments that disagree leave it unknown)."""
    if isinstance(value, cst.Call):
        return "set" if _dotted(value.func) in methods.http_clients else "own"
    dotted = _dotted(value)
    factories = {f"llm_bridge.{factory}" for factory in _HTTP_CLIENTS}
    if dotted == "None" or dotted in methods.http_clients or dotted in factories:
        return "own"
    if not isinstance(value, cst.Name) or id(value) in seen:
        return "unknown"
    scope = scopes.get(value)
    assignments = list(scope[value.value]) if scope is not None else []
    kinds = {
        _hook_kind(methods.assigned[id(a.node)], methods, scopes, seen | {id(value)})
        if id(a.node) in methods.assigned
        else "unknown"
        for a in assignments
    }
    return kinds.pop() if len(kinds) == 1 else "unknown"


def _code(node: cst.CSTNode) -> str:
    return cst.Module(body=[]).code_for_node(node)


# --------------------------------------------------------------------------- calls


class _Calls(_Scoped):
    """Pass 2: call sites, constructions and model names."""

    def __init__(
        self,
        path: str,
        module: cst.Module,
        positions: Mapping[cst.CSTNode, CodeRange],
        imports: _Imports,
        api: OpenAIApi,
        clients: dict[str, str],
        methods: Optional[_Methods] = None,
    ) -> None:
        super().__init__()
        self.methods = methods
        self.path = path
        self.module = module
        self.positions = positions
        self.imports = imports
        self.api = api
        self.clients = clients  # bound name -> OpenAI / AsyncOpenAI
        self.look = imports.uses_openai or imports.uses_llm_bridge
        self.calls: list[CallSite] = []
        self.call_nodes: list[cst.Call] = []
        self.constructions: list[tuple[CallSite, cst.Call, Optional[str]]] = []
        self.azure_calls: list[int] = []
        self.file_findings: list[tuple[int, Finding]] = []
        self.models: list[ModelName] = []
        self._dicts: list[dict[str, list[cst.DictElement]]] = [{}]
        self._constants: list[dict[str, Any]] = [{}]
        #: Defaults of environment reads already taken as model names (in a model position).
        self._env_defaults: set[cst.BaseExpression] = set()
        #: Expressions (ids) where a client class makes no client: the class called (a
        #: construction) or read from (``openai.OpenAI.close``) ...
        self._not_passed_on: set[int] = set()
        #: ... and whole subtrees: an ``isinstance`` check, a ``cast``, a mock's target
        #: (`_no_client_arguments`); annotations and subscripts are too, by their type.
        self._no_client: set[int] = set()
        self._no_client_depth = 0

    def _value(self, node: cst.BaseExpression) -> Any:
        """`literal`, and a bare name bound to a literal in this scope or the module's
        (``model=EMBEDDING_MODEL`` with ``EMBEDDING_MODEL = "text-embedding-3-large"``)."""
        value = literal(node)
        if value is UNKNOWN and isinstance(node, cst.Name):
            for scope in reversed(self._constants):
                if node.value in scope:
                    return scope[node.value]
        return value

    def _position(self, node: cst.CSTNode) -> tuple[int, int]:
        start = self.positions[node].start
        return start.line, start.column + 1

    def _code(self, node: cst.CSTNode, limit: int = 60) -> str:
        text = " ".join(self.module.code_for_node(node).split())
        return text if len(text) <= limit else text[: limit - 1] + "…"

    # a function's own dicts and constants, for `params = {...}; create(**params)`
    def visit_FunctionDef(self, node: cst.FunctionDef) -> None:
        super().visit_FunctionDef(node)
        self._dicts.append({})
        self._constants.append({})
        for param in (*node.params.params, *node.params.kwonly_params):
            if param.default is not None and _MODEL_VARIABLE.search(param.name.value):
                self._model_string(param.default, openai_looking=True)

    def leave_FunctionDef(self, original_node: cst.FunctionDef) -> None:
        super().leave_FunctionDef(original_node)
        self._dicts.pop()
        self._constants.pop()

    def visit_Assign(self, node: cst.Assign) -> None:
        for target in node.targets:
            name = _dotted(target.target)
            if isinstance(target.target, cst.Name):
                value = literal(node.value)
                if isinstance(value, (str, int, float, bool)):
                    self._constants[-1][target.target.value] = value
                else:
                    self._constants[-1].pop(target.target.value, None)
            if isinstance(target.target, cst.Name) and isinstance(node.value, cst.Dict):
                self._dicts[-1][target.target.value] = [
                    e for e in node.value.elements if isinstance(e, cst.DictElement)
                ]
            elif isinstance(target.target, cst.Subscript):
                self._subscript_assignment(target.target, node.value)
            if name and _MODEL_VARIABLE.search(name.split(".")[-1]):
                self._model_string(node.value, openai_looking=True)

    def visit_AnnAssign(self, node: cst.AnnAssign) -> None:
        name = _dotted(node.target)
        if node.value is not None and name and _MODEL_VARIABLE.search(name.split(".")[-1]):
            self._model_string(node.value, openai_looking=True)

    def _subscript_assignment(self, target: cst.Subscript, value: cst.BaseExpression) -> None:
        """``params["tools"] = ...`` adds a key to a dict literal seen in this scope."""
        if not isinstance(target.value, cst.Name) or len(target.slice) != 1:
            return
        entries = self._dicts[-1].get(target.value.value)
        index = target.slice[0].slice
        if entries is None or not isinstance(index, cst.Index):
            return
        entries.append(cst.DictElement(key=index.value, value=value))

    def visit_DictElement(self, node: cst.DictElement) -> None:
        if literal(node.key) == "model":
            self._model_string(node.value, openai_looking=not self.look)

    def _model_string(
        self, node: cst.BaseExpression, *, openai_looking: bool, used_for: Optional[str] = None
    ) -> None:
        if isinstance(node, cst.BooleanOperation) and isinstance(node.operator, cst.Or):
            # os.getenv("OPENAI_MODEL") or "gpt-4o": either side may be the model
            self._env_defaults.add(node.right)
            for side in (node.left, node.right):
                self._model_string(side, openai_looking=openai_looking, used_for=used_for)
            return
        default = _env_default(node)
        if default is not None:  # model=os.getenv("OPENAI_MODEL", "gpt-4o")
            self._env_defaults.add(default)
            self._model_string(default, openai_looking=openai_looking, used_for=used_for)
            return
        value = self._value(node)
        if not isinstance(value, str) or not value.strip() or len(value) > 100:
            return
        if (openai_looking or not self.look) and not OPENAI_MODEL.match(value):
            return
        if not _MODEL_ID.match(value):
            return
        self.models.append(ModelName(value, self.path, self._position(node)[0], used_for))

    def visit_BooleanOperation(self, node: cst.BooleanOperation) -> None:
        if (
            isinstance(node.operator, cst.Or)
            and _is_env_read(node.left)
            and node.right not in self._env_defaults
        ):
            # os.getenv("REASONER") or "o3-mini" outside a model position: the fallback
            self._env_defaults.add(node.right)
            self._model_string(node.right, openai_looking=True)

    def visit_Call(self, node: cst.Call) -> None:
        self._no_client_arguments(node)
        default = _env_default(node)
        if default is not None and default not in self._env_defaults:
            # an environment read's default outside a model position (a settings class,
            # a helper's argument): a model name only if it looks like OpenAI's
            self._env_defaults.add(default)
            self._model_string(default, openai_looking=True)
        root, names = _chain(node.func)
        # model= anywhere (Agent(model="gpt-4o"), create(model=...), a helper's model=)
        resource = self._resource(names) if self.look else None
        bound = None
        if resource is None and self.look and self.methods is not None:
            bound = self.methods.lookup(node.func, self._scopes)
            if bound is not None:
                resource = bound.resource
        used_for = _api_kind(resource) if resource else None
        for arg in node.args:
            if arg.keyword is not None and arg.keyword.value == "model":
                self._model_string(arg.value, openai_looking=not self.look, used_for=used_for)
        if self._is_azure(node, root, names):
            self.azure_calls.append(self._position(node)[0])
        if isinstance(node.func, cst.Name) and node.func.value in self.imports.langchain:
            self._langchain(node, node.func.value)
        if not self.look:
            return
        client = self._client_construction(node, root, names)
        if client is not None:
            site, via_module = client
            self.constructions.append((site, node, via_module))
            self.calls.append(site)
            return
        if resource is None:
            return
        line, column = self._position(node)
        params, star = self._params(node)
        # a resource method called on the openai module itself: openai's module-level client
        prefix = len(names) - len(resource.split(".")) - sum(n in _WRAPPERS for n in names)
        module_client = prefix == 0 and root in self.imports.modules
        written = self._code(node.func, 80)
        bound_line = 0
        if bound is not None:
            bound.used = True
            module_client = bound.module_client
            bound_line = self._position(bound.node)[0]
            written = f"{written} (= {_cut(bound.code, 60)})"
        site = CallSite(
            self.path,
            line,
            column,
            "api",
            resource,
            written,
            params,
            star_kwargs=star,
            module_client=module_client,
        )
        if bound is not None:
            site.findings.append(
                Finding(
                    "note",
                    f"called through a saved method: {self._code(node.func)} = {bound.code} "
                    f"(line {bound_line})",
                )
            )
        self.calls.append(site)

    def visit_Attribute(self, node: cst.Attribute) -> None:
        """``openai.OpenAI`` used but not called (``Factory = openai.OpenAI``, in a dict,
        returned, a default, an argument, a base class): the import rewrite cannot follow
        it, so the clients made from it would stay openai's. Reported as blocking, with
        the fix. The uses that make no client are left alone: the class called (a
        construction, reported as one) or read from, and the places `_no_client_here`
        names."""
        self._not_passed_on.add(id(node.value))  # `openai.OpenAI.close`: read from
        if not (
            self.look
            and id(node) not in self._not_passed_on
            and not self._no_client_depth
            and isinstance(node.value, cst.Name)
            and node.value.value in self.imports.modules
        ):
            return
        from ._migrate_check import CLIENT_NAMES

        if node.attr.value not in CLIENT_NAMES:
            return
        written = self._code(node)
        self.file_findings.append(
            (
                self._position(node)[0],
                Finding(
                    "blocks",
                    f"{written} is used here but not called (stored, passed on, returned or "
                    "subclassed), so the clients made from it stay openai's: write "
                    f"llm_bridge.{node.attr.value} here (and import llm_bridge)",
                ),
            )
        )

    def _no_client_arguments(self, node: cst.Call) -> None:
        """Mark what a client class in this call makes no client through: the called
        class itself; ``isinstance``/``issubclass``'s second argument; every argument of
        ``cast``, ``TypeVar``, ``setattr``, ``hasattr``, ``inspect.signature``, a mock's
        ``patch``/``patch.object`` and ``create_autospec``; ``getattr``'s object (not its
        default, which it may return); a mock's ``spec=``/``spec_set=``; the class a
        ``.register(...)`` call registers (``functools.singledispatch``'s, an ABC's: its
        first argument; a registry's ``register("name", Class)`` passes it on)."""
        self._not_passed_on.add(id(node.func))
        parts = (_dotted(node.func) or "").split(".")
        positional = [arg for arg in node.args if arg.keyword is None and not arg.star]
        arguments = [
            arg
            for arg in node.args
            if arg.keyword is not None and arg.keyword.value in ("spec", "spec_set")
        ]
        if parts[-1] in ("isinstance", "issubclass"):
            arguments += node.args[1:2]
        elif parts[-1] in _INSPECTING or "patch" in parts:
            arguments += node.args
        elif parts[-1] == "getattr" or (parts[-1] == "register" and len(parts) > 1):
            arguments += positional[:1]  # the object read from; the class registered
        self._no_client.update(id(argument.value) for argument in arguments)

    def visit_Comparison(self, node: cst.Comparison) -> None:
        """A client class compared (``type(x) is openai.OpenAI``) makes no client."""
        for operand in (node.left, *(target.comparator for target in node.comparisons)):
            if _dotted(operand) is not None:
                self._no_client.add(id(operand))

    def _no_client_here(self, node: cst.CSTNode) -> bool:
        """Whether a client class anywhere in ``node`` makes no client: an annotation, a
        subscript's index (``Optional[openai.OpenAI]``), an argument
        `_no_client_arguments` marked."""
        return isinstance(node, (cst.Annotation, cst.SubscriptElement)) or (
            id(node) in self._no_client
        )

    def on_visit(self, node: cst.CSTNode) -> bool:
        if self._no_client_here(node):
            self._no_client_depth += 1
        return super().on_visit(node)

    def on_leave(self, original_node: cst.CSTNode) -> None:
        super().on_leave(original_node)
        if self._no_client_here(original_node):
            self._no_client_depth -= 1

    def _langchain(self, node: cst.Call, name: str) -> None:
        """``ChatOpenAI(...)`` from langchain_openai builds openai's own client, which the
        import rewrite cannot reach: unless it is given llm-bridge's HTTP client, its
        requests still go to OpenAI. Said once per construction, with the fix."""
        given = {arg.keyword.value for arg in node.args if arg.keyword is not None}
        if given & {"http_client", "http_async_client", "client", "async_client"}:
            return
        line = self._position(node)[0]
        self.file_findings.append(
            (
                line,
                Finding(
                    "changes",
                    f"langchain's {name}(...) makes its own openai client, which still "
                    "calls OpenAI: pass http_client=llm_bridge.http_client() and "
                    "http_async_client=llm_bridge.async_http_client() (the model name is "
                    "then routed by the config's aliases)",
                ),
            )
        )

    def _is_azure(self, node: cst.Call, root: Optional[str], names: list[str]) -> bool:
        """Whether ``node`` builds an Azure client: ``AzureOpenAI(...)`` imported from
        openai, or ``openai.AzureOpenAI(...)`` through the module (both stay openai's)."""
        if isinstance(node.func, cst.Name):
            return node.func.value in self.imports.azure
        return len(names) == 1 and root in self.imports.modules and names[0] in _AZURE

    def _resource(self, names: list[str]) -> Optional[str]:
        """The openai method a chain of attributes ends in (wrappers such as
        ``with_raw_response`` skipped), if it ends in one."""
        return self.api.find([n for n in names if n not in _WRAPPERS])

    def _client_construction(
        self, node: cst.Call, root: Optional[str], names: list[str]
    ) -> Optional[tuple[CallSite, Optional[str]]]:
        """``OpenAI(...)`` (an imported client name) or ``openai.OpenAI(...)``."""
        from ._migrate_check import CLIENT_NAMES

        if isinstance(node.func, cst.Name) and node.func.value in self.clients:
            kind, via = self.clients[node.func.value], None
        elif len(names) == 1 and root in self.imports.modules and names[0] in CLIENT_NAMES:
            kind, via = names[0], root
        else:
            return None
        line, column = self._position(node)
        params, star = self._params(node)
        site = CallSite(
            self.path,
            line,
            column,
            "client",
            kind,
            self._code(node.func),
            params,
            star_kwargs=star,
        )
        return site, via

    def _origin(self, node: cst.BaseExpression) -> Optional[tuple[str, int, str]]:
        """Where an imported name comes from: ``MODEL`` after ``from .config import
        MODEL``, ``cfg.MODEL`` after ``import pkg.config as cfg`` (not a name this file
        binds itself: a function's own ``MODEL`` is another value)."""
        if isinstance(node, cst.Name):
            if any(node.value in scope for scope in self._constants[1:]):
                return None
            return self.imports.from_names.get(node.value)
        dotted = _dotted(node)
        if dotted is None or "." not in dotted:
            return None
        module, _, name = dotted.rpartition(".")
        if module in self.imports.module_names:
            return (self.imports.module_names[module], 0, name)
        head, _, rest = module.partition(".")
        if head in self.imports.from_names and not rest:
            source, level, imported = self.imports.from_names[head]  # from pkg import config
            return (f"{source}.{imported}" if source else imported, level, name)
        return None

    def _params(self, node: cst.Call) -> tuple[list[Param], bool]:
        params: list[Param] = []
        star = False
        for arg in node.args:
            if arg.keyword is not None:
                value = self._value(arg.value)
                origin = self._origin(arg.value) if value is UNKNOWN else None
                params.append(Param(arg.keyword.value, value, self._code(arg.value), origin))
            elif arg.star == "**":
                entries = (
                    self._dicts[-1].get(arg.value.value)
                    if isinstance(arg.value, cst.Name)
                    else None
                )
                if entries is None:
                    star = True
                    continue
                for entry in entries:
                    key = literal(entry.key)
                    if isinstance(key, str):
                        params.append(Param(key, self._value(entry.value), self._code(entry.value)))
        return params, star


def _cut(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


_WRAPPERS = frozenset({"with_raw_response", "with_streaming_response"})
#: langchain_openai's classes that build an openai client of their own.
_LANGCHAIN = frozenset({"ChatOpenAI", "OpenAIEmbeddings", "OpenAI"})
#: openai's Azure clients: llm-bridge has none, so they stay openai's (and block).
_AZURE = frozenset({"AzureOpenAI", "AsyncAzureOpenAI"})
#: Functions whose every argument a client class makes no client through: it is checked,
#: inspected or mocked (`_Calls._no_client_arguments`).
_INSPECTING = frozenset({"cast", "TypeVar", "setattr", "hasattr", "signature", "create_autospec"})
#: llm_bridge's functions making the HTTP client that sends through it: set as openai's
#: module-level ``http_client``, the module's calls go through llm-bridge.
_HTTP_CLIENTS = frozenset({"http_client", "async_http_client"})


def _api_kind(resource: str) -> Optional[str]:
    if resource.endswith(
        ("chat.completions.create", "chat.completions.parse", "chat.completions.stream")
    ):
        return "chat"
    if resource == "embeddings.create":
        return "embedding"
    if resource.startswith(("responses.", "beta.responses.")) and resource.endswith(
        ("create", "parse", "stream")
    ):
        return "responses"
    return None


# --------------------------------------------------------------------------- rewriting


@dataclass
class _Plan:
    """What to change: aliases to move per ``from openai import`` statement, constructor
    calls to repoint, and ``import openai`` statements to follow with ``import llm_bridge``."""

    moves: dict[int, set[int]] = field(default_factory=dict)  # id(ImportFrom) -> indexes
    calls: set[int] = field(default_factory=set)  # id(Call)
    follow: set[int] = field(default_factory=set)  # id(Import)
    #: id(Import) -> the bound module name: follow it with
    #: ``NAME.http_client = llm_bridge.http_client()``.
    hooks: dict[int, str] = field(default_factory=dict)

    def __bool__(self) -> bool:
        return bool(self.moves or self.calls or self.follow or self.hooks)

    def import_llm_bridge_after(self, statement: cst.Import, imports: _Imports) -> None:
        """Follow ``statement`` with ``import llm_bridge``, for what the rewrite writes
        after it, unless a module-level ``import llm_bridge`` already ran before it."""
        if id(statement) not in imports.after_llm_bridge:
            self.follow.add(id(statement))


class _Rewriter(cst.CSTTransformer):
    def __init__(self, plan: _Plan) -> None:
        super().__init__()
        self.plan = plan
        self._after: dict[int, list[cst.BaseSmallStatement]] = {}
        self._comments: dict[int, Optional[str]] = {}

    def leave_ImportFrom(
        self, original_node: cst.ImportFrom, updated_node: cst.ImportFrom
    ) -> Union[cst.ImportFrom, cst.RemovalSentinel]:
        moving = self.plan.moves.get(id(original_node))
        if not moving or isinstance(updated_node.names, cst.ImportStar):
            return updated_node
        names = list(updated_node.names)
        if len(moving) == len(names):
            return updated_node.with_changes(module=cst.Name("llm_bridge"))
        moved = [names[i] for i in sorted(moving)]
        kept = [alias for i, alias in enumerate(names) if i not in moving]
        last_removed = (len(names) - 1) in moving
        if updated_node.lpar is None:
            kept[-1] = kept[-1].with_changes(comma=cst.MaybeSentinel.DEFAULT)
        elif last_removed:
            kept[-1] = kept[-1].with_changes(comma=_join_comma(kept[-1].comma, names[-1].comma))
        new = cst.ImportFrom(
            module=cst.Name("llm_bridge"),
            names=[
                cst.ImportAlias(
                    name=alias.name,
                    asname=(
                        cst.AsName(name=alias.asname.name) if alias.asname is not None else None
                    ),
                )
                for alias in moved
            ],
        )
        self._after[id(original_node)] = [new]
        comments = [c.value for alias in moved for c in _comments(alias)]
        self._comments[id(original_node)] = "  ".join(comments) if comments else None
        return updated_node.with_changes(names=kept)

    def leave_Import(self, original_node: cst.Import, updated_node: cst.Import) -> cst.Import:
        added: list[cst.BaseSmallStatement] = []
        hook = self.plan.hooks.get(id(original_node))
        if id(original_node) in self.plan.follow:
            added.append(cst.Import(names=[cst.ImportAlias(name=cst.Name("llm_bridge"))]))
        if hook is not None:
            added.append(
                cst.Assign(
                    targets=[
                        cst.AssignTarget(
                            target=cst.Attribute(value=cst.Name(hook), attr=cst.Name("http_client"))
                        )
                    ],
                    value=cst.Call(
                        func=cst.Attribute(
                            value=cst.Name("llm_bridge"), attr=cst.Name("http_client")
                        )
                    ),
                )
            )
        if added:
            self._after[id(original_node)] = added
        return updated_node

    def leave_Call(self, original_node: cst.Call, updated_node: cst.Call) -> cst.Call:
        if id(original_node) in self.plan.calls and isinstance(updated_node.func, cst.Attribute):
            func = updated_node.func.with_changes(value=cst.Name("llm_bridge"))
            return updated_node.with_changes(func=func)
        return updated_node

    def leave_SimpleStatementLine(
        self, original_node: cst.SimpleStatementLine, updated_node: cst.SimpleStatementLine
    ) -> Union[cst.BaseStatement, cst.FlattenSentinel[cst.BaseStatement]]:
        """The line, and after each of its statements what that one needs added (the import
        of ``llm_bridge`` after an ``import openai``): a line of several statements
        (``import openai; c = openai.OpenAI()``) is split where something is added, so
        that the statements after it see it."""
        lines: list[cst.BaseStatement] = []
        segment: list[cst.BaseSmallStatement] = []
        for original, updated in zip(original_node.body, updated_node.body):
            segment.append(updated)
            added = self._after.pop(id(original), [])
            if not added:
                continue
            lines.append(_line(updated_node, segment, first=not lines))
            segment = []
            comment = self._comments.pop(id(original), None)
            trailing = (
                cst.TrailingWhitespace(
                    whitespace=cst.SimpleWhitespace("  "), comment=cst.Comment(comment)
                )
                if comment
                else cst.TrailingWhitespace()
            )
            lines.extend(
                cst.SimpleStatementLine(body=[statement], trailing_whitespace=trailing)
                for statement in added
            )
        if not lines:
            return updated_node
        if segment:
            lines.append(_line(updated_node, segment, first=False))
        return cst.FlattenSentinel(lines)

    def leave_SimpleStatementSuite(
        self, original_node: cst.SimpleStatementSuite, updated_node: cst.SimpleStatementSuite
    ) -> cst.SimpleStatementSuite:
        body: list[cst.BaseSmallStatement] = []
        for original, updated in zip(original_node.body, updated_node.body):
            body.append(updated)
            body.extend(self._after.pop(id(original), []))
        if len(body) == len(updated_node.body):
            return updated_node
        return updated_node.with_changes(body=body)


def _comments(node: cst.CSTNode) -> list[cst.Comment]:
    found: list[cst.Comment] = []

    class _Find(cst.CSTVisitor):
        def visit_Comment(self, node: cst.Comment) -> None:
            found.append(node)

    node.visit(_Find())
    return found


def _join_comma(
    keep: Union[cst.Comma, cst.MaybeSentinel], last: Union[cst.Comma, cst.MaybeSentinel]
) -> Union[cst.Comma, cst.MaybeSentinel]:
    """The comma for the new last name of a parenthesised import: the old last name's (so
    the closing parenthesis keeps its line and indentation), keeping the comment that
    followed this name's own comma."""
    if not isinstance(last, cst.Comma):
        return cst.MaybeSentinel.DEFAULT
    if not isinstance(keep, cst.Comma):
        return last
    mine, theirs = keep.whitespace_after, last.whitespace_after
    if isinstance(mine, cst.ParenthesizedWhitespace) and isinstance(
        theirs, cst.ParenthesizedWhitespace
    ):
        return last.with_changes(whitespace_after=theirs.with_changes(first_line=mine.first_line))
    return last


# --------------------------------------------------------------------------- a file


def scan_source(path: str, source: bytes, api: OpenAIApi) -> FileScan:
    """Read one file's source (bytes, as on disk); ``api`` is the installed openai
    client's (`openai_api`), which says what a call site's method is."""
    from ._migrate_check import CLIENT_NAMES, client_parameters

    scan = FileScan(path)
    if not _worth_parsing(source):
        return scan  # nothing to find; libcst takes minutes on a generated data module
    try:
        module = cst.parse_module(source)
    except cst.ParserSyntaxError as error:
        scan.error = _syntax_error(source) or (
            f"line {error.raw_line}, column {error.raw_column}: {error.message} (libcst)"
        )
        return scan
    except Exception as error:  # an undecodable file, an unknown encoding declaration
        scan.error = f"{type(error).__name__}: {error}"
        return scan
    scan.encoding = module.encoding
    imports = _Imports()
    module.visit(imports)
    scan.uses_openai = imports.uses_openai
    if not (
        imports.uses_openai
        or imports.uses_llm_bridge
        or imports.langchain
        or _MODEL_HINT.search(source)
    ):
        return scan  # nothing to find: no openai, no OpenAI model name
    wrapper = MetadataWrapper(module, unsafe_skip_copy=True)
    positions = wrapper.resolve(PositionProvider)
    clients = {
        imported.bound: imported.name
        for imported in imports.names
        if imported.name in CLIENT_NAMES and not imported.type_checking
    }
    methods = _Methods(api, imports.modules, imports.http_clients)
    if imports.uses_openai or imports.uses_llm_bridge:
        module.visit(methods)
    calls = _Calls(path, module, positions, imports, api, clients, methods)
    module.visit(calls)
    scan.calls = calls.calls + _references(path, methods, positions)
    scan.calls.sort(key=lambda site: (site.line, site.column))
    scan.models = calls.models
    star = Finding("blocks", "from openai import * is not rewritten: import the clients by name")
    azure = Finding(
        "blocks",
        "Azure OpenAI clients stay openai's: llm-bridge has none; make an OpenAI() from "
        "llm_bridge for the traffic that moves",
    )
    scan.findings += [(positions[node].start.line, star) for node in imports.stars]
    azure_lines = calls.azure_calls or [positions[n].start.line for n in imports.azure.values()]
    scan.findings += [(line, azure) for line in sorted(set(azure_lines))]
    scan.findings += calls.file_findings

    parameters = client_parameters()
    plan = _Plan()
    blocked: set[str] = set()
    for site, node, via in calls.constructions:
        problem = _incompatible(site, parameters[site.resource])
        if problem:
            site.findings.append(Finding("blocks", problem))
            if via is None:
                blocked.add(node.func.value if isinstance(node.func, cst.Name) else "")
        elif via is not None:
            plan.calls.add(id(node))
            for statement in imports.modules.get(via, []):
                plan.import_llm_bridge_after(statement, imports)
    for imported in imports.names:
        if imported.name not in CLIENT_NAMES or imported.type_checking:
            continue
        if imported.bound in blocked:
            continue
        plan.moves.setdefault(id(imported.statement), set()).add(imported.index)
    _hook_module_client(scan, wrapper, imports, methods, plan)
    if plan:
        rewritten = module.visit(_Rewriter(plan)).bytes
        if rewritten != source:  # the bytes are kept for the diff only: a tree can be large
            scan.original, scan.rewritten = source, rewritten
    return scan


def _references(
    path: str, methods: _Methods, positions: Mapping[cst.CSTNode, CodeRange]
) -> list[CallSite]:
    """A call site for each openai method named but not called here: a saved method no
    call of which was found, a method passed on (``partial(client.images.generate)``). Its
    API is judged (an images method still blocks); its parameters cannot be."""
    found: list[tuple[cst.CSTNode, str, bool, str]] = []
    for scope in methods.bindings.values():
        for bound in scope.values():
            if not bound.used:
                found.append((bound.node, bound.resource, bound.module_client, bound.code))
    for bound in methods.attributes.values():
        if not bound.used and all(bound.node is not node for node, *_ in found):
            found.append((bound.node, bound.resource, bound.module_client, bound.code))
    for node, resource, module_client in methods.references:
        found.append((node, resource, module_client, " ".join(_code(node).split())))
    sites = []
    for node, resource, module_client, code in found:
        start = positions[node].start
        sites.append(
            CallSite(
                path,
                start.line,
                start.column + 1,
                "api",
                resource,
                _cut(code, 80),
                [],
                module_client=module_client,
                reference=True,
            )
        )
    return sites


def _hook_module_client(
    scan: FileScan, wrapper: MetadataWrapper, imports: _Imports, methods: _Methods, plan: _Plan
) -> None:
    """Calls through openai's module-level client (``openai.chat.completions.create``)
    go through llm-bridge once ``openai.http_client = llm_bridge.http_client()`` runs
    before the first of them (openai builds that client on first use, with the module's
    ``http_client``). The file already sets it: the calls are marked ``set``, ``own``
    where it sets a client known not to be llm-bridge's (its calls still go to OpenAI), or
    ``unknown`` where the file does not say whose client it sets (`_hook_kind`). Else, when
    ``import openai`` is a statement of the module's own body (not in a function, a
    ``try`` or an ``if``), the rewrite adds the line right after it (``added``); otherwise
    the call stays openai's and the finding says what line to add."""
    sites = [site for site in scan.calls if site.module_client]
    if not sites:
        return
    if methods.hooks:  # the file sets openai.http_client itself: to llm-bridge's or its own
        # libcst's scopes, only for a name set there (they cost a pass of their own)
        scopes: Mapping[cst.CSTNode, Any] = {}
        if any(isinstance(value, cst.Name) for value in methods.hooks):
            try:
                scopes = wrapper.resolve(ScopeProvider)
            except Exception:  # libcst could not tell the scopes: every name is unknown
                scopes = {}
        kinds = {_hook_kind(value, methods, scopes) for value in methods.hooks}
        hook = "own" if "own" in kinds else "unknown" if "unknown" in kinds else "set"
        for site in sites:
            site.module_hook = hook
        return
    for statement in wrapper.module.body:
        if not isinstance(statement, cst.SimpleStatementLine):
            continue
        for small in statement.body:
            if not isinstance(small, cst.Import):
                continue
            for bound, nodes in imports.modules.items():
                if any(node is small for node in nodes):
                    plan.hooks[id(small)] = bound
                    plan.import_llm_bridge_after(small, imports)
                    for site in sites:
                        site.module_hook = "added"
                    return


#: ``model: gpt-4o``, ``OPENAI_MODEL=gpt-4o``, ``chat_model = "gpt-4o"``: a setting whose
#: key names a model, in a YAML, TOML, INI or .env file.
_SETTING = re.compile(
    r"""^\s*(?:export\s+)?["']?[\w.-]*model[\w.-]*["']?\s*[:=]\s*["']?([^"'\s#,]+)""",
    re.IGNORECASE,
)


def settings_models(path: str, text: str) -> list[ModelName]:
    """The OpenAI model names a settings file gives (``model: gpt-4o`` in YAML, an
    ``OPENAI_MODEL=`` line in .env): code that reads its model from there passes a value
    the scan cannot see, and the starter config needs an alias for it all the same."""
    found = []
    for number, line in enumerate(text.splitlines(), 1):
        match = _SETTING.match(line)
        if match and OPENAI_MODEL.match(match[1]) and _MODEL_ID.match(match[1]):
            found.append(ModelName(match[1], path, number))
    return found


#: A notebook line that is IPython, not Python: a magic (``%pip``) or a shell escape
#: (``!ls``). Read as ``pass`` so the cell still parses. (Help queries, ``openai?``, are
#: left alone: a prompt's line in a triple-quoted string ends in ``?`` far more often.)
_IPYTHON_LINE = re.compile(r"^\s*[%!]")


def scan_notebook(path: str, source: bytes, api: OpenAIApi) -> FileScan:
    """Read a Jupyter notebook's code cells as one program (an import in the first cell
    serves a call in the last) and report them like a file's; each place is named
    ``PATH cell N:LINE``. A notebook is never rewritten (its JSON, outputs and metadata
    are the user's): when it uses openai, a finding says which import to change."""
    try:
        cells = [
            cell.get("source", "")
            for cell in json.loads(source)["cells"]
            if cell.get("cell_type") == "code"
        ]
    except (ValueError, KeyError, TypeError, AttributeError) as error:
        return FileScan(path, error=f"not a readable notebook: {error}")
    lines: list[str] = []
    places: list[tuple[int, int]] = []  # a line of the program -> (cell, line in cell)
    for number, cell in enumerate(cells, 1):
        text = "".join(cell) if isinstance(cell, list) else str(cell)
        magic = text.lstrip().startswith("%%")  # a cell magic: the whole cell is not Python
        for index, line in enumerate(_python_lines(text), 1):
            if magic or _IPYTHON_LINE.search(line):
                line = line[: len(line) - len(line.lstrip())] + "pass"
            lines.append(line)
            places.append((number, index))
    scan = scan_source(path, "\n".join(lines).encode("utf-8") + b"\n", api)
    scan.original, scan.rewritten = b"", None
    _to_cells(scan, places)
    if scan.uses_openai:
        scan.findings.append((0, _NOTEBOOK))
    return scan


_NOTEBOOK = Finding(
    "changes",
    "a notebook is reported, never rewritten: in its cells import OpenAI and AsyncOpenAI "
    "from llm_bridge instead of openai (openai.OpenAI(...) -> llm_bridge.OpenAI(...))",
)


#: Where Python ends a line (`str.splitlines` also breaks at U+2028, form feeds ..., which
#: a string literal may hold).
_NEWLINE = re.compile(r"\r\n|\r|\n")


def _python_lines(text: str) -> list[str]:
    """``text``'s lines as Python reads them, without their line ends."""
    lines = _NEWLINE.split(text)
    return lines[:-1] if lines[-1] == "" else lines


def _to_cells(scan: FileScan, places: list[tuple[int, int]]) -> None:
    """Name each place `scan_notebook` found by its cell: ``PATH cell N`` and the line
    in that cell; a file finding, or the error of a notebook that does not parse, says
    its cell in its message."""

    def place(line: int) -> tuple[int, int]:
        return places[line - 1] if 0 < line <= len(places) else (0, line)

    if scan.error is not None:
        scan.error = re.sub(
            r"\bline (\d+)", lambda m: "cell {}, line {}".format(*place(int(m[1]))), scan.error
        )
    for site in scan.calls:
        cell, site.line = place(site.line)
        site.path = f"{scan.path} cell {cell}"
    scan.models = [
        dataclasses.replace(model, path=f"{scan.path} cell {place(model.line)[0]}", line=line)
        for model in scan.models
        for line in [place(model.line)[1]]
    ]
    findings = []
    for line, finding in scan.findings:
        cell, _ = place(line)
        message = f"cell {cell}: {finding.message}"
        findings.append((0, dataclasses.replace(finding, message=message)))
    scan.findings = findings


def _worth_parsing(source: bytes) -> bool:
    """Whether a file's bytes mention openai, llm_bridge or an OpenAI model name: a file
    that does not has nothing to report or rewrite, so it is not parsed at all."""
    lowered = source.lower()
    return b"openai" in lowered or b"llm_bridge" in lowered or bool(_MODEL_HINT.search(source))


def _syntax_error(source: bytes) -> Optional[str]:
    """Python's own account of a syntax error (libcst's points past it), if Python's
    parser refuses the source too."""
    try:
        ast.parse(source)
    except SyntaxError as error:
        return f"line {error.lineno}, column {error.offset}: {error.msg}"
    except (ValueError, UnicodeError) as error:
        return str(error)
    return None


def _incompatible(site: CallSite, accepted: frozenset[str]) -> Optional[str]:
    """Why ``site`` (a client construction) cannot become llm-bridge's, if it cannot."""
    for param in site.params:
        if param.name not in accepted:
            return (
                f"{site.resource}({param.name}=...) is openai's only: llm-bridge's "
                f"{site.resource} has no {param.name} parameter, so this client was left "
                "as openai's"
            )
        if param.name == "provider" and not isinstance(param.value, str):
            return (
                f"{site.resource}(provider={param.code}) is openai's provider hook (another "
                "cloud); llm-bridge's provider= names one of its providers, so this client "
                "was left as openai's"
            )
    return None


def _line(
    line: cst.SimpleStatementLine, body: list[cst.BaseSmallStatement], *, first: bool
) -> cst.SimpleStatementLine:
    """A line of ``body``, a part of ``line``: the first part keeps the lines above it and
    the line's comment; a statement ending a part loses its semicolon."""
    body = [*body[:-1], body[-1].with_changes(semicolon=cst.MaybeSentinel.DEFAULT)]
    if first:
        return line.with_changes(body=body)
    return cst.SimpleStatementLine(body=body)
