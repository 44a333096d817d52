"""`fsmc --help`: every command listed, in the order a user meets them."""

from __future__ import annotations

import re

from typer.testing import CliRunner

from flows.cli import app


def test_help_lists_every_command_with_run_first_and_the_servers_last():
    result = CliRunner().invoke(app, ["--help"], env={"COLUMNS": "200", "NO_COLOR": "1"})
    assert result.exit_code == 0, result.output
    commands = result.output[result.output.index("Commands"):]
    listed = re.findall(r"^│ (\S+)\s{2,}", commands, flags=re.M)
    registered = {command.name or command.callback.__name__.replace("_", "-") for command in app.registered_commands}
    registered |= {group.name for group in app.registered_groups}
    assert set(listed) == registered, result.output
    assert listed[0] == "run" and listed.index("serve") > listed.index("export")
