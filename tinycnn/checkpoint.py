"""Checkpoints: one .npz file with the weights, buffers, optimizer state and a JSON description.

Layout of the archive (every entry a plain array, so np.load(..., allow_pickle=False) reads it):
    param/<name>       each parameter, e.g. param/conv1.weight
    buffer/<name>      each buffer, e.g. buffer/bn1.running_mean
    velocity/<name>    SGD's momentum for each parameter
    array/<key>        any other arrays the caller keeps (the preprocessing's mean image, ...)
    meta               a JSON string: model configuration, class names, epoch, RNG states, history, ...

Writes go to a temporary file in the same folder that is then renamed over the target, so a crash or a kill
mid-write leaves the previous checkpoint intact (atomic_open; every file a run writes goes through it). The
temporary file is named after the target and the writer's process id (.last.npz.1234.tmp, the target's name cut
short when it is too long for that); the next write removes those left behind by writers that no longer run.
"""
import contextlib
import glob
import json
import os

import numpy as np


class CheckpointError(ValueError):
    """A checkpoint file that cannot be read or does not fit the model."""


def save(path, model, meta, optimizer=None, arrays=None):
    entries = {f"param/{name}": p.data for name, p in model.named_parameters()}
    entries.update({f"buffer/{name}": b for name, b in model.named_buffers()})
    if optimizer is not None:
        names = {id(p): name for name, p in model.named_parameters()}
        entries.update({f"velocity/{names[id(p)]}": v for p, v in zip(optimizer.parameters, optimizer.velocity)})
    entries.update({f"array/{key}": np.asarray(value) for key, value in (arrays or {}).items()})
    for key, value in entries.items():
        if value.dtype.kind == "f" and not np.isfinite(value).all():
            raise CheckpointError(f"{path}: refusing to save {key}, it holds NaN or inf")
    entries["meta"] = np.array(json.dumps(meta))
    with atomic_open(path) as f:
        np.savez(f, **entries)


@contextlib.contextmanager
def atomic_open(path, mode="wb", **kwargs):
    """Open a temporary file beside `path` for writing; when the block ends, rename it over `path`.

    Readers see the old file or the new one, never half of one: an error, Ctrl-C or a kill mid-write leaves
    the old file as it was (the temporary file is removed, or after a kill, by the next write).
    """
    folder, name = os.path.split(os.path.abspath(path))
    os.makedirs(folder, exist_ok=True)
    remove_dead_writers_files(folder, name)
    tmp = os.path.join(folder, temporary_name(name, os.getpid()))
    try:
        with open(tmp, mode, **kwargs) as f:
            yield f
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.remove(tmp)
        raise


NAME_MAX = 255          # bytes in one file name, on Linux's and macOS's file systems
_PID_DIGITS = 10        # room kept for the process id in a temporary name


def temporary_name(name, pid):
    """.<name>.<pid>.tmp, <name> cut short so the whole is a legal file name for any legal <name>."""
    room = NAME_MAX - len(f"..{'9' * _PID_DIGITS}.tmp")
    return f".{os.fsdecode(os.fsencode(name)[:room])}.{pid}.tmp"


def check_writable_folder(path, flag, files=()):
    """Raise ValueError naming `flag` unless `path` is a folder this process can write in, or can create, and
    the `files` it will hold (and their temporary names) are names its file system takes.

    Called before any data is loaded, so a bad --out is not found after an epoch of training.
    """
    problem = _folder_problem(path) or next(filter(None, (_name_problem(os.path.join(path, f)) for f in files)), None)
    if problem:
        raise ValueError(f"{flag} {path}: {problem}")


def check_writable_file(path, flag):
    """Raise ValueError naming `flag` unless a file can be written at `path` (its folder is created if missing)."""
    if os.path.isdir(path):
        raise ValueError(f"{flag} {path}: is a folder; expected a file name")
    folder = os.path.dirname(os.path.abspath(path))
    problem = _folder_problem(folder)
    if problem:
        raise ValueError(f"{flag} {path}: cannot be written, its folder {folder} {problem}")
    problem = _name_problem(path)
    if problem:
        raise ValueError(f"{flag} {path}: cannot be written, it {problem}")


def _folder_problem(folder):
    """Why files cannot be written in `folder` (created if missing), or None."""
    if os.path.exists(folder) and not os.path.isdir(folder):
        return "is a file; expected a folder"
    existing = os.path.abspath(folder)
    while not os.path.exists(existing):
        existing = os.path.dirname(existing)
    if not os.path.isdir(existing):
        return f"cannot be created, {existing} is a file"
    if not os.access(existing, os.W_OK | os.X_OK):
        return f"cannot be written, no permission to write in {existing}"
    return _name_problem(folder)


def _name_problem(path):
    """Why the file system refuses the name `path` (a name in it, or the whole of it and of the temporary file
    written beside it, too long: "[Errno 36] File name too long"), or None."""
    path = os.path.abspath(path)
    for name in path.split(os.sep):
        if len(os.fsencode(name)) > NAME_MAX:
            return f"has a name of {len(os.fsencode(name))} bytes ({name[:16]}...); expected at most {NAME_MAX}"
    longest = os.path.join(os.path.dirname(path), temporary_name(os.path.basename(path), "9" * _PID_DIGITS))
    path_max = os.pathconf("/", "PC_PATH_MAX") if hasattr(os, "pathconf") else 4096
    if max(len(os.fsencode(path)), len(os.fsencode(longest))) >= path_max:
        return f"is {len(os.fsencode(path))} bytes long in all; expected well under {path_max}"
    return None


def remove_dead_writers_files(folder, name):
    """Delete .<name>.<pid>.tmp files whose writing process has ended (it was killed mid-write)."""
    short = temporary_name(name, "*")[1:-len(".*.tmp")]
    for tmp in glob.glob(os.path.join(glob.escape(folder), f".{glob.escape(short)}.*.tmp")):
        pid = tmp[:-len(".tmp")].rsplit(".", 1)[-1]
        if pid.isdigit() and not process_is_running(int(pid)):
            try:
                os.remove(tmp)
            except FileNotFoundError:                   # another process cleaned it up first
                pass


def process_is_running(pid):
    try:
        os.kill(pid, 0)                                 # signal 0: only asks whether the process exists
    except ProcessLookupError:
        return False
    except PermissionError:                             # it exists but belongs to someone else
        return True
    return True


def read_npz(path, keys=None, expected="an .npz archive of arrays"):
    """-> {name: array} from an .npz file (only `keys`, if given). Never unpickles: a file holding objects is
    refused. Every error is a ValueError that names the file, says what is wrong and what was `expected`."""
    try:
        with open(path, "rb") as f:
            magic = f.read(6)
    except FileNotFoundError:
        raise ValueError(f"{path}: no such file; expected {expected}") from None
    except OSError as error:
        raise ValueError(f"{path}: cannot be read ({error.strerror}); expected {expected}") from None
    if magic.startswith(b"\x93NUMPY"):
        raise ValueError(f"{path}: is a single .npy array, not an .npz archive; expected {expected}")
    if not magic.startswith((b"PK\x03\x04", b"PK\x05\x06")):        # every .npz is a zip archive
        raise ValueError(f"{path}: not an .npz archive (it is not a zip file); expected {expected}")
    try:
        with np.load(path, allow_pickle=False) as archive:
            return {key: archive[key] for key in archive.files if keys is None or key in keys}
    except ValueError as error:
        if "allow_pickle" in str(error) or "Object arrays" in str(error):
            raise ValueError(f"{path}: refusing to load pickled objects; expected {expected}, which holds only "
                             f"plain arrays") from None
        raise ValueError(f"{path}: not a readable .npz archive ({error})") from None
    except Exception as error:           # zip and format errors from a truncated or corrupt file
        raise ValueError(f"{path}: corrupt or truncated .npz archive ({type(error).__name__}: {error})") from None


def read(path, meta_only=False):
    """-> (entries: dict name -> array, meta: dict). Never unpickles: a file holding objects is refused.

    meta_only: read only the JSON description (entries is then empty), which is quick for any model size.
    """
    try:
        entries = read_npz(path, keys=("meta",) if meta_only else None, expected="a tinycnn checkpoint")
    except ValueError as error:
        raise CheckpointError(str(error)) from None
    if "meta" not in entries:
        raise CheckpointError(f"{path}: not a tinycnn checkpoint (no 'meta' entry)")
    try:
        meta = json.loads(str(entries.pop("meta")))
    except ValueError as error:
        raise CheckpointError(f"{path}: not a tinycnn checkpoint (its 'meta' entry is not JSON: {error})") from None
    return entries, meta


def restore(path, model, entries, optimizer=None):
    """Copy weights and buffers (and SGD's velocity) from `entries` into `model`, checking every name and shape."""
    own = dict(model.named_parameters())
    buffers = dict(model.named_buffers())
    stored = {k[len("param/"):] for k in entries if k.startswith("param/")}
    if stored != set(own):
        missing, extra = sorted(set(own) - stored), sorted(stored - set(own))
        raise CheckpointError(f"{path}: parameters do not match the model (missing {missing[:5]}, "
                              f"unexpected {extra[:5]})")
    for name, target in [(n, p.data) for n, p in own.items()] + list(buffers.items()):
        key = ("param/" if name in own else "buffer/") + name
        if key not in entries:
            raise CheckpointError(f"{path}: missing {key}")
        if entries[key].shape != target.shape:
            raise CheckpointError(f"{path}: {key} has shape {entries[key].shape}, the model expects "
                                  f"{target.shape}")
        target[...] = entries[key]
    if optimizer is not None:
        names = {id(p): n for n, p in own.items()}
        for p, v in zip(optimizer.parameters, optimizer.velocity):
            key = f"velocity/{names[id(p)]}"
            if key in entries:
                v[...] = entries[key]
