"""Runs inside the vLLM venv: parse command lines with `vllm serve`'s own argument parser.

Reads JSON `{name: [arg, ...]}` on stdin and prints one line `RESULT {name: complaint}` for the
command lines vLLM rejects (argparse's error) or accepts with a deprecated flag. The parser is
built the way the `vllm` script builds it (`vllm.entrypoints.cli.main`), so what passes here
passes in the image's `vllm serve` entrypoint of the same release.
"""

from __future__ import annotations

import contextlib
import io
import json
import sys


def main() -> None:
    from vllm.entrypoints.cli.serve import ServeSubcommand
    from vllm.utils.argparse_utils import FlexibleArgumentParser

    parser = FlexibleArgumentParser(prog="vllm")
    subparsers = parser.add_subparsers(dest="subparser")
    serve = ServeSubcommand().subparser_init(subparsers)
    deprecated = {
        option for action in getattr(serve, "_deprecated", set()) for option in action.option_strings
    }
    complaints: dict[str, str] = {}
    for name, args in json.loads(sys.stdin.read()).items():
        stderr = io.StringIO()
        try:
            with contextlib.redirect_stderr(stderr):
                parser.parse_args(["serve", *args])
        except SystemExit:
            lines = [line for line in stderr.getvalue().splitlines() if "error:" in line]
            complaints[name] = lines[-1] if lines else stderr.getvalue().strip()
            continue
        used = sorted({arg.split("=", 1)[0] for arg in args} & deprecated)
        if used:
            complaints[name] = f"deprecated in vLLM: {', '.join(used)}"
    print("RESULT " + json.dumps(complaints))


if __name__ == "__main__":
    main()
