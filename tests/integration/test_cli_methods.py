"""`fsmc methods`: what a user can pick by name."""

from __future__ import annotations

import re

import pytest

from tests.conftest import run_cli

pytestmark = pytest.mark.integration


def test_methods_lists_every_recovery_method_and_the_plug_in(tmp_path):
    result = run_cli(["methods"], cwd=tmp_path)
    assert result.returncode == 0
    for name in ("none", "bp", "kd", "fskd", "cd", "mir", "+oe", "channel", "unstructured", "int8-ptq", "int8-qat", "distill"):
        # whole words: "kd" must not pass on the strength of "fskd"
        assert re.search(rf"(?<![\w-]){re.escape(name)}(?![\w-])", result.stdout), name
