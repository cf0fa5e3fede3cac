"""Execute one notebook with papermill for `make reproduce`: profile injected, output written atomically.

    python scripts/run_notebook.py notebooks/02_smi_kernel.ipynb notebooks/executed/02_smi_kernel_mini.ipynb mini
    python scripts/run_notebook.py notebooks/03_dra_training.ipynb notebooks/executed/03_dra_training_long_mini.ipynb \
        mini grid=long    # further parameters as NAME=VALUE (strings)

The executed copy (with outputs) appears only when the run succeeded; the time it took is appended to
.cache/reproduce_<profile>.log for the summary that `make reproduce` prints at the end. Before it is written,
the copy is made shareable (`clean_outputs`): stderr streams (library warnings, text progress bars) and
progress-bar widgets are dropped, and this machine's paths are written relative to the project.

The profile reaches the notebook only as its `profile` parameter (papermill -p profile ...): the parameters
cell is the one place a notebook's profile is set.
"""

import os
import shutil
import sys
import time
from pathlib import Path

import nbformat
import papermill

from dra.config import PROJECT_ROOT, cache_dir
from dra.io import atomic_path


WIDGET_VIEW = "application/vnd.jupyter.widget-view+json"


def is_transient(output) -> bool:
    """Whether an output only mattered while the notebook ran: stderr text (warnings, text progress bars) or a
    widget view (tqdm's progress bars in JupyterLab), whose state is not kept in the executed copy."""
    return (output.output_type == "stream" and output.name == "stderr") or WIDGET_VIEW in output.get("data", {})


def clean_outputs(path: Path, target: str) -> None:
    """Drop transient outputs (`is_transient`) and the widget state, replace the project root and the home folder
    in text outputs, and record `target` (not the temporary file) as papermill's output path; in place."""
    notebook = nbformat.read(path, as_version=4)
    if "papermill" in notebook.metadata:
        notebook.metadata.papermill["output_path"] = target
    notebook.metadata.pop("widgets", None)
    local = [(str(PROJECT_ROOT) + "/", ""), (str(PROJECT_ROOT), "."), (str(Path.home()), "~")]

    def scrub(text: str) -> str:
        for old, new in local:
            text = text.replace(old, new)
        return text

    for cell in notebook.cells:
        if cell.cell_type != "code":
            continue
        cell.outputs = [out for out in cell.outputs if not is_transient(out)]
        for out in cell.outputs:
            if out.output_type == "stream":
                out.text = scrub(out.text)
            for mime, value in out.get("data", {}).items():
                if mime.startswith("text/") and isinstance(value, str):
                    out["data"][mime] = scrub(value)
    nbformat.write(notebook, path)


def main(source: str, target: str, profile: str, *parameters: str) -> None:
    malformed = [parameter for parameter in parameters if "=" not in parameter]
    if malformed:
        raise SystemExit(f"notebook parameters are NAME=VALUE, e.g. grid=long; got {malformed}")
    start = time.perf_counter()
    # papermill writes as it goes; it works in the cache (a killed run leaves nothing beside the target), and
    # the finished copy replaces the target in one atomic step.
    work_dir = cache_dir() / "executing"
    work_dir.mkdir(parents=True, exist_ok=True)
    for stale in work_dir.glob(f"{Path(target).stem}.*.ipynb"):  # left by a killed run
        stale.unlink(missing_ok=True)
    executed = work_dir / f"{Path(target).stem}.{os.getpid()}.ipynb"
    extra = dict(parameter.split("=", 1) for parameter in parameters)
    papermill.execute_notebook(source, str(executed), parameters={"profile": profile, **extra},
                               cwd=str(Path(source).parent), progress_bar=False)
    clean_outputs(executed, target)
    with atomic_path(target) as tmp:
        shutil.copyfile(executed, tmp)
    executed.unlink()
    seconds = time.perf_counter() - start
    with open(cache_dir() / f"reproduce_{profile}.log", "a") as log:
        log.write(f"{Path(target).name}\t{seconds:.0f}\n")
    print(f"{source} -> {target} ({seconds:.0f} s)")


if __name__ == "__main__":
    main(*sys.argv[1:])
