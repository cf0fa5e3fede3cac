"""Execute one notebook with papermill for `make reproduce`: profile injected, output written atomically.

    python scripts/run_notebook.py notebooks/02_smi_kernel.ipynb notebooks/executed/02_smi_kernel_mini.ipynb mini

The executed copy (with outputs) appears only when the run succeeded; the time it took is appended to
.cache/reproduce_<profile>.log for the summary that `make reproduce` prints at the end.
"""

import os
import sys
import time
from pathlib import Path

import papermill

from dra.config import cache_dir
from dra.io import atomic_path


def main(source: str, target: str, profile: str) -> None:
    os.environ["DRA_PROFILE"] = profile
    start = time.perf_counter()
    with atomic_path(target) as tmp:
        papermill.execute_notebook(source, str(tmp.with_suffix(".ipynb")), parameters={"profile": profile},
                                   cwd=str(Path(source).parent), progress_bar=False)
        tmp.with_suffix(".ipynb").replace(tmp)
    seconds = time.perf_counter() - start
    with open(cache_dir() / f"reproduce_{profile}.log", "a") as log:
        log.write(f"{Path(source).name}\t{seconds:.0f}\n")
    print(f"{source} -> {target} ({seconds:.0f} s)")


if __name__ == "__main__":
    main(*sys.argv[1:4])
