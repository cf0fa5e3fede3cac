"""Results on disk: durable atomic writes, strict JSON, readers that say what is wrong, provenance, cache keys.

Every result file says what made it: the profile, the seed, package versions and hardware.

Writes (`atomic_path`, `write_text`, `write_json`) go to a temporary file beside the target, which is flushed
to disk (fsync), renamed over the target and made durable by an fsync of the directory: a reader sees the old
file or the new one, never half of one, even after a power cut. The temporary file is removed on any exception
(Ctrl-C included); one that a killed process left behind (SIGKILL, SIGTERM) is removed by the next write of the
same target on the same host. New files get the usual permissions (0o666 minus the process umask, applied by
the operating system; the umask is never read or changed, so this is thread-safe).

JSON is strict: NaN and infinities are written as ``null`` (Python's bare ``NaN`` is not JSON, and strict
parsers reject it), numpy/torch values as plain numbers and lists, paths as strings.

Readers (`read_json`, `read_jsonl`) raise `BadFileError` (a ValueError) naming the file and what is wrong with
it: empty, not UTF-8, not JSON (line and column), a field missing. A JSONL log whose *last* line was cut short
(what a killed writer leaves) loses that line with a warning; any other bad line raises with its line number.

`folder_lock` is the one lock between processes that work on the same folder (a training run, the base policy):
an flock on ``<folder>/in_use.lock``, released by the operating system when its holder exits, however it exits.
"""

from __future__ import annotations

import errno
import fcntl
import glob
import hashlib
import json
import logging
import math
import os
import platform
import re
import secrets
import shutil
import socket
import warnings
from contextlib import contextmanager
from datetime import datetime, timezone
from importlib import metadata
from pathlib import Path
from typing import Any, Iterator, Sequence

TRACKED_PACKAGES = (
    "dra-grpo", "torch", "transformers", "trl", "accelerate", "datasets", "sentence-transformers",
    "math-verify", "numpy", "scipy", "scikit-learn", "vllm",
)
_TEMP_SUFFIX = ".tmp"
_SAFE_NAME = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.+=-]*")


LOCK_FILE = "in_use.lock"
logger = logging.getLogger(__name__)


class BadFileError(ValueError):
    """A file that cannot be read as what it should be; the message names it and says what is wrong."""

    def __init__(self, path: str | os.PathLike, problem: str) -> None:
        self.path = Path(path)
        super().__init__(f"{self.path}: {problem}")


# ------------------------------------------------------------------------------------------------ writing

@contextmanager
def atomic_path(path: str | os.PathLike) -> Iterator[Path]:
    """Yield a new, empty temporary file beside `path`; when the block succeeds it replaces `path` durably.

    See the module docstring: fsync, rename, fsync of the directory; the temporary file never outlives an
    exception, and orphans of killed writers are cleaned up here.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    _remove_orphans(path)
    tmp = _new_temp(path)
    try:
        yield tmp
        _fsync(tmp, os.O_RDONLY)
        os.replace(tmp, path)
        _fsync(path.parent, os.O_RDONLY | getattr(os, "O_DIRECTORY", 0))
    finally:
        tmp.unlink(missing_ok=True)


def _temp_prefix(path: Path) -> str:
    return f".{path.name}~{socket.gethostname()}~"


def _new_temp(path: Path) -> Path:
    """Create `.<name>~<host>~<pid>~<random>.tmp` exclusively, mode 0o666 before the umask."""
    while True:
        tmp = path.with_name(f"{_temp_prefix(path)}{os.getpid()}~{secrets.token_hex(4)}{_TEMP_SUFFIX}")
        try:
            os.close(os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666))
            return tmp
        except FileExistsError:
            continue


def _remove_orphans(path: Path) -> None:
    """Remove temporary files of `path` whose writer (a process on this host) no longer exists."""
    prefix = _temp_prefix(path)
    for candidate in path.parent.glob(f"{glob.escape(prefix)}*{_TEMP_SUFFIX}"):
        pid = candidate.name[len(prefix):].split("~", 1)[0]
        if pid.isdigit() and not _alive(int(pid)):
            candidate.unlink(missing_ok=True)


def _alive(pid: int) -> bool:
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # another user's process
        return True
    return True


def _fsync(path: Path, flags: int) -> None:
    try:
        fd = os.open(path, flags)
    except OSError as error:
        if error.errno in (errno.EISDIR, errno.EACCES, errno.EINVAL):  # directories on some platforms
            return
        raise
    try:
        os.fsync(fd)
    except OSError as error:
        if error.errno not in (errno.EINVAL, errno.ENOTSUP, errno.EBADF):  # file systems without fsync
            raise
    finally:
        os.close(fd)


def write_text(path: str | os.PathLike, text: str) -> Path:
    """Write `text` (UTF-8) to `path` atomically and durably; returns the path."""
    if not isinstance(text, str):
        raise TypeError(f"text must be a str, got {type(text).__name__}.")
    with atomic_path(path) as tmp:
        tmp.write_text(text, encoding="utf-8")
    return Path(path)


def to_json(obj: Any, indent: int | None = 2) -> str:
    """Strict JSON of `obj`: NaN/inf as null, numpy/torch values as numbers and lists, paths as strings."""
    return json.dumps(_plain(obj), indent=indent, allow_nan=False)


def write_json(path: str | os.PathLike, obj: Any) -> Path:
    """Write `obj` as strict JSON (see `to_json`; NaN and infinities become null) atomically and durably."""
    return write_text(path, to_json(obj) + "\n")


def _plain(obj: Any) -> Any:
    """`obj` with only JSON's types: non-finite floats -> None, arrays/tensors -> lists, paths -> str."""
    if isinstance(obj, float):
        return obj if math.isfinite(obj) else None
    if obj is None or isinstance(obj, (str, int)):
        return obj
    if isinstance(obj, dict):
        return {_plain_key(key): _plain(value) for key, value in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_plain(value) for value in obj]
    if hasattr(obj, "tolist"):  # numpy / torch scalars and arrays
        return _plain(obj.tolist())
    if isinstance(obj, Path):
        return str(obj)
    raise TypeError(f"cannot write {type(obj).__name__} as JSON: {obj!r:.80}")


def _plain_key(key: Any) -> Any:
    return key.item() if hasattr(key, "item") else key


# ------------------------------------------------------------------------------------------------ reading

def _read_text(path: Path) -> str:
    try:
        return path.read_text(encoding="utf-8")
    except UnicodeDecodeError as error:
        raise BadFileError(path, f"not UTF-8 text ({error.reason} at byte {error.start}).") from None


def read_json(path: str | os.PathLike, keys: Sequence[str] = (), what: str = "JSON") -> Any:
    """The JSON value stored in `path`; with `keys`, an object that must hold each of them.

    Raises FileNotFoundError for a missing file and `BadFileError` for an empty, non-UTF-8 or invalid file
    (with line and column) or a missing key; `what` names the kind of file in the message.
    """
    path = Path(path)
    text = _read_text(path)
    if not text.strip():
        raise BadFileError(path, f"the file is empty, not {what} (an interrupted write?). Delete it and rerun "
                                 "the step that makes it.")
    try:
        value = json.loads(text)
    except json.JSONDecodeError as error:
        raise BadFileError(path, f"not valid {what}: {error.msg} at line {error.lineno}, column {error.colno} "
                                 "(truncated or edited?). Delete it and rerun the step that makes it.") from None
    missing = [key for key in keys if not isinstance(value, dict) or key not in value]
    if missing:
        raise BadFileError(path, f"not {what}: no {', '.join(map(repr, missing))} field.")
    return value


def read_jsonl(path: str | os.PathLike, objects: bool = False) -> list[Any]:
    """The JSON value of every non-blank line of `path`, in order (with `objects`, each must be an object).

    A last line that is cut short (no final newline, invalid JSON: what a killed writer leaves) is skipped
    with a warning; any other invalid line raises `BadFileError` with its line number.
    """
    path = Path(path)
    lines = _read_text(path).split("\n")
    values = []
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        try:
            values.append(json.loads(line))
        except json.JSONDecodeError as error:
            if number == len(lines):  # the file does not end with a newline: a torn write
                warnings.warn(f"{path}: skipped line {number}, cut short ({error.msg}); a writer was probably "
                              "killed mid-line.", RuntimeWarning, stacklevel=2)
                continue
            raise BadFileError(path, f"line {number} is not valid JSON: {error.msg} at column {error.colno}.") from None
        if objects and not isinstance(values[-1], dict):
            raise BadFileError(path, f"line {number} is not a JSON object: {line:.80}")
    return values


# ----------------------------------------------------------------------------------------- names and keys

def safe_name(name: Any, what: str) -> str:
    """`name` if it can be one file or folder name inside a results folder; raises ValueError otherwise.

    Allowed: letters, digits and ``_ . + = -``, not starting with a dot or dash, without ``..``: no path
    separator, no way out of the folder, no hidden file. `what` names the argument in the message.
    """
    if not isinstance(name, str) or not _SAFE_NAME.fullmatch(name) or ".." in name:
        raise ValueError(f"{what} must be a plain name (letters, digits, _ . + = -; no '/', no '..', not starting "
                         f"with '.' or '-'), got {name!r}.")
    return name


def slug(text: Any, what: str) -> str:
    """`text` (e.g. a Hub id "owner/model") turned into a `safe_name`: other characters and '..' become '_'."""
    if not isinstance(text, str):
        raise TypeError(f"{what} must be a string, got {type(text).__name__}.")
    cleaned = re.sub(r"[^A-Za-z0-9_.+=-]+|\.{2,}", "_", text).strip("_.-+=")
    if not cleaned:
        raise ValueError(f"{what} {text!r} has no letters or digits to name a file with.")
    return safe_name(cleaned, what)


def package_versions(names: tuple[str, ...] = TRACKED_PACKAGES) -> dict[str, str]:
    versions = {"python": platform.python_version()}
    for name in names:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            pass
    return versions


def hardware() -> dict[str, Any]:
    """The machine a result was made on. The CPU is recorded because it changes CPU results: float32 matrix
    products round differently with AVX2 and AVX-512 kernels, and bfloat16 is native only on some CPUs."""
    info: dict[str, Any] = {"platform": platform.platform(), "machine": platform.machine(), "cpus": os.cpu_count(),
                            "cpu": cpu_model(), "native_bf16": native_bf16()}
    try:
        import torch

        info["torch_threads"] = torch.get_num_threads()
        info["torch_cpu_capability"] = torch.backends.cpu.get_cpu_capability()
        if torch.cuda.is_available():
            info["gpus"] = [torch.cuda.get_device_name(i) for i in range(torch.cuda.device_count())]
    except ImportError:
        pass
    return info


def hardware_summary(info: dict[str, Any]) -> str:
    """One line of a `hardware` record: CPU, torch's CPU capability, threads ("CPU not recorded" for records made
    before the CPU was)."""
    parts = [info.get("cpu") or "CPU not recorded", info.get("torch_cpu_capability"),
             info.get("torch_threads") and f"{info['torch_threads']} torch thread(s)"]
    return ", ".join(str(part) for part in parts if part)


def _cpuinfo(field: str) -> str | None:
    """The first `field` of Linux's /proc/cpuinfo; None where there is no such file or field."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.split(":", 1)[0].strip() == field:
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return None


def cpu_model() -> str:
    """The CPU's model name (/proc/cpuinfo), else what `platform.processor` says, else "unknown"."""
    return _cpuinfo("model name") or platform.processor() or "unknown"


def native_bf16() -> bool | None:
    """Whether the CPU computes bfloat16 natively (the avx512_bf16 or amx_bf16 flag in /proc/cpuinfo); where it
    does not, PyTorch emulates it, about ten times slower (scripts/bench_sft_precision.py). None: not known."""
    flags = _cpuinfo("flags")
    return None if flags is None else bool({"avx512_bf16", "amx_bf16"} & set(flags.split()))


PROVENANCE_FIELDS = ("profile", "seed", "created", "versions", "hardware")  # what `provenance` always records


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


def folder_fingerprint(folder: str | os.PathLike | None) -> list[list[Any]] | None:
    """The relative names, sizes and modification times of the files in `folder` (hidden ones left out), sorted:
    part of a cache key for what was made from a local model folder (a changed or rewritten file changes it)."""
    if folder is None:
        return None
    root = Path(folder)
    return sorted([str(f.relative_to(root)), f.stat().st_size, f.stat().st_mtime_ns]
                  for f in root.rglob("*") if f.is_file() and not f.name.startswith("."))


def text_digest(texts: Sequence[str]) -> str:
    """sha256 of texts joined by NUL: part of a cache key for what was computed from exactly these texts."""
    return hashlib.sha256("\x00".join(texts).encode()).hexdigest()


def config_key(config: Any, length: int = 12) -> str:
    """A short stable hash of a JSON-serialisable config: cache entries are named by what made them."""
    blob = json.dumps(config, sort_keys=True, default=_json_default).encode()
    return hashlib.sha256(blob).hexdigest()[:length]


class FolderInUse(RuntimeError):
    """Another process holds the folder's lock (`folder_lock`)."""


@contextmanager
def folder_lock(folder: str | os.PathLike, wait: bool = False, busy: str | None = None) -> Iterator[None]:
    """Hold an exclusive lock on `folder` (created if missing) while the block runs, so that two processes never
    write the same checkpoints. When another process holds it: with ``wait=False`` raise `FolderInUse` at once;
    with ``wait=True`` log that this process waits, and wait until the holder ends (then re-check whatever the
    holder was making: it may be done). `busy` is the error's message (default: the folder is in use). Locks are per open file, so a second `folder_lock` in the same process
    conflicts too."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    with open(folder / LOCK_FILE, "w") as handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            if not wait:
                raise FolderInUse(busy or f"{folder} is in use by another process") from None
            logger.warning("%s is in use by another process; waiting for it to finish", folder)
            fcntl.flock(handle, fcntl.LOCK_EX)
        yield


def folder_in_use(folder: str | os.PathLike) -> bool:
    """Whether another process holds `folder_lock` on `folder` (False for a folder never locked)."""
    if not (Path(folder) / LOCK_FILE).exists():  # never started: nothing to create for it here
        return False
    try:
        with folder_lock(folder):
            return False
    except FolderInUse:
        return True


def last_complete_checkpoint(output_dir: str | os.PathLike) -> str | None:
    """The newest ``checkpoint-N`` folder of a Trainer run that a kill did not cut short, or None.

    A checkpoint counts as complete when its ``trainer_state.json`` parses and model weights are present
    (transformers writes the state after the weights and optimiser). A newer, incomplete one, which is what a
    kill during saving leaves, would make ``resume_from_checkpoint`` fail; it is removed, so the rerun
    resumes from the last good checkpoint and repeats the lost steps.
    """
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


def _json_default(obj: Any) -> Any:
    if hasattr(obj, "tolist"):  # numpy / torch scalars and arrays
        return obj.tolist()
    if isinstance(obj, Path):
        return str(obj)
    raise TypeError(f"cannot serialise {type(obj).__name__} to JSON")
