"""What the plugin takes as a container name or id before it asks any engine."""

from __future__ import annotations

import pytest

from plugin.errors import UsageError
from plugin.target import check_reference


@pytest.mark.parametrize(("ref", "name"), [
    ("web", "web"), ("/web", "web"), ("a1b2c3", "a1b2c3"), ("my_app.v2-1", "my_app.v2-1"),
    ("x" * 255, "x" * 255),
])
def test_names_and_ids_are_taken_as_docker_writes_them(ref: str, name: str) -> None:
    assert check_reference(ref) == name


@pytest.mark.parametrize("ref", [
    "web\n", "web\nother", "-web", "_web", "we b", "web/x", "//web", "x" * 256, "wëb", "web;rm",
])
def test_anything_else_is_one_usage_error(ref: str) -> None:
    with pytest.raises(UsageError, match="is not a container name or id"):
        check_reference(ref)


def test_an_empty_name_says_so() -> None:
    with pytest.raises(UsageError, match="the container name is empty"):
        check_reference("")
