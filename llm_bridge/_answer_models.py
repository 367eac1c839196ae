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

Not used for a client built with ``_strict_response_validation`` (openai validates those
itself), for list pages (which openai fills in after building them) or for types with
their own builder.
"""

from __future__ import annotations

import functools
import inspect
import typing
from typing import Any, Callable, Optional

import pydantic

__all__ = ["built"]

#: How each answer type is built here (None: openai's way), decided on its first answer.
_BUILDERS: dict[Any, Optional[Callable[[dict[str, Any]], Any]]] = {}


def built(data: object, cast_to: Any) -> Optional[Any]:
    """``data`` (an answer's JSON) as ``cast_to``, equal to what openai's
    ``construct_type`` makes of it; None where openai's own way must build it."""
    if type(data) is not dict:
        return None
    try:
        builder = _BUILDERS[cast_to]
    except KeyError:
        builder = _BUILDERS[cast_to] = _builder_for(cast_to)
    except TypeError:  # (an unhashable type: openai's way)
        return None
    if builder is None:
        return None
    try:
        return builder(data)
    except pydantic.ValidationError:
        return None  # (a value of another type: openai keeps it as it came)
    except Exception:  # the type's schema cannot be built: openai's way, from now on
        _BUILDERS[cast_to] = None
        return None


def _builder_for(cast_to: Any) -> Optional[Callable[[dict[str, Any]], Any]]:
    """A plain openai model class (no list page, no builder of its own) is validated,
    and its extras unset as openai's ``construct`` leaves them. A union tagged by a
    field (``Annotated[Union[...], PropertyInfo(discriminator="type")]``: the event
    types of a Responses stream) is validated as the one variant its tag names, which
    is what openai's own union validation picks when every variant's tag is a distinct
    literal; it counts extras as set, as openai's does."""
    from openai import BaseModel
    from openai._base_client import BasePage
    from openai._types import ModelBuilderProtocol

    if inspect.isclass(cast_to):
        if (
            issubclass(cast_to, BaseModel)
            and not issubclass(cast_to, BasePage)
            and not issubclass(cast_to, ModelBuilderProtocol)
        ):
            return functools.partial(_validated_model, cast_to)
        return None
    tagged = _tagged_union(cast_to)
    if tagged is None:
        return None
    tag, variants = tagged
    return functools.partial(_validated_variant, tag, variants)


def _validated_model(cls: type[pydantic.BaseModel], data: dict[str, Any]) -> Any:
    model = cls.model_validate(data, strict=True)
    _unset_extras(model)
    return model


def _validated_variant(
    tag: str, variants: dict[str, type[pydantic.BaseModel]], data: dict[str, Any]
) -> Any:
    variant = variants.get(data.get(tag))  # type: ignore[arg-type]
    return None if variant is None else variant.model_validate(data, strict=True)


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


def _unset_extras(model: pydantic.BaseModel) -> None:
    """Extra fields no longer counted as set wherever openai's ``construct`` would have
    built the model: ``model`` itself, and the models in its fields typed as a model or a
    list or dict of one. A field typed as a union (``Optional[...]`` too) openai builds
    by validating it (lax), which counts extras as set, as `built`'s validation did."""
    extra = model.__pydantic_extra__
    if extra:
        model.__pydantic_fields_set__.difference_update(extra)
    values = model.__dict__
    for name, shape in _constructed_fields(type(model)):
        value = values.get(name)
        if shape == "model":
            children: Any = (value,)
        elif shape == "list":
            children = value if type(value) is list else ()
        else:
            children = value.values() if type(value) is dict else ()
        for child in children:
            if isinstance(child, pydantic.BaseModel):
                _unset_extras(child)


#: Per model class: its fields that openai constructs, and how (`_constructed_fields`).
_CONSTRUCTED: dict[type[Any], tuple[tuple[str, str], ...]] = {}


def _constructed_fields(cls: type[pydantic.BaseModel]) -> tuple[tuple[str, str], ...]:
    """The fields of ``cls`` typed as a model (``"model"``), a list of one (``"list"``) or
    a dict of one (``"dict"``), not as a union: those openai's ``construct_type`` builds
    by constructing, leaving extras unset."""
    known = _CONSTRUCTED.get(cls)
    if known is None:
        found = []
        for name, field in cls.model_fields.items():
            shape = _shape(field.annotation)
            if shape is not None:
                found.append((name, shape))
        known = _CONSTRUCTED[cls] = tuple(found)
    return known


def _shape(annotation: Any) -> Optional[str]:
    origin = typing.get_origin(annotation)
    if origin is typing.Annotated:
        return _shape(typing.get_args(annotation)[0])
    if _is_model(annotation):
        return "model"
    args = typing.get_args(annotation)
    if origin is list and args and _is_model(args[0]):
        return "list"
    if origin is dict and len(args) == 2 and _is_model(args[1]):
        return "dict"
    return None


def _is_model(annotation: Any) -> bool:
    return inspect.isclass(annotation) and issubclass(annotation, pydantic.BaseModel)
