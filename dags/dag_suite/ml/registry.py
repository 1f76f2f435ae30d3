"""A local model registry: versioned artifacts in folders, one `CURRENT` pointer per model, rollback.

Layout, under the suite's data dir (`paths.folder("models", <model_name>)`):

    models/<model_name>/CURRENT            the deployed version number; replaced atomically (os.replace)
    models/<model_name>/<version>/model.pkl       the pickled scikit-learn pipeline
    models/<model_name>/<version>/metadata.json   version, trained_at, metrics, features, window, distributions
    models/<model_name>/.candidates/<run>/        a training run's model before the quality gate

Versions are 1, 2, 3...; a version counts once its metadata.json exists (written last, atomically).
Roll back from a shell (data dir from AIRFLOW_OBS_DATA_DIR):
    PYTHONPATH=dags python -m dag_suite.ml.registry rollback return_model [--to VERSION]
"""

from __future__ import annotations

import argparse
import json
import os
import pickle
import re
import shutil
import tempfile
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from dag_suite import paths

MODEL_FILE = "model.pkl"
METADATA_FILE = "metadata.json"
CURRENT_FILE = "CURRENT"
CANDIDATES = ".candidates"
MAX_VERSION_ATTEMPTS = 100


class RegistryError(RuntimeError):
    """The registry cannot do what was asked: no such version, nothing to roll back to, a broken pointer."""


def model_dir(model_name: str) -> Path:
    return paths.folder("models", model_name)


def versions(model_name: str) -> list[int]:
    """Complete versions (with metadata.json), oldest first."""
    root = model_dir(model_name)
    found = (int(p.name) for p in root.iterdir() if p.name.isdigit() and (p / METADATA_FILE).is_file())
    return sorted(found)


def _atomic_write(path: Path, text: str) -> None:
    handle, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    with os.fdopen(handle, "w") as out:
        out.write(text)
    os.replace(temporary, path)


def current_version(model_name: str) -> int | None:
    """The deployed version, or None when no model was ever deployed."""
    pointer = model_dir(model_name) / CURRENT_FILE
    if not pointer.is_file():
        return None
    text = pointer.read_text().strip()
    if not text.isdigit() or int(text) not in versions(model_name):
        raise RegistryError(f"{pointer} points at {text!r}, which is not a complete version of {model_name}")
    return int(text)


def set_current(model_name: str, version: int) -> None:
    if version not in versions(model_name):
        raise RegistryError(f"{model_name} has no version {version}: versions are {versions(model_name)}")
    _atomic_write(model_dir(model_name) / CURRENT_FILE, f"{version}\n")


def load_metadata(model_name: str, version: int) -> dict[str, Any]:
    return json.loads((model_dir(model_name) / str(version) / METADATA_FILE).read_text())


def load_model(model_name: str, version: int) -> Any:
    # Artifacts are written only by the training DAG into the suite's own data dir.
    with (model_dir(model_name) / str(version) / MODEL_FILE).open("rb") as handle:
        return pickle.load(handle)  # noqa: S301


def candidate_dir(model_name: str, run_id: str) -> Path:
    """Where a training run keeps its data and model until the quality gate lets it through."""
    return model_dir(model_name) / CANDIDATES / re.sub(r"[^A-Za-z0-9_.-]", "_", run_id)


def clear_candidates(model_name: str) -> int:
    """Remove earlier runs' leftover candidates (failed gates); the DAG runs one at a time."""
    root = model_dir(model_name) / CANDIDATES
    leftovers = [p for p in root.iterdir() if p.is_dir()] if root.is_dir() else []
    for leftover in leftovers:
        shutil.rmtree(leftover)
    return len(leftovers)


def write_candidate(folder: Path, model: Any, metadata: dict[str, Any]) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / MODEL_FILE).write_bytes(pickle.dumps(model))
    (folder / METADATA_FILE).write_text(json.dumps(metadata, indent=2, sort_keys=True))
    return folder


def _reserve_version(model_name: str) -> tuple[int, Path]:
    root = model_dir(model_name)
    for _ in range(MAX_VERSION_ATTEMPTS):
        taken = [int(p.name) for p in root.iterdir() if p.name.isdigit()]
        version = max(taken, default=0) + 1
        try:
            (root / str(version)).mkdir()
        except FileExistsError:
            continue
        return version, root / str(version)
    raise RegistryError(f"could not reserve a new version of {model_name} in {MAX_VERSION_ATTEMPTS} attempts")


def deploy(model_name: str, candidate: Path) -> int:
    """Publish a candidate as the next version and point CURRENT at it; returns the version."""
    metadata = json.loads((candidate / METADATA_FILE).read_text())
    version, target = _reserve_version(model_name)
    os.replace(candidate / MODEL_FILE, target / MODEL_FILE)
    metadata.update(version=version, deployed_at=datetime.now(UTC).isoformat())
    _atomic_write(target / METADATA_FILE, json.dumps(metadata, indent=2, sort_keys=True))
    set_current(model_name, version)
    shutil.rmtree(candidate, ignore_errors=True)
    return version


def rollback(model_name: str, to_version: int | None = None) -> int:
    """Point CURRENT at `to_version`, or at the newest version older than the current one; returns it."""
    current = current_version(model_name)
    if to_version is None:
        if current is None:
            raise RegistryError(f"{model_name} has no deployed version to roll back from")
        older = [version for version in versions(model_name) if version < current]
        if not older:
            raise RegistryError(f"{model_name} version {current} is the oldest: nothing to roll back to")
        to_version = older[-1]
    set_current(model_name, to_version)
    return to_version


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m dag_suite.ml.registry", description="The local model registry")
    commands = parser.add_subparsers(dest="command", required=True)
    commands.add_parser("status", help="versions and the current one").add_argument("model_name")
    back = commands.add_parser("rollback", help="point CURRENT at the previous (or a given) version")
    back.add_argument("model_name")
    back.add_argument("--to", type=int, default=None, help="version to roll back to (default: the previous one)")
    args = parser.parse_args(argv)
    if args.command == "rollback":
        print(f"{args.model_name}: CURRENT -> {rollback(args.model_name, args.to)}")
    else:
        print(f"{args.model_name}: versions {versions(args.model_name)}, current {current_version(args.model_name)}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
