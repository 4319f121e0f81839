"""List the config files and their variants: ``python -m experiments.configs``.

For one of them resolved (every field, after overrides, checked):
``python -m experiments.train --config experiments/configs/<family>.py:<variant> --dry-run``.

A family's variants are its VARIANTS tuple when it has one, else every '<task>' and '<task>_smoke' that its
get_config accepts; ',<option>' suffixes (e.g. the ladder's rungs) are listed when the file has OPTIONS.
A --config without ':<variant>' is an error listing them (missing_variant): no family silently picks a task.
"""
import importlib.util
import sys
from pathlib import Path

from experiments.configs import base

HERE = Path(__file__).resolve().parent


def family_files() -> list[Path]:
    return sorted(p for p in HERE.glob("*.py") if p.stem not in ("__init__", "__main__", "base"))


def load(path: Path):
    spec = importlib.util.spec_from_file_location(f"_config_{path.stem}", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def variants(module) -> list[str]:
    if hasattr(module, "VARIANTS"):
        return list(module.VARIANTS)
    found = []
    for task in base.TASKS:
        for name in (task, f"{task}_smoke"):
            probe = f"{name},{module.OPTIONS[0]}" if hasattr(module, "OPTIONS") else name
            try:
                module.get_config(probe)
            except ValueError:  # parse_variant's "unknown variant": this family does not have it
                continue
            found.append(name)
    return found


def missing_variant(path: Path) -> str:
    """The message for `--config <path>` without ':<variant>': no family picks a task by default."""
    module = load(path)
    options = (f" (then ,<option>; options: {', '.join(map(str, module.OPTIONS))})" if hasattr(module, "OPTIONS")
               else "")
    return (f"--config {path} names no variant: use --config {path}:<variant>, with variant one of: "
            f"{', '.join(variants(module))}{options}")


def summary(module) -> str:
    """The config file docstring's first paragraph, on one line (its first line alone cuts titles that wrap)."""
    return " ".join((module.__doc__ or "").strip().split("\n\n")[0].split())


def main() -> int:
    root = Path.cwd()
    for path in family_files():
        module = load(path)
        shown = path.relative_to(root) if path.is_relative_to(root) else path
        print(f"{shown}  {summary(module)}")
        print(f"  variants: {', '.join(variants(module)) or '(none)'}")
        if hasattr(module, "OPTIONS"):
            print(f"  options (append ',<option>' to a variant): {', '.join(map(str, module.OPTIONS))}")
    print("\nrun one:   python -m experiments.train --config <file>:<variant> --workdir runs/<name>"
          "\nshow one:  python -m experiments.train --config <file>:<variant> --dry-run")
    return 0


if __name__ == "__main__":
    sys.exit(main())
