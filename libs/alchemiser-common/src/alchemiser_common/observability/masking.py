"""Masking of secrets in log events: by key name and by ``SecretStr``/``SecretBytes`` type."""

from __future__ import annotations

import re
from collections.abc import Mapping, MutableMapping
from typing import Any

from pydantic import SecretBytes, SecretStr

__all__ = ["MASK", "SECRET_KEY_PATTERN", "mask_secrets", "mask_secrets_processor"]

MASK = "**********"

# Over-masking is harmless, leaking is not: any key containing one of these words is masked.
# "pass" alone only as a separate word part ("sasl_pass"), not inside "passive" or "bypass".
SECRET_KEY_PATTERN = re.compile(
    r"password|passwd|passphrase|(?<![a-z0-9])pass(?![a-z0-9])|secret|token|api[_-]?key|"
    r"authori[sz]ation|credential|private[_-]?key|user[_-]?info|cookie",
    re.IGNORECASE,
)
_MAX_DEPTH = 8


def _is_secret_key(key: object) -> bool:
    return isinstance(key, str) and SECRET_KEY_PATTERN.search(key) is not None


def _masked_item(key: object, item: Any, depth: int) -> Any:
    if item is not None and _is_secret_key(key):
        return MASK
    return mask_secrets(item, depth)


def mask_secrets(value: Any, _depth: int = 0) -> Any:
    """Return ``value`` with secret-named keys and ``SecretStr``/``SecretBytes`` masked.

    Mappings, lists, tuples and sets are walked (to a bounded depth); other values are returned
    unchanged. The input is never mutated.
    """
    if isinstance(value, SecretStr | SecretBytes):
        return MASK
    if _depth >= _MAX_DEPTH:
        return value
    if isinstance(value, Mapping):
        return {key: _masked_item(key, item, _depth + 1) for key, item in value.items()}
    if isinstance(value, list | tuple | set | frozenset):
        masked = [mask_secrets(item, _depth + 1) for item in value]
        return masked if isinstance(value, list) else type(value)(masked)
    return value


def mask_secrets_processor(
    _logger: Any, _method_name: str, event_dict: MutableMapping[str, Any]
) -> MutableMapping[str, Any]:
    """structlog processor: mask secrets in every field of the event (see :func:`mask_secrets`)."""
    for key, item in list(event_dict.items()):
        if key.startswith("_"):  # structlog internals such as _record / _from_structlog
            continue
        event_dict[key] = _masked_item(key, item, 0)
    return event_dict
