"""openai's answer objects, built by pydantic's validator instead of openai's ``construct``.

openai turns every answer's JSON (a completion, each chunk of a stream, an embedding
list) into its model classes with ``construct_type``: Python code that walks the type
hints of every field of every nested object without checking them. For a chat completion
that takes about 80 µs, a chunk about 30 µs and an embedding of 1,536 floats a
millisecond and more, most of what openai's client spends on a call. pydantic's compiled
validator builds the same objects in 3-6 µs.

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

import inspect
import typing
from typing import Any, Optional

import pydantic

__all__ = ["built"]

#: Whether each answer type may be built here, decided on its first answer.
_BUILDABLE: dict[Any, bool] = {}


def _buildable(cast_to: Any) -> bool:
    """A plain openai model class: no list page, no builder of its own."""
    from openai import BaseModel
    from openai._base_client import BasePage
    from openai._types import ModelBuilderProtocol

    return (
        inspect.isclass(cast_to)
        and issubclass(cast_to, BaseModel)
        and not issubclass(cast_to, BasePage)
        and not issubclass(cast_to, ModelBuilderProtocol)
    )


def built(data: object, cast_to: Any) -> Optional[Any]:
    """``data`` (an answer's JSON) as an instance of ``cast_to``, equal to what openai's
    ``construct_type`` makes of it; None where openai's own way must build it."""
    if type(data) is not dict:
        return None
    buildable = _BUILDABLE.get(cast_to)
    if buildable is None:
        buildable = _BUILDABLE[cast_to] = _buildable(cast_to)
    if not buildable:
        return None
    try:
        model = cast_to.model_validate(data, strict=True)
    except pydantic.ValidationError:
        return None  # (a value of another type: openai keeps it as it came)
    except Exception:  # the type's schema cannot be built: openai's way, from now on
        _BUILDABLE[cast_to] = False
        return None
    _unset_extras(model)
    return model


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
