"""Reading config files: YAML through ``safe_load`` with duplicate keys refused, and naming the file behind a key.

A YAML mapping that repeats a key silently keeps the last value in PyYAML; in a config that hides an edit (two
``da:`` blocks, the second overriding half of the first), so :class:`UniqueKeySafeLoader` makes it an error naming
the file, the key and both lines. :func:`file_setting` finds which of the merged files set a key, so a validation
error can name the overlay to fix rather than only the key.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import yaml

from ..errors import ConfigError


class DuplicateKeyError(yaml.YAMLError):
    """A mapping holds one key twice."""


class UniqueKeySafeLoader(yaml.SafeLoader):
    """``yaml.SafeLoader`` that refuses a mapping holding the same key twice."""

    def construct_mapping(self, node, deep=False):
        if isinstance(node, yaml.MappingNode):
            seen: dict[Any, Any] = {}
            for key_node, _ in node.value:
                key = self.construct_object(key_node, deep=True)
                try:
                    hash(key)
                except TypeError:
                    continue  # the base class reports unhashable keys
                if key in seen:
                    raise DuplicateKeyError(
                        f"duplicate key {key!r} at line {key_node.start_mark.line + 1} (first at line {seen[key].line + 1})"
                    )
                seen[key] = key_node.start_mark
        return super().construct_mapping(node, deep=deep)


def read_config_file(path: str | Path) -> dict[str, Any]:
    """One config file as a mapping (empty file → {}); errors name the file."""
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"{path}: config file does not exist")
    try:
        with open(path, encoding="utf-8") as fh:
            data = yaml.load(fh, Loader=UniqueKeySafeLoader) or {}
    except DuplicateKeyError as err:
        raise ConfigError(f"{path}: {err}") from None
    except yaml.YAMLError as err:
        raise ConfigError(f"{path}: not valid YAML: {err}") from None
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: top level must be a mapping, got {type(data).__name__}")
    return data


def read_config_files(paths: Sequence[str | Path]) -> list[tuple[str, dict[str, Any]]]:
    """(path, mapping) of each file, in merge order."""
    return [(str(p), read_config_file(p)) for p in paths]


def _sets(data: Any, loc: Sequence) -> bool:
    """Whether a file's mapping sets the key at ``loc`` (or the list that holds it: an overlay replaces lists)."""
    node = data
    for part in loc:
        if isinstance(node, dict):
            if part not in node:
                return False
            node = node[part]
        else:
            return True  # inside a list, which the file sets as a whole
    return True


def file_setting(sources: Sequence[tuple[str, dict]] | None, loc: Sequence) -> str | None:
    """The last of the merged files that sets the key at ``loc`` (None when no file does: a default)."""
    for path, data in reversed(list(sources or ())):
        if loc and _sets(data, loc):
            return path
    return None
