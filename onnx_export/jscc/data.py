"""Token data for training the JSCC, one class per modality.

Tokens are made once with the *shipped ONNX tokenizer* (what the GNU Radio
transmitter runs) and cached under the run folder; the JSCC then trains on
the cached tokens. Each class gives training batches, the test set, and a
``score`` that turns decoded tokens into the modality's quality measure:
image PSNR (dB) through the ONNX de-tokenizer, audio log-mel L1 (nepers)
through the ONNX de-tokenizer, text token error rate.
"""
import json
import pathlib

import numpy as np
import torch

from gnuradio.unitocom.core import metrics
from gnuradio.unitocom.core.zoo import DEFAULT_MODELS
from gnuradio.unitocom.dsp import audio_features as af
from gnuradio.unitocom.runtime import model_store
from gnuradio.unitocom.data import vocab
from gnuradio.unitocom.data.loaders import CorpusSplit
from gnuradio.unitocom.runtime.onnx_session import make_session


def _cached(path, make):
    path = pathlib.Path(path)
    if path.is_file():
        return np.load(path)
    arr = make()
    np.save(path, arr)
    return arr


class ImageTokens:
    """Image tokens of the corpus scenes from the shipped ONNX tokenizer ``tokenizer``/``variant``.

    ``train``: (N, S, d) tokens; ``test``: the first ``n_test`` test images' tokens; ``score``: PSNR
    through the ONNX de-tokenizer; ``loss``: token MSE normalised by each dimension's spread."""
    modality, higher_is_better, metric = "image", True, "psnr_db"

    def __init__(self, corpus, out, tokenizer=DEFAULT_MODELS[("tokenizer", "image")], variant="genib", n_test=500,
                 threads=2):
        self.tok_path = model_store.find(tokenizer, variant)
        self.det_path = model_store.find(tokenizer.replace("tokenizer", "detokenizer"), variant)
        self.tok_meta = model_store.read_metadata(self.tok_path)
        model_store.check_pair(self.tok_meta, model_store.read_metadata(self.det_path))
        self.variant = variant
        self.token_dim, self.fixed_len, self.vocab = int(self.tok_meta["token_dim"]), int(self.tok_meta["token_len"]), 0
        self.token_len = self.tok_meta["token_len"]
        self.source_dims = 64 * 64 * 3
        self.name, self.card_name = f"image_jscc_{{role}}_s{self.fixed_len}", f"image_jscc_s{self.fixed_len}"
        sess = make_session(str(self.tok_path), threads, "cpu")
        tag = self.tokenizer_id = model_store.model_id(self.tok_path)
        train, test = CorpusSplit(corpus, "train").images, CorpusSplit(corpus, "test").images
        self.train = _cached(pathlib.Path(out) / f"train_{tag}.npy", lambda: self._encode(sess, train))
        self.test_images = np.asarray(test[:n_test], np.float32).transpose(0, 3, 1, 2) / 255.0
        self.test = _cached(pathlib.Path(out) / f"test_{tag}_{n_test}.npy", lambda: self._encode(sess, test[:n_test]))
        self.det = make_session(str(self.det_path), threads, "cpu")
        scale = self.train.reshape(-1, self.token_dim)
        self.token_std = torch.from_numpy(scale.std(axis=0)).float()

    @staticmethod
    def _encode(sess, images, batch=100):
        out = []
        for i in range(0, len(images), batch):
            x = np.asarray(images[i:i + batch], np.float32).transpose(0, 3, 1, 2) / 255.0
            out.append(sess.run(None, {"image": x})[0])
        return np.concatenate(out).astype(np.float32)

    def batch(self, rng, n):
        """``n`` training token sets drawn with ``rng`` (with replacement): tensor (n, S, d)."""
        return torch.from_numpy(self.train[rng.integers(0, len(self.train), n)])

    def test_batches(self, n=250):
        """The test tokens in order, as tensors of up to ``n`` images each: [(≤n, S, d), …]."""
        return [torch.from_numpy(self.test[i:i + n]) for i in range(0, len(self.test), n)]

    def score(self, decoded):
        """Decoded token batches (as ``test_batches``) → mean PSNR (dB) of the de-tokenized test images."""
        y = np.concatenate([self.det.run(None, {"tokens": t.numpy()})[0] for t in decoded])
        return float(np.mean(metrics.psnr(np.clip(y, 0, 1), self.test_images[:len(y)], peak=1.0)))

    def loss(self, out, target):
        """Decoded tokens vs sent tokens (B, S, d) → MSE normalised by each dimension's spread (a scalar tensor)."""
        return torch.mean(((out - target) / self.token_std) ** 2)


class MelBatch:
    """Audio training crops with their log-mel: ``tokens`` (n, C, d), ``mel`` (n, 64, 4·C), ``valid`` (n, C);
    ``len()`` is n, like a token batch."""

    def __init__(self, tokens, mel, valid):
        self.tokens, self.mel, self.valid = tokens, mel, valid

    def __len__(self):
        return len(self.tokens)


class AudioTokens(ImageTokens):
    """Audio tokens of the corpus utterances (25 per second) from the shipped ONNX tokenizer.

    ``train``/``test``: lists of (T, d) token arrays; training batches are random crops of ``CROP``
    tokens; ``score``: mean absolute log-mel error (nepers) through the ONNX de-tokenizer.
    With ``train_mels`` the training utterances' scaled log-mels are kept too (cached as float16),
    and ``batch`` gives (tokens, log-mel) crop pairs for a loss on the log-mel."""
    modality, higher_is_better, metric = "audio", False, "logmel_l1_nepers"
    CROP = 64                                                         # tokens per training crop (2.56 s)

    def __init__(self, corpus, out, tokenizer=DEFAULT_MODELS[("tokenizer", "audio")], variant="genib", n_test=200,
                 threads=2, train_mels=False):
        self.tok_path = model_store.find(tokenizer, variant)
        self.det_path = model_store.find(tokenizer.replace("tokenizer", "detokenizer"), variant)
        self.tok_meta = model_store.read_metadata(self.tok_path)
        model_store.check_pair(self.tok_meta, model_store.read_metadata(self.det_path))
        self.variant = variant
        self.token_dim, self.fixed_len, self.vocab = int(self.tok_meta["token_dim"]), 0, 0
        self.token_len = self.tok_meta["token_len"]
        self.source_dims = af.N_MELS * 4                               # log-mel values per token
        self.name, self.card_name = "audio_jscc_{role}", "audio_jscc"
        sess = make_session(str(self.tok_path), threads, "cpu")
        tag = self.tokenizer_id = model_store.model_id(self.tok_path)
        out = pathlib.Path(out)
        out.mkdir(parents=True, exist_ok=True)
        train = self._load(out / f"train_{tag}", sess, CorpusSplit(corpus, "train"), None, keep_mels=train_mels,
                           cache_mels=True)
        self.train_mels, self.train = train if train_mels else (None, train)
        self.test_mels, self.test = self._load(out / f"test_{tag}_{n_test}", sess, CorpusSplit(corpus, "test"), n_test,
                                               keep_mels=True)
        self.det = make_session(str(self.det_path), threads, "cpu")
        self.token_std = torch.from_numpy(np.concatenate(self.train).std(axis=0)).float()

    @staticmethod
    def _load(stem, sess, split, limit, keep_mels=False, cache_mels=False):
        """Tokens of the first ``limit`` (None: all) utterances of ``split``, cached under ``stem``; with
        ``keep_mels`` also their scaled log-mels cut to 4 frames per token, as (mels, tokens): computed
        afresh (float32), or with ``cache_mels`` cached as float16 (the training crops' targets)."""
        n = len(split.utterances) if limit is None else min(limit, len(split.utterances))
        toks_path, len_path = pathlib.Path(f"{stem}.npy"), pathlib.Path(f"{stem}_len.npy")
        mel_path = pathlib.Path(f"{stem}_mel16.npy")
        mels = None
        if toks_path.is_file():
            flat, lengths = np.load(toks_path), np.load(len_path)
            toks = np.split(flat, np.cumsum(lengths)[:-1])
            if keep_mels and cache_mels and mel_path.is_file():
                mels = np.split(np.load(mel_path).astype(np.float32), np.cumsum(lengths * 4)[:-1], axis=1)
        else:
            toks = []
            for k in range(n):
                mel = af.log_mel(split.audio(k))
                mel = mel[:, :mel.shape[1] // 4 * 4]
                toks.append(sess.run(None, {"mel": mel[None]})[0][0])
            np.save(toks_path, np.concatenate(toks)), np.save(len_path, np.array([len(t) for t in toks]))
        if not keep_mels:
            return toks
        if mels is None:
            mels = [af.log_mel(split.audio(k))[:, :len(t) * 4] for k, t in zip(range(n), toks)]
            if cache_mels:
                np.save(mel_path, np.concatenate(mels, axis=1).astype(np.float16))
        return [m[:, :len(t) * 4] for m, t in zip(mels, toks)], toks

    def batch(self, rng, n):
        """``n`` random crops of ``CROP`` tokens (shorter utterances padded with their last token): (n, CROP, d);
        with ``train_mels``, a ``MelBatch`` of those tokens, their log-mel (n, 64, 4·CROP) and ``valid`` (n, CROP),
        0 for the padding tokens of a short utterance (its log-mel there is 0), so a loss can leave them out."""
        out = np.zeros((n, self.CROP, self.token_dim), np.float32)
        mel = np.zeros((n, af.N_MELS, 4 * self.CROP), np.float32) if self.train_mels is not None else None
        valid = np.zeros((n, self.CROP), np.float32)
        for i, k in enumerate(rng.integers(0, len(self.train), n)):
            t = self.train[k]
            start = int(rng.integers(0, len(t) - self.CROP + 1)) if len(t) > self.CROP else 0
            m = min(len(t), self.CROP)
            out[i, :m] = t[start:start + m]
            out[i, m:] = t[-1]
            valid[i, :m] = 1.0
            if mel is not None:
                mel[i, :, :4 * m] = self.train_mels[k][:, 4 * start:4 * (start + m)]
        if mel is None:
            return torch.from_numpy(out)
        return MelBatch(torch.from_numpy(out), torch.from_numpy(mel), torch.from_numpy(valid))

    def test_batches(self, n=1):
        """One tensor (1, T, d) per test utterance (their lengths differ); ``n`` is ignored."""
        return [torch.from_numpy(t[None]) for t in self.test]

    def score(self, decoded):
        """Decoded token batches (as ``test_batches``) → mean absolute log-mel error (nepers) per utterance."""
        errors = []
        for t, mel in zip(decoded, self.test_mels):
            y = self.det.run(None, {"tokens": t.numpy()})[0][0]
            errors.append(metrics.log_mel_l1(y, mel) * af.LOG_SCALE)
        return float(np.mean(errors))


class TextTokens:
    """Text ids of the corpus questions and captions (the vocabulary is the tokenizer).

    Training batches are ``n`` sentences of one length; ``score``: token error rate of the decoded
    logits' argmax; ``loss``: cross-entropy."""
    modality, higher_is_better, metric = "text", False, "token_error_rate"
    variant = "vocab"

    def __init__(self, corpus, out, n_test=2000, token_dim=16, **_):
        self.token_dim, self.fixed_len, self.vocab = token_dim, 0, len(vocab.TOKENS)
        self.token_len, self.source_dims = "per sentence", 1
        self.name, self.card_name = "text_jscc_{role}", "text_jscc"
        self.tokenizer_id = "text_vocab"
        self.tok_meta = {"modality": "text", "variant": "vocab"}
        self.train = self._by_length(CorpusSplit(corpus, "train"))
        test = self._sentences(CorpusSplit(corpus, "test"))[:n_test]
        self.test = [np.array(vocab.encode(s), np.int64) for s in test]
        self.token_std = None

    @staticmethod
    def _sentences(split):
        return [q["text"] for q in split.questions] + [c["text"] for c in split.captions]

    def _by_length(self, split):
        groups = {}
        for s in self._sentences(split):
            ids = vocab.encode(s)
            groups.setdefault(len(ids), []).append(ids)
        return {n: np.array(v, np.int64) for n, v in groups.items()}

    def batch(self, rng, n):
        """``n`` training sentences of one length (drawn in proportion to how many have it): ids (n, L)."""
        lengths = sorted(self.train)
        weights = np.array([len(self.train[k]) for k in lengths], float)
        length = lengths[int(rng.choice(len(lengths), p=weights / weights.sum()))]
        rows = self.train[length]
        return torch.from_numpy(rows[rng.integers(0, len(rows), n)])

    def test_batches(self, n=0):
        """The test sentences grouped by length: [ids (count, L), …] by increasing L; ``n`` is ignored."""
        groups = {}
        for ids in self.test:
            groups.setdefault(len(ids), []).append(ids)
        return [torch.from_numpy(np.array(v)) for _, v in sorted(groups.items())]

    def score(self, decoded, targets=None):
        """Decoded logits batches and their sent ids (as ``test_batches``) → token error rate over all tokens."""
        sent = [ids.numpy().reshape(-1) for ids in targets]
        received = [logits.argmax(-1).numpy().reshape(-1) for logits in decoded]
        return metrics.token_error_rate(np.concatenate(sent), np.concatenate(received)) if sent else 0.0

    @staticmethod
    def loss(out, target):
        """Logits (B, L, V) vs ids (B, L) → mean cross-entropy (a scalar tensor)."""
        return torch.nn.functional.cross_entropy(out.reshape(-1, out.shape[-1]), target.reshape(-1))


MODALITIES = {"image": ImageTokens, "audio": AudioTokens, "text": TextTokens}


def describe(data):
    """A token data object → JSON string of its modality, token_dim, fixed_len and vocab."""
    return json.dumps({"modality": data.modality, "token_dim": data.token_dim, "fixed_len": data.fixed_len,
                       "vocab": data.vocab})
