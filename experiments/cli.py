"""What the absl entry points (experiments/train.py, experiments/evaluate.py) share: user errors as one line.

  fail(message)          prints `error: <message>` on stderr and exits with USER_ERROR (2), or the code given
  config_yaml(config)    a config as YAML for people (tuples as lists, not `!!python/tuple`)
  parse_absl_flags(argv) absl's FLAGS(argv), but a bad flag value or a stray positional argument is one `error:`
                         line and exit 2 (absl would print FATAL or the whole --help and exit 1)

The argparse entry points (reproduce, table, benchmark, lra.prepare) get this from argparse itself: a usage line,
one `<prog>: error: ...` line, exit 2.
"""
from __future__ import annotations

import sys

from absl import flags

USER_ERROR = 2


def fail(message: str, code: int = USER_ERROR):
    print(f"error: {message}", file=sys.stderr)
    sys.exit(code)


def config_yaml(config) -> str:
    """A ConfigDict as YAML, tuples as plain lists (str(config) is yaml.dump, which writes a tuple as
    `!!python/tuple []`); the form --dry-run prints."""
    import yaml

    class Dumper(yaml.SafeDumper):
        pass

    Dumper.add_representer(tuple, lambda dumper, value: dumper.represent_list(value))
    return yaml.dump(config.to_dict(), Dumper=Dumper)


def flag_error(e: Exception) -> str:
    """absl's message for a bad flag value, as one sentence: a bad boolean's ('Non-boolean argument to boolean
    flag', 'maybe') tuple (absl formats the parser's ValueError args) becomes what the flag takes."""
    cause = e.__context__
    if isinstance(cause, (ValueError, TypeError)) and cause.args[:1] == ("Non-boolean argument to boolean flag",):
        return f"{str(e).removesuffix(f': {cause}')}: a boolean flag takes true or false (also t/f, 1/0)"
    return str(e)


def no_positional(rest: list[str]) -> list[str]:
    """rest (what FLAGS(argv) left: the program name) unchanged, or fail() naming the stray arguments."""
    if len(rest) > 1:
        fail(f"unexpected argument{'s' if len(rest) > 2 else ''} {' '.join(rest[1:])!r}: this command takes only "
             "--flags (`--name=value`; a value with spaces needs quotes); see --help")
    return rest


def parse_absl_flags(argv: list[str]) -> list[str]:
    """FLAGS(argv) -> [program]; fail() on a flag error or on any positional argument (every option is a --flag)."""
    try:
        rest = flags.FLAGS(argv)
    except flags.Error as e:
        fail(f"{flag_error(e)} (see --help)")
    return no_positional(rest)
