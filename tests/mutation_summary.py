"""Mutants by module and status after `mutmut run` (run by tests/mutation.sh, in mutmut's
folder): only the mutants the mutmut names given match, then every survivor's name."""

from __future__ import annotations

import fnmatch
import sys
from collections import Counter, defaultdict

from mutmut.__main__ import SourceFileMutationData, walk_mutatable_files
from mutmut.stats import status_by_exit_code


def main(patterns: list[str]) -> int:
    by_module: dict[str, Counter[str]] = defaultdict(Counter)
    survivors: list[str] = []
    for path in walk_mutatable_files():
        data = SourceFileMutationData(path=path)
        data.load()
        for name, code in sorted(data.exit_code_by_key.items()):
            if patterns and not any(fnmatch.fnmatch(name, p) for p in patterns):
                continue
            status = status_by_exit_code[code]
            by_module[str(path)][status] += 1
            if status not in ("killed", "caught by type check"):
                survivors.append(f"{name}: {status}")
    print(f"{'module':32} {'mutants':>8} {'killed':>8} {'survived':>9} other")
    for module, counts in sorted(by_module.items()):
        other = {k: v for k, v in counts.items() if k not in ("killed", "survived")}
        print(f"{module:32} {sum(counts.values()):8} {counts['killed']:8} {counts['survived']:9} "
              f"{', '.join(f'{k} {v}' for k, v in sorted(other.items()))}")
    print("\n".join(["", "not killed:", *survivors]) if survivors else "\nevery mutant was killed")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
