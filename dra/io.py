"""Results on disk: atomic writes, provenance, and config-keyed cache names.

Every result file says what made it: the profile, the seed, package versions and hardware. Files are
written to a temporary sibling and renamed, so a killed run never leaves half a file behind.
"""

from __future__ import annotations

import hashlib
import json
import os
import platform
import tempfile
from contextlib import contextmanager
from datetime import datetime, timezone
from importlib import metadata
from pathlib import Path
from typing import Any, Iterator

TRACKED_PACKAGES = (
    "dra-grpo", "torch", "transformers", "trl", "accelerate", "datasets", "sentence-transformers",
    "math-verify", "numpy", "scipy", "scikit-learn", "vllm",
)


@contextmanager
def atomic_path(path: str | os.PathLike) -> Iterator[Path]:
    """Yield a temporary path beside `path`; on success it replaces `path` in one rename."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    os.close(fd)
    os.chmod(tmp, 0o666 & ~_umask())  # mkstemp makes the file private; results are for everyone to read
    try:
        yield Path(tmp)
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def write_text(path: str | os.PathLike, text: str) -> Path:
    with atomic_path(path) as tmp:
        tmp.write_text(text)
    return Path(path)


def write_json(path: str | os.PathLike, obj: Any) -> Path:
    return write_text(path, json.dumps(obj, indent=2, sort_keys=False, default=_json_default) + "\n")


def _json_default(obj: Any):
    if hasattr(obj, "tolist"):  # numpy / torch scalars and arrays
        return obj.tolist()
    if isinstance(obj, Path):
        return str(obj)
    raise TypeError(f"cannot serialise {type(obj).__name__} to JSON")


def package_versions(names: tuple[str, ...] = TRACKED_PACKAGES) -> dict[str, str]:
    versions = {"python": platform.python_version()}
    for name in names:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            pass
    return versions


def hardware() -> dict[str, Any]:
    info: dict[str, Any] = {"platform": platform.platform(), "machine": platform.machine(), "cpus": os.cpu_count()}
    try:
        import torch

        info["torch_threads"] = torch.get_num_threads()
        if torch.cuda.is_available():
            info["gpus"] = [torch.cuda.get_device_name(i) for i in range(torch.cuda.device_count())]
    except ImportError:
        pass
    return info


def provenance(profile: str, seed: int | None = None, **extra: Any) -> dict[str, Any]:
    """What to store next to every result: profile, seed, time, versions, hardware, plus `extra`."""
    return {
        "profile": profile,
        "seed": seed,
        "created": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "versions": package_versions(),
        "hardware": hardware(),
        **extra,
    }


def config_key(config: Any, length: int = 12) -> str:
    """A short stable hash of a JSON-serialisable config: cache entries are named by what made them."""
    blob = json.dumps(config, sort_keys=True, default=_json_default).encode()
    return hashlib.sha256(blob).hexdigest()[:length]


def last_complete_checkpoint(output_dir: str | os.PathLike) -> str | None:
    """The newest ``checkpoint-N`` folder of a Trainer run that a kill did not cut short, or None.

    A checkpoint counts as complete when its ``trainer_state.json`` parses and model weights are present
    (transformers writes the state after the weights and optimiser). A newer, incomplete one, which is what a
    kill during saving leaves, would make ``resume_from_checkpoint`` fail; it is removed, so the rerun
    resumes from the last good checkpoint and repeats the lost steps.
    """
    import re
    import shutil

    folder = Path(output_dir)
    if not folder.is_dir():
        return None
    found = sorted((int(m.group(1)), p) for p in folder.iterdir()
                   if p.is_dir() and (m := re.fullmatch(r"checkpoint-(\d+)", p.name)))
    for _, path in reversed(found):
        if _checkpoint_complete(path):
            return str(path)
        shutil.rmtree(path)
    return None


def _checkpoint_complete(path: Path) -> bool:
    try:
        json.loads((path / "trainer_state.json").read_text())
    except (OSError, ValueError):
        return False
    return any((path / name).is_file() for name in ("model.safetensors", "model.safetensors.index.json",
                                                    "pytorch_model.bin", "adapter_model.safetensors"))
