"""All disk I/O for weights: safetensors + JSON, atomic writes, no pickles.

A saved folder holds ``config.json`` (what it is and how to rebuild it) and ``*.safetensors``.
A save writes a complete new folder beside the path (``.NAME.tmp-PID-*``) and swaps it in with
one atomic exchange (Linux ``renameat2(RENAME_EXCHANGE)``; a plain rename when the path is new),
so at every instant the path holds either the old complete folder or the new complete one, also
with two writers. Entries of the old folder genunlearn did not write (the user's notes, sub-folders,
an ``evaluate`` ``metrics.json``) are carried into the new folder and named; the folder's own files
are listed in ``.genunlearn-files.json``. A symlinked path is followed (the link stays), leftovers of
killed saves are removed, and new files and folders get the user's umask.
"""

from __future__ import annotations

import json
import os
import shutil
import sys
import tempfile
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Iterator

from genunlearn.errors import GenUnlearnError

FORMAT = "genunlearn"
FORMAT_VERSION = 1
PICKLE_MAGIC = (b"\x80", b"PK\x03\x04")  # raw pickle protocol >= 2, or torch's zip container
MANIFEST = ".genunlearn-files.json"  # the entries of a folder genunlearn wrote


def save_step(step: str, target: Path) -> None:
    """A save to ``target`` has reached ``step`` (tmp, written, carried, swapped). Nothing happens here:
    the seam where the kill tests (``tests/test_robustness*.py``) stop a process mid-save."""


def umask() -> int:
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def _chmod_default(path: Path, is_dir: bool) -> None:
    """mkdtemp/mkstemp create 0700/0600; give what open()/mkdir() would under the user's umask."""
    os.chmod(path, (0o777 if is_dir else 0o666) & ~umask())


def _chmod_tree(root: Path) -> None:
    """Give everything a save wrote under ``root`` the user's umask: writers such as safetensors'
    ``save_file`` create 0600 files whatever the umask says."""
    for dirpath, dirnames, filenames in os.walk(root):
        for name in dirnames:
            _chmod_default(Path(dirpath) / name, True)
        for name in filenames:
            _chmod_default(Path(dirpath) / name, False)


def resolve_out(path: str | os.PathLike) -> Path:
    """The path a write lands on: symlinks followed (the link itself stays), made absolute."""
    p = Path(os.path.abspath(path))
    for _ in range(40):
        if not p.is_symlink():
            return p
        p = Path(os.path.abspath(p.parent / os.readlink(p)))
    raise GenUnlearnError(f"{path}: too many levels of symbolic links")


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except (PermissionError, OverflowError):
        return True
    return True


def clean_stale(parent: Path, name: str) -> list[Path]:
    """Remove leftovers of killed saves of ``parent/name`` (their writer is gone); returns them."""
    removed = []
    if not parent.is_dir():
        return removed
    for prefix in (f".{name}.tmp-", f".{name}.old-"):
        for p in parent.glob(f"{prefix}*"):
            rest = p.name[len(prefix) :]
            head = rest.split("-", 1)[0]
            if head.isdigit() and len(rest) > len(head):  # .NAME.tmp-PID-XXXX
                stale = int(head) != os.getpid() and not _pid_alive(int(head))
            elif head.isdigit():  # .NAME.old-PID (older releases)
                stale = not _pid_alive(int(head))
            else:  # older releases wrote .NAME.tmp-XXXX with no pid: nobody can still be writing it
                stale = True
            if stale:
                if p.is_dir() and not p.is_symlink():
                    shutil.rmtree(p, ignore_errors=True)
                else:
                    p.unlink(missing_ok=True)
                removed.append(p)
    return removed


def _nearest_existing(path: Path) -> Path:
    p = path
    while not os.path.lexists(p) and p != p.parent:
        p = p.parent
    return p


def check_writable(path: str | os.PathLike, *, folder: bool, what: str = "--out") -> Path:
    """Check before any work that ``path`` (a folder or a file) can be written; one line if not.
    Returns the resolved path (symlinks followed)."""
    target = resolve_out(path)
    shown = f"{what} {path}" if what else str(path)
    if target != Path(os.path.abspath(path)) and not target.parent.is_dir():
        raise GenUnlearnError(f"{shown} is a symlink to {target}, whose folder does not exist")
    if target.exists():
        if folder and not target.is_dir():
            raise GenUnlearnError(f"{shown} exists and is not a folder; refusing to overwrite it")
        if not folder and target.is_dir():
            raise GenUnlearnError(f"{shown} is a folder; expected a file path")
    base = _nearest_existing(target.parent)
    if not base.is_dir():
        raise GenUnlearnError(f"{shown}: {base} is a file, not a folder")
    try:  # ask the file system itself (permissions, read-only mounts, immutable folders; root too)
        probe = tempfile.mkdtemp(prefix=f".genunlearn-probe-{os.getpid()}-", dir=base)
        os.rmdir(probe)
    except OSError as e:
        raise GenUnlearnError(f"{shown}: cannot write in {base} ({e.strerror or e})") from None
    return target


def _mkdirs(path: Path) -> None:
    try:
        path.mkdir(parents=True, exist_ok=True)
    except FileExistsError:
        raise GenUnlearnError(f"{_nearest_existing(path)} is a file, not a folder") from None


_RENAME_EXCHANGE = 2


def _exchange(a: Path, b: Path) -> bool:
    """Atomically swap two paths (Linux renameat2); False where the system cannot."""
    if not sys.platform.startswith("linux"):
        return False
    import ctypes

    try:
        libc = ctypes.CDLL(None, use_errno=True)
        fn = libc.renameat2
    except (OSError, AttributeError):
        return False
    if fn(-100, os.fsencode(a), -100, os.fsencode(b), _RENAME_EXCHANGE) == 0:
        return True
    err = ctypes.get_errno()
    if err in (22, 38, 95):  # EINVAL, ENOSYS, EOPNOTSUPP: this file system cannot exchange
        return False
    raise OSError(err, os.strerror(err), str(b))


def _link_or_copy(src, dst):
    try:
        os.link(src, dst)
    except OSError:
        shutil.copy2(src, dst)


def _own_entries(folder: Path) -> set[str]:
    try:
        return set(json.loads((folder / MANIFEST).read_text())["files"])
    except (OSError, ValueError, KeyError, TypeError):
        return set()


def _carry_over(old: Path, new: Path) -> list[str]:
    """Copy (hard-link) the entries of ``old`` genunlearn did not write into ``new``."""
    if not old.is_dir():
        return []
    own = _own_entries(old) | {MANIFEST}
    kept = []
    for p in sorted(old.iterdir()):
        if p.name in own or os.path.lexists(new / p.name):
            continue
        if p.is_symlink():
            os.symlink(os.readlink(p), new / p.name)
        elif p.is_dir():
            shutil.copytree(p, new / p.name, symlinks=True, copy_function=_link_or_copy)
        else:
            _link_or_copy(p, new / p.name)
        kept.append(p.name + ("/" if p.is_dir() else ""))
    return kept


@contextmanager
def atomic_dir(path: str | os.PathLike, *, quiet: bool = False) -> Iterator[Path]:
    """Yield a temporary folder; on success it replaces ``path`` in one atomic swap.

    At every instant ``path`` holds the old complete folder or the new complete one. Entries of
    the old folder that genunlearn did not write are kept (and named on stderr)."""
    target = resolve_out(path)
    _mkdirs(target.parent)
    clean_stale(target.parent, target.name)
    if os.path.lexists(target) and not target.is_dir():
        raise GenUnlearnError(f"{path} exists and is not a folder; refusing to overwrite it")
    tmp = Path(tempfile.mkdtemp(prefix=f".{target.name}.tmp-{os.getpid()}-", dir=target.parent))
    _chmod_default(tmp, True)
    save_step("tmp", target)
    try:
        yield tmp
        save_step("written", target)
        own = sorted(p.name for p in tmp.iterdir())
        _chmod_tree(tmp)
        kept = _carry_over(target, tmp)
        (tmp / MANIFEST).write_text(json.dumps({"files": own}) + "\n")
        save_step("carried", target)
        try:
            os.rename(tmp, target)  # the path is new (or an empty folder): one rename
            swapped = False
        except OSError:
            if not target.is_dir():
                raise
            swapped = _exchange(tmp, target)
            if not swapped:  # no atomic exchange here: rename aside, then in (the old survives as .old-PID)
                old = target.with_name(f".{target.name}.old-{os.getpid()}")
                os.replace(target, old)
                os.replace(tmp, target)
                shutil.move(old, tmp)
                swapped = True
        save_step("swapped", target)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    if swapped:
        shutil.rmtree(tmp, ignore_errors=True)  # now the old folder
    if kept and not quiet:
        print(f"note: {path}: replaced the model's own files, kept yours: {', '.join(kept)}", file=sys.stderr)


@contextmanager
def atomic_file(path: str | os.PathLike) -> Iterator[Path]:
    """A temporary path beside ``path`` to write; renamed onto ``path`` when the block succeeds,
    removed when it fails (symlinks followed, umask honoured)."""
    path = resolve_out(path)
    _mkdirs(path.parent)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.tmp-{os.getpid()}-", dir=path.parent)
    os.close(fd)
    try:
        yield Path(tmp)
        _chmod_default(Path(tmp), False)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def atomic_write_text(path: str | os.PathLike, text: str) -> None:
    """Write a text file through a temporary file and a rename."""
    with atomic_file(path) as tmp:
        tmp.write_text(text)


def write_json(path: str | os.PathLike, obj: Any) -> None:
    atomic_write_text(path, json.dumps(obj, indent=2, sort_keys=True) + "\n")


def read_json(path: str | os.PathLike) -> dict:
    path = Path(path)
    if not path.is_file():
        raise GenUnlearnError(f"{path}: not found")
    try:
        obj = json.loads(path.read_text())
    except (UnicodeDecodeError, json.JSONDecodeError) as e:
        raise GenUnlearnError(f"{path}: not valid JSON ({e.__class__.__name__})") from None
    if not isinstance(obj, dict):
        raise GenUnlearnError(f"{path}: expected a JSON object")
    return obj


def save_tensors(path: str | os.PathLike, tensors: dict, metadata: dict[str, str] | None = None) -> None:
    """Save a flat name → tensor dict as safetensors (contiguous, CPU copies; ``metadata`` in its header)."""
    from safetensors.torch import save_file

    save_file({k: v.detach().cpu().contiguous() for k, v in tensors.items()}, str(path), metadata=metadata)
    _chmod_default(Path(path), False)  # save_file creates 0600


def load_tensors(path: str | os.PathLike) -> dict:
    """Load safetensors; a pickle or any other file fails with one line and is never executed."""
    from safetensors import SafetensorError
    from safetensors.torch import load_file

    path = Path(path)
    if not path.is_file():
        raise GenUnlearnError(f"{path}: weights file not found")
    with open(path, "rb") as f:
        head = f.read(4)
    if head[:1] == PICKLE_MAGIC[0] or head == PICKLE_MAGIC[1]:
        raise GenUnlearnError(f"{path}: looks like a pickle/torch.save file; only safetensors are loaded")
    try:
        return load_file(str(path))
    except (SafetensorError, OSError, ValueError, RuntimeError) as e:
        raise GenUnlearnError(f"{path}: corrupt or not a safetensors file ({str(e).splitlines()[0]})") from None


def read_config(folder: str | os.PathLike, kind: str | None = None) -> dict:
    """Read and check a genunlearn ``config.json``; ``kind`` (e.g. "generative") must match if given."""
    folder = Path(folder)
    if not folder.is_dir():
        raise GenUnlearnError(f"{folder}: not a folder (expected a saved genunlearn model)")
    cfg = read_json(folder / "config.json")
    if cfg.get("format") != FORMAT:
        raise GenUnlearnError(f"{folder}: not a genunlearn checkpoint (config.json has no 'format': '{FORMAT}')")
    if cfg.get("format_version", 0) > FORMAT_VERSION:
        raise GenUnlearnError(f"{folder}: written by a newer genunlearn (format {cfg['format_version']})")
    if kind is not None and cfg.get("kind") != kind:
        raise GenUnlearnError(f"{folder}: holds a {cfg.get('kind')!r} model, expected a {kind!r} one")
    check_config_values(cfg, folder)
    return cfg


# sizes a network or process config must hold as positive integers (or lists of them)
POSITIVE_KEYS = {
    "dim",
    "hidden",
    "depth",
    "in_channels",
    "out_channels",
    "base_channels",
    "channel_mult",
    "emb_dim",
    "channels",
    "feature_dim",
    "heads",
    "patch",
    "enc_dim",
    "enc_depth",
    "dec_dim",
    "dec_depth",
    "size",
    "steps",
    "sample_size",
    "layers_per_block",
    "block_out_channels",
    "num_train_timesteps",
    "sample_shape",
}


def check_config_values(cfg: dict, folder) -> None:
    """Impossible values in a config.json (non-finite numbers; sizes and step counts < 1) are one
    line naming the entry, before anything is built from them."""
    import math

    def walk(obj, where: str, positive: bool):
        if isinstance(obj, bool) or obj is None or isinstance(obj, str):
            return
        if isinstance(obj, float) and not math.isfinite(obj):
            raise GenUnlearnError(f"{folder}/config.json: {where} is {obj}; expected a finite number")
        if isinstance(obj, (int, float)):
            if positive and not (obj >= 1 and float(obj).is_integer()):
                raise GenUnlearnError(f"{folder}/config.json: {where} is {obj}; expected a whole number >= 1")
            return
        if isinstance(obj, dict):
            for k, v in obj.items():
                walk(v, f"{where}.{k}" if where else str(k), k in POSITIVE_KEYS and k not in ("cond_vocab",))
        elif isinstance(obj, (list, tuple)):
            if positive and not obj and where.endswith("sample_shape"):
                raise GenUnlearnError(f"{folder}/config.json: {where} is empty")
            for i, v in enumerate(obj):
                walk(v, f"{where}[{i}]", positive)

    for entry in ("network", "process", "data"):
        if entry in cfg:
            if not isinstance(cfg[entry], dict):
                raise GenUnlearnError(f"{folder}/config.json: {entry!r} must be an object")
            walk(cfg[entry], entry, False)


def header(kind: str, **fields: Any) -> dict:
    """The common head of every config.json we write."""
    from genunlearn import __version__

    return {"format": FORMAT, "format_version": FORMAT_VERSION, "kind": kind, "genunlearn": __version__, **fields}
