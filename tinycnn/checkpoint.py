"""Checkpoints: one .npz file with the weights, buffers, optimizer state and a JSON description.

Layout of the archive (every entry a plain array, so np.load(..., allow_pickle=False) reads it):
    param/<name>       each parameter, e.g. param/conv1.weight
    buffer/<name>      each buffer, e.g. buffer/bn1.running_mean
    velocity/<name>    SGD's momentum for each parameter
    array/<key>        any other arrays the caller keeps (the preprocessing's mean image, ...)
    meta               a JSON string: model configuration, class names, epoch, RNG states, history, ...

Writes go to a temporary file in the same folder that is then renamed over the target, so a crash or a kill
mid-write leaves the previous checkpoint intact. The temporary file is named after the target and the writer's
process id (.last.npz.1234.tmp); the next save removes those left behind by writers that no longer run.
"""
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
    folder, name = os.path.split(os.path.abspath(path))
    os.makedirs(folder, exist_ok=True)
    remove_dead_writers_files(folder, name)
    tmp = os.path.join(folder, f".{name}.{os.getpid()}.tmp")
    try:
        with open(tmp, "wb") as f:
            np.savez(f, **entries)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.remove(tmp)
        raise


def remove_dead_writers_files(folder, name):
    """Delete .<name>.<pid>.tmp files whose writing process has ended (it was killed mid-write)."""
    for tmp in glob.glob(os.path.join(glob.escape(folder), f".{glob.escape(name)}.*.tmp")):
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


def read(path, meta_only=False):
    """-> (entries: dict name -> array, meta: dict). Never unpickles: a file holding objects is refused.

    meta_only: read only the JSON description (entries is then empty), which is quick for any model size.
    """
    try:
        with open(path, "rb") as f:
            magic = f.read(4)
    except FileNotFoundError:
        raise CheckpointError(f"{path}: no such checkpoint file") from None
    except OSError as error:
        raise CheckpointError(f"{path}: cannot be read ({error.strerror})") from None
    if magic != b"PK\x03\x04":                          # every .npz is a zip archive
        raise CheckpointError(f"{path}: not a checkpoint (expected an .npz archive written by tinycnn)")
    try:
        with np.load(path, allow_pickle=False) as archive:
            entries = {key: archive[key] for key in archive.files if key == "meta" or not meta_only}
        meta = json.loads(str(entries.pop("meta")))
    except KeyError:
        raise CheckpointError(f"{path}: not a tinycnn checkpoint (no 'meta' entry)") from None
    except ValueError as error:
        if "allow_pickle" in str(error) or "Object arrays" in str(error):
            raise CheckpointError(f"{path}: refusing to load pickled objects; a tinycnn checkpoint holds only "
                                  f"plain arrays") from None
        raise CheckpointError(f"{path}: not a readable checkpoint ({error})") from None
    except Exception as error:           # zip and format errors from a truncated or corrupt file
        raise CheckpointError(f"{path}: corrupt or truncated checkpoint ({type(error).__name__}: {error})") from None
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
