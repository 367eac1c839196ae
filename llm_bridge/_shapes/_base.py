"""Base class for every response model in ``llm_bridge.types``.

Chinese providers return OpenAI-shaped payloads with additions of their own (Zhipu's
``request_id`` and ``web_search``, the ``reasoning_content`` of reasoning models, our own
``provider`` tag).  The models therefore keep unknown keys (``extra="allow"``): an extra is
reachable as an attribute and is written back by ``model_dump()`` / ``model_dump_json()``.

Fields that openai types as a closed ``Literal`` (``finish_reason``, ``role``, ``object``,
``type``, ``service_tier``) are typed as plain ``str`` here, at most with the OpenAI values
listed in a ``Union[Literal[...], str]`` for editors.  The adapters normalise the values they
know about, but a provider may introduce a new one (Zhipu's ``finish_reason="sensitive"``,
for instance) and a strict ``Literal`` would turn that into a validation error and lose the
whole response.
"""

from typing import Any, Dict, Literal, Optional

import pydantic
from pydantic import ConfigDict

__all__ = ["BaseModel"]


class BaseModel(pydantic.BaseModel):
    """Pydantic model that keeps provider extras and has openai's ``to_dict``/``to_json``."""

    model_config = ConfigDict(
        extra="allow",
        populate_by_name=True,
        protected_namespaces=(),
        arbitrary_types_allowed=True,
    )

    def to_dict(
        self,
        *,
        mode: Literal["json", "python"] = "python",
        use_api_names: bool = True,
        exclude_unset: bool = True,
        exclude_defaults: bool = False,
        exclude_none: bool = False,
        warnings: bool = True,
    ) -> Dict[str, Any]:
        """Return the model as a dict, as the API sent it.

        As in openai, fields the response did not set are left out by default
        (``exclude_unset=True``) and keys use the API's names (``use_api_names=True``).
        ``mode="json"`` gives JSON-serialisable values only.
        """
        return self.model_dump(
            mode=mode,
            by_alias=use_api_names,
            exclude_unset=exclude_unset,
            exclude_defaults=exclude_defaults,
            exclude_none=exclude_none,
            warnings=warnings,
        )

    def to_json(
        self,
        *,
        indent: Optional[int] = 2,
        use_api_names: bool = True,
        exclude_unset: bool = True,
        exclude_defaults: bool = False,
        exclude_none: bool = False,
        warnings: bool = True,
    ) -> str:
        """Return the model as a JSON string, with the same defaults as :meth:`to_dict`.

        ``indent=None`` gives compact output.
        """
        return self.model_dump_json(
            indent=indent,
            by_alias=use_api_names,
            exclude_unset=exclude_unset,
            exclude_defaults=exclude_defaults,
            exclude_none=exclude_none,
            warnings=warnings,
        )
