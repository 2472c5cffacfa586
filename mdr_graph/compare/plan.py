"""What `compare` runs: the model registry, the inputs each model needs, and why one is skipped.

Every entry of the comparison is a :class:`RunSpec`: a name (its directory under the
compare output), how it is produced (``tabular`` non-neural baseline, ``neural`` run
through the ``train`` loop, or an ``ensemble`` of other runs), the modalities it sees and
the :class:`~mdr_graph.train.config.TrainConfig` fields it changes. Planning is pure: it
looks at what inputs exist (:class:`Available`) and returns the specs, each either
runnable or carrying the one-line reason it is skipped.

The unimodal baselines (``gat-only``, ``audio-mlp``, ``vision-only``) use the
``concat-mlp`` architecture on a single modality: the modality's encoder followed by an
MLP head and a sigmoid, which is literally "frozen GAT + FC", "MFCC MLP" and "ViT +
regression head" of the reference designs.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from pathlib import Path

from mdr_graph import modalities as registry
from mdr_graph.errors import UserError

UNIMODAL_ARCHITECTURE = "concat-mlp"

# Models in the order of the report's table. kind: tabular | neural | ensemble. A tabular
# model's ``inputs`` are what it reads, as the report lists them ("song"/"creator" are ids, not modalities).
MODELS: dict[str, dict] = {
    "coattention": dict(kind="neural", description="the full model: N-modality co-attention Transformer"),
    "global-mean": dict(kind="tabular", inputs=[], description="mean training target for every video"),
    "song-mean": dict(kind="tabular", inputs=["song"], description="mean training target of the video's song, else the global mean"),
    "creator-mean": dict(kind="tabular", inputs=["creator"],
                         description="mean training target of the video's creator, else the global mean"),
    "meta-linear": dict(kind="tabular", inputs=["meta"], description="ridge regression on pre-publication metadata"),
    "text-ridge": dict(kind="tabular", inputs=["text"],
                       description="ridge on hashed word and character n-grams of caption and hashtags"),
    "gbdt": dict(kind="tabular", inputs=["meta", "labels", "text"],
                 description="LightGBM on metadata, the leak-free labels features and the out-of-fold text ridge"),
    "gat-only": dict(kind="neural", description="frozen GAT embedding + FC (the reference design's GAT baseline)"),
    "text-only": dict(kind="neural", description="the text modality alone (it must reach text-ridge)"),
    "audio-mlp": dict(kind="neural", description="MFCC only, Audio-MLP"),
    "vision-only": dict(kind="neural", description="ViT over the sampled frames (ViViT-style)"),
    "late-fusion": dict(kind="neural", description="separate visual and audio Transformers, decision-level "
                                                   "weighted average (Georgia Tech student project)"),
    "concat-mlp": dict(kind="neural", description="early fusion by concatenation + MLP (SiMVC-style)"),
    "single-transformer": dict(kind="neural", description="one Transformer over all modality tokens (VATT-style)"),
    "unimodal-average": dict(kind="ensemble", description="average of the independently trained unimodal models "
                                                          "(NJU-Lamda-style)"),
}
# Unimodal neural baselines: name -> the one modality they see.
UNIMODAL: dict[str, str] = {"gat-only": "network", "text-only": "text", "audio-mlp": "mfcc", "vision-only": "vit"}
# Members averaged by `unimodal-average`, when they ran: the unimodal networks and the metadata model.
ENSEMBLE_MEMBERS = ("gat-only", "audio-mlp", "vision-only", "meta-linear")
VISUAL = ("convlstm", "vit")      # late-fusion's visual branch, first available wins
AUDIO = ("whisper", "mfcc")       # late-fusion's audio branch, first available wins


@dataclass
class Available:
    """The inputs compare was given, and which modalities they make possible."""

    graph: str
    features: str = ""
    gat: str = ""
    convlstm: str = ""
    feature_keys: frozenset[str] = frozenset()   # the modalities' store keys that the feature store holds
    frames: int | None = None                    # frames sampled per video in the feature store
    has_media_files: bool = False                # videos.parquet names at least one existing file

    def missing(self, modality: str) -> str | None:
        """Why ``modality`` cannot be used, or ``None`` when it can (what it needs: its registry spec)."""
        spec = registry.check_modality(modality)
        if spec.requires and not getattr(self, spec.requires):
            return f"no --{spec.requires} ({spec.hint})"
        if spec.store_key and not self.features:
            return f"no --features (needs {spec.store_key!r} from `mdr-graph extract`)"
        if spec.store_key and spec.store_key not in self.feature_keys:
            return f"the feature store has no {spec.store_key!r} (re-run {spec.extract_command()})"
        return None

    def usable(self, modalities) -> list[str]:
        return [m for m in modalities if self.missing(m) is None]


@dataclass
class RunSpec:
    """One row of the comparison: how to produce it, or why it is skipped."""

    name: str
    kind: str                                   # tabular | neural | ensemble
    modalities: list[str]
    description: str
    overrides: dict = field(default_factory=dict)   # TrainConfig fields this run changes
    members: list[str] = field(default_factory=list)
    skip: str | None = None
    group: str = "model"                        # model | ablation
    change: str = ""                            # ablations: what differs from the full model

    @property
    def runnable(self) -> bool:
        return self.skip is None

    def to_json(self) -> dict:
        return dataclasses.asdict(self)


def parse_models(text: str | list[str]) -> list[str]:
    """``all`` or a comma-separated subset of :data:`MODELS`, returned in table order."""
    names = [t.strip() for t in (text.split(",") if isinstance(text, str) else text) if t.strip()]
    if not names or names == ["all"]:
        return list(MODELS)
    unknown = [n for n in names if n not in MODELS]
    if unknown:
        raise UserError(f"--models: unknown model(s) {', '.join(unknown)}; choose all or from {', '.join(MODELS)}")
    return [m for m in MODELS if m in names]


def fusion_modalities(avail: Available, requested: list[str] | None = None) -> list[str]:
    """The full model's modalities: ``requested`` (each must be usable) or all usable ones."""
    if requested:
        bad = {m: avail.missing(m) for m in requested if avail.missing(m)}
        if bad:
            raise UserError("--modalities: " + "; ".join(f"{m}: {why}" for m, why in bad.items()))
        return list(requested)
    return avail.usable(registry.default_order())


def plan_models(names: list[str], avail: Available, mods: list[str], fusion: str = "stacked") -> list[RunSpec]:
    """The specs of ``names`` (table order), with the ensemble's members added when needed."""
    wanted = list(names)
    if "unimodal-average" in wanted:  # reuse, and if necessary add, the members it averages
        wanted += [m for m in ENSEMBLE_MEMBERS if m not in wanted]
    specs: list[RunSpec] = []
    for name in (m for m in MODELS if m in wanted):
        info = MODELS[name]
        spec = RunSpec(name, info["kind"], [], info["description"])
        if name == "coattention":
            spec.modalities = list(mods)
            spec.overrides = {"model": "coattention", "fusion": fusion}
            spec.description += f" ({fusion})"
            spec.skip = None if mods else "no usable modality"
        elif info["kind"] == "tabular":
            spec.modalities = list(info["inputs"])
        elif name in UNIMODAL:
            m = UNIMODAL[name]
            spec.modalities = [m]
            spec.overrides = {"model": UNIMODAL_ARCHITECTURE}
            spec.skip = avail.missing(m)
        elif name == "late-fusion":
            vis = next((m for m in VISUAL if avail.missing(m) is None), None)
            aud = next((m for m in AUDIO if avail.missing(m) is None), None)
            spec.modalities = [m for m in (vis, aud) if m]
            spec.overrides = {"model": "late-fusion"}
            if vis is None or aud is None:
                spec.skip = ("needs a visual modality (convlstm or vit) and an audio one (whisper or mfcc): "
                             + "; ".join(f"{m}: {avail.missing(m)}" for m in (*VISUAL, *AUDIO) if avail.missing(m)))
        elif name in ("concat-mlp", "single-transformer"):
            spec.modalities = list(mods)
            spec.overrides = {"model": name}
            spec.skip = None if len(mods) >= 2 else f"a fusion baseline needs two or more modalities, have {mods}"
        elif name == "unimodal-average":
            spec.members = [m for m in ENSEMBLE_MEMBERS if m in wanted]
            spec.modalities = [UNIMODAL.get(m, "meta") for m in spec.members]
        specs.append(spec)
    # ensemble members are only those that actually run
    for spec in specs:
        if spec.kind == "ensemble":
            ok = {s.name for s in specs if s.runnable}
            spec.members = [m for m in spec.members if m in ok]
            spec.modalities = [UNIMODAL.get(m, "meta") for m in spec.members]
            if len(spec.members) < 2:
                spec.skip = (f"needs two or more unimodal runs, only {spec.members or 'none'} can run "
                             f"(members: {', '.join(ENSEMBLE_MEMBERS)})")
    return specs


def inspect_inputs(graph: str, features: str = "", gat: str = "", convlstm: str = "") -> Available:
    """Check the given paths exist and read what the feature store holds."""
    from mdr_graph.graph_build.tables import read_videos

    gdir = Path(graph)
    videos = read_videos(gdir, ["video_path"])
    for flag, p in (("--gat", gat), ("--convlstm", convlstm)):
        if p and not Path(p).is_file():
            raise UserError(f"{flag} {p}: file not found")
    keys: set[str] = set()
    frames = None
    if features:
        from mdr_graph.train.prepare import open_store

        store = open_store(features)
        sample = next((store.get(v) for v in store.ids), None)
        if sample is None:
            raise UserError(f"--features {features}: the feature store holds no successfully extracted video")
        keys = {k for k in registry.store_keys() if sample.get(k) is not None}
        if "frames" in keys:
            frames = int(sample["frames"].shape[0])
    has_files = any(isinstance(p, str) and Path(p).is_file() for p in videos["video_path"].head(50))
    return Available(str(gdir.resolve()), str(Path(features).resolve()) if features else "",
                     str(Path(gat).resolve()) if gat else "", str(Path(convlstm).resolve()) if convlstm else "",
                     frozenset(keys), frames, has_files)
