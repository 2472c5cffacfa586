"""Every modality of the fusion model, declared once, as a :class:`ModalitySpec`.

========  ======  =======  =========================  ===========================================  ======
name      kind    source   input per sample           encoder                                      tokens
========  ======  =======  =========================  ===========================================  ======
network   tabular gat      float ``[d_g]``            trainable FC on the frozen GAT embedding     1
labels    tabular fitted   float ``[d_labels]``       MLP on the leak-free popularity of the       1
                                                      videos sharing the song, creator, hashtags
meta      tabular graph    float ``[d_meta]``         MLP on pre-publication metadata              1
text      tabular fitted   float ``[1]`` or ``[dim]`` Linear on the text ridge's out-of-fold       1
                                                      score, or on hashed counts (``hashed``)
gbdt      tabular fitted   float ``[1]``              Linear on the stacked LightGBM's score       1
mfcc      media   store    float ``[n_mfcc, T]``      Audio-MLP (flatten + projection)             chunks
fbank     media   store    float ``[n_mels, T]``      Audio-MLP (the filter-bank ablation)         chunks
whisper   media   store    float ``[d_w]``            Linear projection                            1
vit       media   store    uint8 ``[F, 3, S, S]``     patches + hierarchical PE + Transformer      F*N
convlstm  media   store    uint8 ``[F, 3, S, S]``     frozen pretrained ConvLSTM bottleneck        1
========  ======  =======  =========================  ===========================================  ======

A spec says where the modality's input comes from (``source``: columns of the graph's
videos table, a feature-store key, the frozen GAT, or an input fitted on the training
labels), how to make that input when it is missing (``requires``/``hint``,
``extract_option``), how to build its encoder and which :class:`~mdr_graph.fusion_config.FusionConfig`
knobs the encoder reads, and its place in the default order. The dataset
(:mod:`mdr_graph.train.dataset`), the run preparation (:mod:`mdr_graph.train.prepare`),
the model (:mod:`mdr_graph.fusion`), ``compare``'s plan and ablations, and the CLI help
all read this registry; none keeps its own list.

Adding a modality: write its encoder (a module mapping ``[B, *shape]`` to ``[B, T, d_model]``),
then :func:`register` a spec, here in :data:`BUILTIN` or from your own code before the run.
A tabular spec's ``table(rows)`` returns :class:`Columns` (``[n, d]`` values and ``[n]``
presence) computed from ``rows.videos`` (and, if it needs them, the training-split
normaliser, the GAT embeddings or the fitted inputs); a media spec names the feature-store
key its input is read from.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, NamedTuple

import numpy as np
import torch
from torch import nn

from mdr_graph.errors import UserError
from mdr_graph.fusion_config import knob

if TYPE_CHECKING:
    import pandas as pd

KINDS = ("tabular", "media")
SOURCES = ("graph", "store", "gat", "fitted")


class Rows(NamedTuple):
    """What a tabular modality's input is computed from: some rows of the graph's videos table."""

    videos: pd.DataFrame
    settings: Any            # the run's TrainConfig
    normalizer: Any          # statistics fitted on the training split (mdr_graph.train.dataset.Normalizer)
    emb: pd.DataFrame | None  # frozen GAT embeddings, when the run uses the network modality
    fitted: Any              # the label-derived inputs of these rows (mdr_graph.train.fitted.Fitted)


class Columns(NamedTuple):
    """A tabular modality's input for ``n`` rows: ``values [n, d]`` float32 and ``present [n]`` bool."""

    values: np.ndarray
    present: np.ndarray


class HashedText:
    """The hashed text input, computed per item (``[n, text_dim]`` would not fit in memory on a big corpus).

    The video's transcript (from the feature store, when it has one) is appended to its text.
    """

    needs_store = True

    def __init__(self, texts: list[str], dim: int):
        self.texts, self.shape = texts, (int(dim),)

    def __call__(self, i: int, feats: dict | None) -> tuple[torch.Tensor, bool]:
        from mdr_graph.encoders.text import hash_bag_of_words

        text = self.texts[i] if self.texts else ""
        if feats is not None and feats.get("transcript"):
            text = f"{text} {feats['transcript']}"
        return hash_bag_of_words([text], self.shape[0])[0], bool(text.strip())


@dataclass(frozen=True)
class ModalitySpec:
    """One modality: where its input comes from, how to make it, how to encode it."""

    name: str
    kind: str                       # tabular (held in memory) | media (read per item from the feature store)
    source: str                     # graph | store | gat | fitted (see SOURCES)
    build: Callable[[tuple[int, ...], int, Any], nn.Module]   # (per-sample shape, d_model, FusionConfig)
    rank: int                       # dimensions of one sample's input
    description: str
    order: float                    # place in the default order (model order; compare's full model)
    table: Callable[[Rows], "Columns | HashedText"] | None = None   # tabular: the rows' inputs
    store_key: str = ""             # media: the feature-store key it reads
    audio: bool = False             # media: absent when the video has no audio track
    extract_option: str = ""        # media: the `mdr-graph extract` option that writes store_key
    store_extras: tuple[str, ...] = ()   # store keys it also reads when there is a store (text: transcript)
    requires: str = ""              # the run input it needs besides the graph: "gat" | "convlstm"
    hint: str = ""                  # where that input comes from, e.g. "RUNDIR/gat.pt from `mdr-graph pretrain`"
    knobs: tuple[str, ...] = ("dropout",)   # FusionConfig fields its encoder reads
    default: bool = True            # in the full model when compare uses every usable modality
    dtype: torch.dtype = torch.float32

    def __post_init__(self):
        if self.kind not in KINDS or self.source not in SOURCES:
            raise ValueError(f"modality {self.name!r}: kind must be one of {KINDS} and source one of {SOURCES}")
        if (self.kind == "media") != bool(self.store_key) or (self.kind == "tabular") != (self.table is not None):
            raise ValueError(f"modality {self.name!r}: a media modality names a store_key, a tabular one a table")

    def extract_command(self) -> str:
        return f"`mdr-graph extract{' ' + self.extract_option if self.extract_option else ''}`"

    def inputs(self, rows: Rows) -> "Columns | HashedText":
        """The tabular input of ``rows``: ``table(rows)`` checked (one 2-d row per video) and cast."""
        got = self.table(rows)
        if not isinstance(got, Columns):
            return got
        values, present = np.asarray(got.values, dtype=np.float32), np.asarray(got.present, dtype=bool)
        n = len(rows.videos)
        if values.ndim != 2 or len(values) != n or present.shape != (n,):
            raise UserError(f"modality {self.name!r}: its table gave values {values.shape} and presence "
                            f"{present.shape} for {n} videos; expected [{n}, d] and [{n}]")
        return Columns(values, present)

    def require(self, settings: Any) -> None:
        """Raise a one-line error when the run lacks the input this modality needs (``--gat``, ``--convlstm``)."""
        if self.requires and not getattr(settings, self.requires, ""):
            raise UserError(f"modality {self.name!r} needs --{self.requires} {self.hint}")


# -- the built-in modalities' inputs and encoders ------------------------------------------------
def _ones(n: int) -> np.ndarray:
    return np.ones(n, dtype=bool)


def _network_table(rows: Rows) -> Columns:
    """GAT embeddings aligned with the rows; a video without one is absent."""
    lookup = dict(zip(rows.emb["video_id"].astype(str), rows.emb["embedding"]))
    dim = len(next(iter(lookup.values()))) if lookup else 0
    mat = np.zeros((len(rows.videos), dim), dtype=np.float32)
    have = np.zeros(len(rows.videos), dtype=bool)
    for i, vid in enumerate(rows.videos["video_id"].astype(str)):
        e = lookup.get(vid)
        if e is not None:
            mat[i] = np.asarray(e, dtype=np.float32)
            have[i] = True
    return Columns(mat, have)


def _meta_table(rows: Rows) -> Columns:
    from mdr_graph.encoders.meta import meta_features

    return Columns(rows.normalizer.meta(meta_features(rows.videos)), _ones(len(rows.videos)))


def _labels_table(rows: Rows) -> Columns:
    return Columns(rows.fitted.labels, _ones(len(rows.videos)))   # "no neighbour" is itself information


def _text_table(rows: Rows) -> "Columns | HashedText":
    if knob(rows.settings, "text_features") == "ridge":
        return Columns(rows.fitted.text, rows.fitted.text_present)
    from mdr_graph.encoders.text import video_texts

    return HashedText(video_texts(rows.videos), knob(rows.settings, "text_dim"))


def _gbdt_table(rows: Rows) -> Columns:
    return Columns(rows.fitted.gbdt, _ones(len(rows.videos)))


def _vector(hidden_knob: str | None = None):
    """A standardised vector input, projected (through an MLP of width ``hidden_knob``, else one Linear)."""
    def build(shape, d, cfg):
        from mdr_graph.encoders.layers import VectorEncoder

        return VectorEncoder(shape[0], d, knob(cfg, hidden_knob) if hidden_knob else 0, knob(cfg, "dropout"),
                             standardize=True)
    return build


def _network(shape, d, cfg):
    from mdr_graph.encoders.network import NetworkEncoder

    return NetworkEncoder(shape, d, knob(cfg, "dropout"))


def _meta(shape, d, cfg):
    from mdr_graph.encoders.meta import MetaEncoder

    return MetaEncoder(shape, d, knob(cfg, "meta_hidden"), knob(cfg, "dropout"))


def _text(shape, d, cfg):
    if knob(cfg, "text_features") == "ridge":   # one fitted score: standardise it, project it
        return _vector()(shape, d, cfg)
    from mdr_graph.encoders.text import TextEncoder

    return TextEncoder(shape, d, getattr(cfg, "text_dim", None), knob(cfg, "dropout"))


def _audio(shape, d, cfg):
    from mdr_graph.encoders.audio import AudioMLPEncoder

    return AudioMLPEncoder(shape, d, hidden=knob(cfg, "audio_hidden"), chunks=knob(cfg, "audio_chunks"),
                           dropout=knob(cfg, "dropout"))


def _whisper(shape, d, cfg):
    from mdr_graph.encoders.audio import WhisperProjection

    return WhisperProjection(shape, d, knob(cfg, "dropout"))


def _vit(shape, d, cfg):
    from mdr_graph.encoders.vit import ViTEncoder

    return ViTEncoder(shape, d, patch=knob(cfg, "patch"), heads=knob(cfg, "heads"), layers=knob(cfg, "vit_layers"),
                      ff_mult=knob(cfg, "ff_mult"), dropout=knob(cfg, "dropout"),
                      positional_encoding=knob(cfg, "positional_encoding"))


def _convlstm(shape, d, cfg):
    from mdr_graph.encoders.convlstm import ConvLSTMEmbedding

    return ConvLSTMEmbedding(shape, d, path=getattr(cfg, "convlstm_path", None),
                             arch=getattr(cfg, "convlstm_arch", None), dropout=knob(cfg, "dropout"))


_AUDIO_KNOBS = ("audio_hidden", "audio_chunks", "dropout")
BUILTIN: tuple[ModalitySpec, ...] = (
    ModalitySpec("network", "tabular", "gat", _network, 1, "frozen GAT embedding", 10, table=_network_table,
                 requires="gat", hint="RUNDIR/gat.pt from `mdr-graph pretrain`"),
    ModalitySpec("labels", "tabular", "fitted", _vector("meta_hidden"), 1,
                 "leak-free popularity of the videos sharing song, creator, hashtags", 20, table=_labels_table,
                 knobs=("meta_hidden", "dropout")),
    ModalitySpec("meta", "tabular", "graph", _meta, 1, "pre-publication metadata", 30, table=_meta_table,
                 knobs=("meta_hidden", "dropout")),
    ModalitySpec("text", "tabular", "fitted", _text, 1, "the text ridge's score, or a hashed bag of words", 40,
                 table=_text_table, store_extras=("transcript",), knobs=("text_features", "text_dim", "dropout")),
    ModalitySpec("gbdt", "tabular", "fitted", _vector(), 1, "the stacked LightGBM's out-of-fold score", 50,
                 table=_gbdt_table),
    ModalitySpec("mfcc", "media", "store", _audio, 2, "Audio-MLP over MFCC", 60, store_key="mfcc", audio=True,
                 knobs=_AUDIO_KNOBS),
    # the filter-bank ablation of mfcc: never in the full model unless asked for
    ModalitySpec("fbank", "media", "store", _audio, 2, "Audio-MLP over log filter banks", 70, store_key="fbank",
                 audio=True, extract_option="--fbank", knobs=_AUDIO_KNOBS, default=False),
    ModalitySpec("whisper", "media", "store", _whisper, 1, "pooled Whisper encoder embedding", 80,
                 store_key="whisper", audio=True, extract_option="--whisper PATH"),
    ModalitySpec("vit", "media", "store", _vit, 4, "ViT over sampled frames", 90, store_key="frames",
                 knobs=("patch", "heads", "vit_layers", "ff_mult", "dropout", "positional_encoding"),
                 dtype=torch.uint8),
    ModalitySpec("convlstm", "media", "store", _convlstm, 4, "frozen ConvLSTM-autoencoder bottleneck", 100,
                 store_key="frames", requires="convlstm", hint="RUNDIR/convlstm.pt from `mdr-graph pretrain-visual`",
                 dtype=torch.uint8),
)

_REGISTRY: dict[str, ModalitySpec] = {}


def register(spec: ModalitySpec, replace: bool = False) -> ModalitySpec:
    """Add a modality (from any code, before the run is prepared); ``replace`` swaps a registered one."""
    if spec.name in _REGISTRY and not replace:
        raise ValueError(f"modality {spec.name!r} is already registered (pass replace=True to swap it)")
    _REGISTRY[spec.name] = spec
    return spec


def unregister(name: str) -> None:
    _REGISTRY.pop(name, None)


def added() -> list[ModalitySpec]:
    """The specs registered (or swapped in) from outside :data:`BUILTIN`: what a spawned process
    (``compare --jobs N``) must register again, since it starts from the built-ins alone."""
    builtin = {id(s) for s in BUILTIN}
    return [s for s in specs() if id(s) not in builtin]


for _spec in BUILTIN:
    register(_spec)


def specs(names_: Iterable[str] | None = None) -> list[ModalitySpec]:
    """Registered specs in the default order (or those of ``names_``, in their order)."""
    if names_ is not None:
        return [check_modality(m) for m in names_]
    return sorted(_REGISTRY.values(), key=lambda s: s.order)


def names() -> list[str]:
    """Every registered modality, in the default order."""
    return [s.name for s in specs()]


def default_order() -> list[str]:
    """The full model's modalities when every input exists (the `default` ones, in order)."""
    return [s.name for s in specs() if s.default]


def check_modality(name: str) -> ModalitySpec:
    if name not in _REGISTRY:
        raise UserError(f"unknown modality {name!r}; choose from {', '.join(names())}")
    return _REGISTRY[name]


def parse_modalities(text: str | list[str]) -> list[str]:
    """A comma-separated (or listed) choice of registered modalities, each once."""
    mods = [m.strip() for m in (text.split(",") if isinstance(text, str) else text) if m.strip()]
    unknown = [m for m in mods if m not in _REGISTRY]
    if not mods or unknown:
        raise UserError(f"unknown or empty modalities {unknown or mods}; choose from {', '.join(names())}")
    if len(set(mods)) != len(mods):
        raise UserError(f"modality listed twice in {','.join(mods)}")
    return mods


def media(mods: Iterable[str]) -> list[str]:
    """Those of ``mods`` read from the feature store."""
    return [m for m in mods if check_modality(m).kind == "media"]


def store_keys() -> list[str]:
    """Every feature-store key some modality reads."""
    return sorted({s.store_key for s in specs() if s.store_key})


def uses_store(mods: Iterable[str], have_features: bool) -> bool:
    """Whether a run over ``mods`` reads the feature store (media inputs, or extras such as transcripts)."""
    mods = list(mods)
    return bool(media(mods)) or (have_features and any(check_modality(m).store_extras for m in mods))


def build_encoder(name: str, input_shape: tuple, d_model: int, cfg: Any = None) -> nn.Module:
    """The encoder of modality ``name`` for per-sample ``input_shape``, returning ``[B, T_m, d_model]``.

    ``cfg`` is a :class:`~mdr_graph.fusion_config.FusionConfig` or anything with its attribute
    names; a missing one takes FusionConfig's default.
    """
    spec = check_modality(name)
    shape = tuple(int(x) for x in input_shape)
    if len(shape) != spec.rank or min(shape, default=1) <= 0:
        raise UserError(f"modality {name!r} expects a {spec.rank}-d per-sample input ({spec.description}), "
                        f"got shape {shape}")
    return spec.build(shape, d_model, cfg)


__all__ = ["BUILTIN", "Columns", "HashedText", "KINDS", "ModalitySpec", "Rows", "SOURCES", "build_encoder",
           "check_modality", "default_order", "media", "names", "parse_modalities", "register", "specs",
           "store_keys", "unregister", "uses_store"]
