"""The ``text`` modality: a hashed bag of words of caption, hashtags and transcript, then a linear layer.

The reference work found one-hot text beat BERT-style encoders on TikTok captions:
they are short, full of hashtags, slang and emoji, and a pretrained language model
adds little but cost. Hashing makes the vocabulary open-ended and fixed-size without
fitting a vocabulary on the training split (so new videos need nothing but the text).

Tokenisation (:func:`tokenize`): the text is lowercased and tokens are runs of word
characters (Unicode letters, digits and ``_``), a leading ``#`` kept, so ``#fyp`` and
``fyp`` are different features. Each token goes to bucket ``zlib.crc32(utf-8) % dim``
(stable across processes and machines, unlike Python's salted ``hash``); a bucket's
value is ``log1p(count)``. Collisions are accepted, as in any hashing trick.
"""

from __future__ import annotations

import re
import zlib
from collections import Counter
from collections.abc import Iterable, Mapping

import numpy as np
import pandas as pd
import torch
from torch import Tensor

from mdr_graph.encoders.layers import VectorEncoder
from mdr_graph.errors import UserError

TOKEN_RE = re.compile(r"#?\w+")


def tokenize(text: str | None) -> list[str]:
    """Lowercased word and hashtag tokens of ``text`` (``None`` gives no tokens)."""
    return TOKEN_RE.findall(text.lower()) if isinstance(text, str) else []


def token_bucket(token: str, dim: int) -> int:
    """The stable bucket of one token: ``crc32(token.encode("utf-8")) % dim``."""
    return zlib.crc32(token.encode("utf-8")) % dim


def hash_bag_of_words(texts: list[str], dim: int) -> Tensor:
    """``float32 [len(texts), dim]``: ``log1p`` counts of each text's hashed tokens."""
    if dim <= 0:
        raise UserError(f"text hashing dimension must be positive, got {dim}")
    out = np.zeros((len(texts), dim), dtype=np.float32)
    for row, text in enumerate(texts):
        counts = Counter(token_bucket(tok, dim) for tok in tokenize(text))
        if counts:
            cols = np.fromiter(counts.keys(), dtype=np.int64, count=len(counts))
            out[row, cols] = np.log1p(np.fromiter(counts.values(), dtype=np.float32, count=len(counts)))
    return torch.from_numpy(out)


def video_texts(videos: pd.DataFrame, transcripts: Mapping[str, str] | None = None) -> list[str]:
    """One text per row of ``videos``: caption, then hashtags not already in it, then the transcript.

    Captions usually contain their hashtags already; the ``hashtags`` column (names
    without ``#``) only adds those that are missing, so nothing is counted twice.
    ``transcripts`` maps ``video_id`` to Whisper's transcript (absent ids get none).
    """
    transcripts = transcripts or {}
    captions = videos["caption"] if "caption" in videos else pd.Series([None] * len(videos))
    tags = videos["hashtags"] if "hashtags" in videos else pd.Series([None] * len(videos))
    ids = videos["video_id"].astype(str) if "video_id" in videos else pd.Series([""] * len(videos))
    texts = []
    for cap, tag_list, vid in zip(captions, tags, ids):
        cap = cap if isinstance(cap, str) else ""
        have = set(tokenize(cap))
        extra = [f"#{t}" for t in _as_list(tag_list) if f"#{str(t).lower()}" not in have]
        texts.append(" ".join(p for p in (cap, " ".join(extra), transcripts.get(vid, "") or "") if p))
    return texts


def _as_list(v) -> Iterable[str]:
    if isinstance(v, (list, tuple, np.ndarray)):
        return [str(x) for x in v if x is not None]
    return []


class TextEncoder(VectorEncoder):
    """``float [B, vocab]`` hashed counts to one token through one linear layer."""

    def __init__(self, input_shape: tuple[int, ...], d_model: int, text_dim: int | None = None,
                 dropout: float = 0.0):
        if len(input_shape) != 1:
            raise UserError(f"text expects hashed counts [vocab] per sample, got {tuple(input_shape)}")
        if text_dim is not None and input_shape[0] != text_dim:
            raise UserError(f"text input has {input_shape[0]} hash buckets but the model's text_dim is {text_dim}; "
                            f"hash with hash_bag_of_words(texts, {text_dim}) or set text_dim = {input_shape[0]}")
        super().__init__(input_shape[0], d_model, hidden=0, dropout=dropout, standardize=False)
