"""DVC entry point: ``python -m fsmc.stages NAME [--params params.yaml] [--workspace data]``.

Runs one stage's worker on ``params.yaml`` and the ``data/`` workspace. Bad
input exits with code 2 and a one-paragraph message on stderr.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from fsmc.config import load_params
from fsmc.errors import BAD_INPUT_EXIT_CODE, FsmcError
from fsmc.stages import STAGES
from fsmc.workspace import Workspace


def main(argv: list[str] | None = None) -> int:
    """Parse arguments and run one stage."""
    parser = argparse.ArgumentParser(prog="python -m fsmc.stages", description=__doc__)
    parser.add_argument("stage", choices=sorted(STAGES))
    parser.add_argument("--params", type=Path, default=Path("params.yaml"))
    parser.add_argument("--workspace", type=Path, default=Path("data"))
    args = parser.parse_args(argv)
    try:
        params = load_params(args.params)
        STAGES[args.stage](params, Workspace(args.workspace))
    except FsmcError as error:
        print(f"error: {error}", file=sys.stderr)
        return BAD_INPUT_EXIT_CODE
    return 0


if __name__ == "__main__":
    sys.exit(main())
