"""openai's answer objects, built by pydantic's validator instead of openai's ``construct``.

openai turns every answer's JSON (a completion, each chunk of a stream, an embedding
list) into its model classes with ``construct_type``: Python code that walks the type
hints of every field of every nested object without checking them. For a chat completion
that takes about 80 µs, a chunk about 30 µs and an embedding of 1,536 floats a
millisecond and more, most of what openai's client spends on a call. pydantic's compiled
validator builds the same objects in 3-6 µs.

The same holds for the events of a Responses stream, whose type is a union tagged by
``type``: openai validates those against all of its fifty-odd variants in turn; here the
one variant the tag names is validated.

llm-bridge's clients use it for the answers its engine writes (which it has already
validated against types of the same shape), and fall back to openai's own way for
anything the validator refuses, so openai's leniency is kept: a value of an unexpected
type is kept as it came, as openai keeps it. For what the validator accepts, the two
ways give equal objects: the same classes at every level, the same values and types,
the same fields counted as set (validation also counts the extra fields; openai's
``construct`` does not, and `built` removes them). Validation is strict, so it converts
nothing that ``construct`` would leave alone (a ``"1"`` for an int stays openai's).
tests/test_answer_models.py holds the two ways equal over generated answers.

Only openai's own types (``openai.types``) are built here: a caller's class given to
``parse(to=...)`` may have validators or settings that validation would apply and
openai's construct does not. Nor is it used for a client built with
``_strict_response_validation`` (openai validates those itself), for list pages (which
openai fills in after building them), for types with their own builder, or for types
whose construct differs from validation in ways this module does not mirror (a field
named otherwise in JSON, a default made by a factory; see `_builder_for`), nor for an
answer with a key named as one of ``construct``'s own parameters (``"_fields_set"``),
which openai's construct takes as that argument.

openai asks for embeddings in base64 unless told otherwise: such an answer holds a string
where the type says a list of floats, which validation refuses, so openai's construct
builds it as it came (openai's embeddings resource decodes it afterwards).
"""

from __future__ import annotations

import functools
import inspect
import typing
from typing import Any, Callable, Optional

import pydantic

__all__ = ["built"]

#: How each answer type is built here (None: openai's way), decided on its first answer.
#: Only openai's own types are kept, so it holds at most one entry per such type.
_BUILDERS: dict[Any, Optional[Callable[[dict[str, Any]], Any]]] = {}
#: A float beyond this is not exact: openai keeps such an int as it came.
_EXACT_FLOATS = 2**53


def built(data: object, cast_to: Any) -> Optional[Any]:
    """``data`` (an answer's JSON) as ``cast_to``, equal to what openai's
    ``construct_type`` makes of it; None where openai's own way must build it."""
    if type(data) is not dict:
        return None
    builder = _BUILDERS.get(cast_to, _builder_for)
    if builder is _builder_for:
        if not _openais(cast_to):
            return None  # (a caller's own class, say for ``parse(to=...)``: not cached)
        builder = _BUILDERS[cast_to] = _builder_for(cast_to)
    if builder is None:
        return None
    try:
        return builder(data)
    except (pydantic.ValidationError, _OpenAIsWay):
        return None  # (a value of another type: openai keeps it as it came)
    except pydantic.PydanticUserError:  # a schema that cannot be built: openai's, for good
        _BUILDERS[cast_to] = None
        return None


def _openais(cast_to: Any) -> bool:
    """One of openai's own answer types (or a tagged union of them), not a caller's."""
    if typing.get_origin(cast_to) is typing.Annotated:
        union = typing.get_args(cast_to)[0]
        return all(map(_openais, typing.get_args(union) or (union,)))
    return getattr(cast_to, "__module__", "").startswith("openai.types.")


def _builder_for(cast_to: Any) -> Optional[Callable[[dict[str, Any]], Any]]:
    """How openai's type ``cast_to`` is built here, if it can be.

    A model class is validated, and its extras unset as openai's ``construct`` leaves
    them, if openai would construct it: not a list page or a type with a builder of its
    own, and, in it and every model openai constructs inside it, no field whose JSON name
    differs from its own (openai's construct keeps those twice) and no default made by a
    factory (construct leaves those None). An answer whose model has a float field openai
    constructs is refused if it holds an int that a float cannot hold exactly.

    A union tagged by a field (``Annotated[Union[...], PropertyInfo(discriminator=...)]``:
    the event types of a Responses stream) is validated as the one variant its tag names,
    which is what openai's own union validation picks when every variant is a model whose
    tag is a distinct literal; it counts extras as set, as openai's does."""
    from openai import BaseModel
    from openai._base_client import BasePage
    from openai._types import ModelBuilderProtocol

    if inspect.isclass(cast_to):
        if (
            not issubclass(cast_to, BaseModel)
            or issubclass(cast_to, BasePage)
            or issubclass(cast_to, ModelBuilderProtocol)
        ):
            return None
        constructed = _constructed_models(cast_to)
        if constructed is None:
            return None
        floats = any(shape.endswith("float") for c in constructed for _, shape in _fields(c))
        return functools.partial(_validated_model, cast_to, floats)
    tagged = _tagged_union(cast_to)
    if tagged is None:
        return None
    tag, variants = tagged
    return functools.partial(_validated_variant, tag, variants)


def _validated_model(cls: type[pydantic.BaseModel], floats: bool, data: dict[str, Any]) -> Any:
    if floats and _inexact_int(data):
        return None
    model = cls.model_validate(data, strict=True)
    _unset_extras(model)
    return model


def _inexact_int(value: Any) -> bool:
    """Whether ``value`` (JSON) holds an int beyond a float's exact range anywhere.

    Walked with a list rather than by recursion: JSON nested deeper than Python's
    recursion limit (a tool's JSON schema echoed back in a ``Response``) is legal, and
    openai's construct takes it."""
    waiting = [value]
    while waiting:
        item = waiting.pop()
        kind = type(item)
        if kind is int:
            if not -_EXACT_FLOATS <= item <= _EXACT_FLOATS:
                return True
        elif kind is dict:
            waiting.extend(item.values())
        elif kind is list:
            waiting.extend(item)
    return False


def _validated_variant(
    tag: str, variants: dict[str, type[pydantic.BaseModel]], data: dict[str, Any]
) -> Any:
    value = data.get(tag)
    variant = variants.get(value) if type(value) is str else None
    return None if variant is None else variant.model_validate(data, strict=True)


def _constructed_models(cls: type[pydantic.BaseModel]) -> Optional[list[type[Any]]]:
    """``cls`` and every model openai's ``construct`` builds inside it, or None if one of
    them has a field named otherwise in JSON or a default made by a factory."""
    found: list[type[Any]] = []
    waiting = [cls]
    while waiting:
        model = waiting.pop()
        if model in found:
            continue
        for name, field in model.model_fields.items():
            if field.alias not in (None, name) or field.default_factory is not None:
                return None
        found.append(model)
        waiting.extend(_child(model, name) for name, shape in _fields(model) if shape in _NESTED)
    return found


def _tagged_union(annotation: Any) -> Optional[tuple[str, dict[str, type[pydantic.BaseModel]]]]:
    """The tag field and the variant each tag value names, of a union openai tags with
    ``PropertyInfo(discriminator=...)``, if every variant is a model whose tag is a
    literal of its own; else None."""
    from openai._utils import PropertyInfo

    if typing.get_origin(annotation) is not typing.Annotated:
        return None
    union, *meta = typing.get_args(annotation)
    tags = [m.discriminator for m in meta if isinstance(m, PropertyInfo) and m.discriminator]
    if not tags or typing.get_origin(union) is not typing.Union:
        return None
    tag = tags[0]
    variants: dict[str, type[pydantic.BaseModel]] = {}
    for variant in typing.get_args(union):
        if typing.get_origin(variant) is typing.Annotated:
            variant = typing.get_args(variant)[0]
        field = _is_model(variant) and variant.model_fields.get(tag)
        if not field or field.alias not in (None, tag):
            return None
        if typing.get_origin(field.annotation) is not typing.Literal:
            return None
        for value in typing.get_args(field.annotation):
            if type(value) is not str or value in variants:
                return None
            variants[value] = variant
    return tag, variants


class _OpenAIsWay(Exception):
    """An answer only openai's construct can build as openai builds it."""


#: The names of ``construct``'s own parameters: an extra key of one of these names is
#: taken as that argument (``"_fields_set": null`` vanishes, another value raises), so an
#: answer holding one is left to openai.
_CONSTRUCT_PARAMETERS = frozenset({"_fields_set", "_BaseModel__cls"})


def _unset_extras(model: pydantic.BaseModel) -> None:
    """Extra fields no longer counted as set wherever openai's ``construct`` would have
    built the model: ``model`` itself, and the models in its fields typed as a model or a
    list or dict of one. A field typed as a union (``Optional[...]`` too) openai builds
    by validating it (lax), which counts extras as set, as `built`'s validation did.
    Raises `_OpenAIsWay` for an extra named as one of construct's parameters."""
    extra = model.__pydantic_extra__
    if extra:
        if not _CONSTRUCT_PARAMETERS.isdisjoint(extra):
            raise _OpenAIsWay
        model.__pydantic_fields_set__.difference_update(extra)
    values = model.__dict__
    for name, shape in _fields(type(model)):
        value = values.get(name)
        if shape == "model":
            children: Any = (value,)
        elif shape == "list":
            children = value if type(value) is list else ()
        elif shape == "dict":
            children = value.values() if type(value) is dict else ()
        else:
            continue
        for child in children:
            if isinstance(child, pydantic.BaseModel):
                _unset_extras(child)


#: The shapes of field that hold models openai constructs.
_NESTED = ("model", "list", "dict")
#: Per model class: its fields that openai constructs, and their shapes (`_fields`).
_FIELDS: dict[type[Any], tuple[tuple[str, str], ...]] = {}


def _fields(cls: type[pydantic.BaseModel]) -> tuple[tuple[str, str], ...]:
    """The fields of ``cls`` that openai's ``construct_type`` builds by constructing (not
    by validating, as it does a union), with their shape: a model (``"model"``), a list
    or dict of one (``"list"``, ``"dict"``), a float or a list of them (``"float"``,
    ``"list float"``)."""
    known = _FIELDS.get(cls)
    if known is None:
        found = []
        for name, field in cls.model_fields.items():
            shape = _shape(field.annotation)
            if shape is not None:
                found.append((name, shape))
        known = _FIELDS[cls] = tuple(found)
    return known


def _child(cls: type[pydantic.BaseModel], name: str) -> type[Any]:
    """The model class a field of shape "model", "list" or "dict" holds."""
    annotation = cls.model_fields[name].annotation
    while typing.get_origin(annotation) is typing.Annotated:
        annotation = typing.get_args(annotation)[0]
    args = typing.get_args(annotation)
    return args[-1] if args else annotation  # type: ignore[no-any-return]


def _shape(annotation: Any) -> Optional[str]:
    origin = typing.get_origin(annotation)
    if origin is typing.Annotated:
        return _shape(typing.get_args(annotation)[0])
    if annotation is float:
        return "float"
    if _is_model(annotation):
        return "model"
    args = typing.get_args(annotation)
    if origin is list and args and args[0] is float:
        return "list float"
    if origin is list and args and _is_model(args[0]):
        return "list"
    if origin is dict and len(args) == 2 and _is_model(args[1]):
        return "dict"
    return None


def _is_model(annotation: Any) -> bool:
    return inspect.isclass(annotation) and issubclass(annotation, pydantic.BaseModel)
