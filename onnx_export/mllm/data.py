"""The MLLM's received-token cache: corpus items as the base station receives them, made once.

    ./unitocom python -m onnx_export.mllm.data --corpus data/clevr64 --split train,val,test \\
        --copies 4 --out runs/mllm-cache [--threads 1] [--limit N]

The tokenizers and the JSCC are frozen while the MLLM trains, so the link is
not run inside the training step: this builds, per corpus split, copy 0
(clean: the shipped tokenizer's output, the vocabulary's ids) and
``--copies`` received copies of every input stream, with the shipped models
in onnxruntime (batched, ``--threads`` intra-op threads):

==================  ==========================================================  ==========
stream              what                                                        copies
==================  ==========================================================  ==========
``images``          scene renders → image tokenizer (S = 32, d = 16) [→ link]   0 … C
``caption_images``  the renders *of* the captions → tokens: t2i targets          0 (clean)
``questions``       question ids ``<bos> … <eos>`` [→ text JSCC link]            0 … C
``captions``        caption ids [→ text JSCC link]                               0 … C
``audio``           utterances → log-mel (as the ``tokenizer`` block) → audio    0 … C
                    tokenizer (25 tokens/s) [→ audio JSCC link]
==================  ==========================================================  ==========

The link of a received copy, per item (one frame): the shipped JSCC encoder
(told the SNR) → ``jscc_frame.frame_order`` → block fading, AWGN or Rayleigh
with equal probability, one h per frame, at an SNR uniform in
[``--snr-min``, ``--snr-max``] dB (``dsp.channel_math``, numpy draws) →
``jscc_frame.decoder_input`` with the genie CSI → the shipped JSCC decoder
(tokens, or the argmax of the text logits: received ids can be wrong). The
rate (symbols per token) is drawn per item from ``--rates`` (default 8, the
blocks' default). Models are found by name through ``core.zoo`` and
``runtime.model_store`` (``$UNITOCOM_MODEL_DIR`` first), so the cache uses
whatever is shipped when it is built, and the manifest records their ids.

Files in ``<out>/<split>/`` (a fixed-condition copy for evaluation, e.g.
``channels=('rayleigh',)`` at 10 dB, goes to ``<out>/<split>-rayleigh-10dB``):

* ``<stream>.c<k>.npy``: copy k — ``images``/``caption_images`` (N, 32, 16)
  float32; ``audio`` (Σ tokens, 16) float32 and ``questions``/``captions``
  (Σ ids,) int64, flat with ``<stream>.offsets.npy`` (n + 1,) int64;
* ``<stream>.c<k>.link.npy`` (k ≥ 1): per item ``channel`` (1 AWGN, 2
  Rayleigh), ``snr_db``, ``rate``, ``h`` (a structured array);
* ``targets.npz``: clean targets and labels — ``answer`` (Q,) word id,
  ``question_scene`` (Q,), ``transcript`` ids (flat) with
  ``transcript_offsets``, ``utterance_scene``, ``description`` ids (flat, the dsc
  targets, ``captions.describe``) with ``description_offsets``;
  ``rows.json``: question templates and texts, captions, transcripts,
  utterance speakers, whether the corpus's train split has each speaker
  (``speaker_heard_in_train``, from its ``meta.json``) and whether the
  corpus keeps the speaker out of train by construction (``speaker_held_out``);
* ``manifest.json``: the corpus, the split, seeds, the SNR range, channels and
  rates, the ids of every tokenizer and JSCC model, and per finished unit
  (stream × copy) its file, the models it was made with, its seed, a summary
  of its channel draws and the seconds it took.

Resumable and idempotent: each unit is written to a temporary file and
renamed, then recorded in the manifest; a second run skips finished units
and rebuilds only those whose models changed (a re-shipped audio JSCC
rebuilds the received audio copies and nothing else). A run with other
settings than the manifest's (corpus, seed, SNR range, …) is refused.
Every unit has its own random stream, ``SeedSequence([seed, crc32(folder
name), stream, copy])``, so the result does not depend on the order or on
interruptions. A cache of fixed link conditions for evaluation takes its
clean copies from the split's main cache (``clean_from``: hard links, not a
second tokenization). ``Cache`` reads a built folder and makes the MLLM's training
items (``layout.vqa``/``t2i``/``asr``) from it.
"""
import argparse
import hashlib
import json
import os
import pathlib
import shutil
import sys
import time
import zlib

import numpy as np

from gnuradio.unitocom.core import jscc_frame
from gnuradio.unitocom.core import modalities as mod
from gnuradio.unitocom.core import zoo
from gnuradio.unitocom.data import captions, questions, speech, vocab
from gnuradio.unitocom.data.loaders import CorpusSplit
from gnuradio.unitocom.dsp import audio_features
from gnuradio.unitocom.dsp import channel_math as cm
from gnuradio.unitocom.mllm import layout
from gnuradio.unitocom.runtime import model_store

SCHEMA = "unitocom.mllm_cache/1"
STREAMS = ("images", "caption_images", "questions", "captions", "audio")
MODALITY = {"images": "image", "caption_images": "image", "questions": "text", "captions": "text", "audio": "audio"}
LINKED = ("images", "questions", "captions", "audio")           # streams with received copies
CHANNEL_CODES = {"clean": 0, "awgn": 1, "rayleigh": 2}
LINK_DTYPE = np.dtype([("channel", "i1"), ("snr_db", "f4"), ("rate", "i2"), ("h", "c8")])
DEFAULT_RATES = (8,)
SNR_RANGE = (-5.0, 20.0)
CHANNELS = ("awgn", "rayleigh")


def _atomic_save(path, array):
    tmp = path.with_name(path.name + ".tmp.npy")
    np.save(tmp, array)
    tmp.replace(path)


def _atomic_text(path, text):
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(text)
    tmp.replace(path)


class Progress:
    """One overwritten progress line on stderr: ``[name] unit done/total rate/s``."""

    def __init__(self, name, unit, total, enabled=True):
        self.name, self.unit, self.total, self.enabled = name, unit, total, enabled
        self.t0, self.last = time.time(), 0.0

    def update(self, done):
        """Show ``done`` items (at most twice a second, and always the last)."""
        now = time.time()
        if self.enabled and (now - self.last > 0.5 or done >= self.total):
            self.last = now
            rate = done / max(now - self.t0, 1e-9)
            sys.stderr.write(f"\r[{self.name}] {self.unit:22s} {done}/{self.total} {rate:8.1f}/s")
            if done >= self.total:
                sys.stderr.write("\n")
            sys.stderr.flush()


class Models:
    """The shipped tokenizers and JSCC pairs, opened once (``threads`` intra-op threads, ``device``).

    Checks each JSCC encoder against its decoder and against the tokenizer it
    was trained on, as the GNU Radio blocks do at construction."""

    def __init__(self, threads=1, device="cpu"):
        self.sessions, self.ids, self.k_max, self.rates = {}, {}, {}, {}
        self.threads, self.device = threads, device
        for modality in ("image", "audio"):
            path, meta, sess, _ = model_store.open_model("", "", "tokenizer", modality, threads, device)
            self.sessions[f"{modality}_tokenizer"], self.ids[f"{modality}_tokenizer"] = sess, model_store.model_id(path)
        self.ids["image_detokenizer"] = model_store.model_id(model_store.find(*zoo.resolve("detokenizer", "image")))
        for modality in ("image", "audio", "text"):
            p_enc, m_enc, s_enc, _ = model_store.open_jscc(modality, "", "", "encoder", threads, device)
            p_dec, m_dec, s_dec, _ = model_store.open_jscc(modality, "", "", "decoder", threads, device)
            model_store.check_jscc_pair(p_enc, m_enc, m_dec)
            want = self.ids.get(f"{modality}_tokenizer", "text_vocab")
            if m_enc["tokenizer"] != want:
                raise ValueError(f"{p_enc.name} was trained on tokens of {m_enc['tokenizer']!r}, but the shipped "
                                 f"{modality} tokenizer is {want!r}")
            self.sessions[f"{modality}_jscc_encoder"], self.sessions[f"{modality}_jscc_decoder"] = s_enc, s_dec
            self.ids[f"{modality}_jscc_encoder"] = model_store.model_id(p_enc)
            self.ids[f"{modality}_jscc_decoder"] = model_store.model_id(p_dec)
            self.k_max[modality] = int(m_enc["k_max"])
            self.rates[modality] = json.loads(m_enc["rates"])

    def deps(self, stream, copy):
        """Model ids a unit (stream × copy) is made with; a unit is rebuilt when they change."""
        m = MODALITY[stream]
        out = {"vocab": layout.vocab_hash()} if m == "text" else {f"{m}_tokenizer": self.ids[f"{m}_tokenizer"]}
        if copy > 0:
            out.update({k: self.ids[k] for k in (f"{m}_jscc_encoder", f"{m}_jscc_decoder")})
        return out

    def tokenize_images(self, images, batch=256, progress=None):
        """uint8 (N, 64, 64, 3) → tokens (N, S, d) float32, ``batch`` images per call (as the tokenizer block)."""
        sess, out = self.sessions["image_tokenizer"], []
        for i in range(0, len(images), batch):
            x = np.asarray(images[i:i + batch], np.float32).transpose(0, 3, 1, 2) / 255.0
            out.append(sess.run(None, {"image": np.clip(x, 0, 1)})[0].astype(np.float32))
            progress and progress.update(i + len(x))
        return np.concatenate(out)

    def tokenize_audio(self, clips, batch=256, progress=None):
        """int16 clips → [(T_i, d) float32]: log-mel padded to whole tokens with silence (the tokenizer
        block's ``_check_audio``), one call per group of equal length."""
        mels = []
        for a in clips:
            mel = audio_features.log_mel(a)
            pad = -mel.shape[1] % mod.FRAMES_PER_TOKEN
            mels.append(np.pad(mel, ((0, 0), (0, pad)), constant_values=audio_features.SILENCE))
        out = [None] * len(mels)
        done = 0
        for idx in _groups([m.shape[1] for m in mels], batch):
            res = self.sessions["audio_tokenizer"].run(None, {"mel": np.stack([mels[i] for i in idx])})[0]
            for j, i in enumerate(idx):
                out[i] = res[j].astype(np.float32)
            done += len(idx)
            progress and progress.update(done)
        return out

    def send(self, modality, x, link, rng):
        """One batch through the link: ``x`` (B, S, d) tokens or (B, L) ids, ``link`` (B,) of ``LINK_DTYPE``
        (channel, snr_db, rate and h already drawn); the noise is drawn here from ``rng``.

        Returns the decoder's tokens (B, S, d) float32, or the argmax ids (B, L) int64 for text."""
        snr = link["snr_db"].astype(np.float32)
        rate = link["rate"].astype(np.float32)
        feed = {"tokens": x.astype(np.int64 if modality == "text" else np.float32), "snr_db": snr, "rate": rate}
        symbols = self.sessions[f"{modality}_jscc_encoder"].run(None, feed)[0]
        b, s, k = symbols.shape[:3]
        rx_sym = np.zeros((b, s, k, 2), np.float32)
        rx_rel = np.zeros((b, s, k), np.float32)
        normal = rng.standard_normal
        for i in range(b):
            r = int(link["rate"][i])
            z = jscc_frame.frame_order(symbols[i].astype(np.float64), r)
            h, nv = np.complex128(link["h"][i]), cm.noise_variance(np.float64(link["snr_db"][i]))
            y = cm.apply_channel(z, h, nv, cm.complex_normal(normal, z.shape))
            rx_sym[i], rx_rel[i] = jscc_frame.decoder_input(y, h, nv, s, r, k, lambda shape: np.zeros(shape, np.float32))
        out = self.sessions[f"{modality}_jscc_decoder"].run(
            None, {"symbols": rx_sym, "reliability": rx_rel, "snr_db": snr, "rate": rate})[0]
        return out.argmax(-1).astype(np.int64) if modality == "text" else out.astype(np.float32)


def _groups(lengths, batch):
    """Index lists of equal length, each at most ``batch`` long (sorted by length, then index)."""
    by_len = {}
    for i, n in enumerate(lengths):
        by_len.setdefault(int(n), []).append(i)
    for n in sorted(by_len):
        idx = by_len[n]
        for j in range(0, len(idx), batch):
            yield idx[j:j + batch]


def draw_link(rng, n, snr_range=SNR_RANGE, channels=CHANNELS, rates=DEFAULT_RATES):
    """Per-item link conditions (n,) of ``LINK_DTYPE``: channel uniform over ``channels``, SNR uniform in
    ``snr_range`` dB, rate uniform over ``rates``, and one block-fading h per item (``draw_fading``)."""
    link = np.zeros(n, LINK_DTYPE)
    names = list(channels)
    pick = rng.integers(0, len(names), n)
    link["channel"] = [CHANNEL_CODES[names[i]] for i in pick]
    link["snr_db"] = rng.uniform(snr_range[0], snr_range[1], n) if snr_range[1] > snr_range[0] else snr_range[0]
    link["rate"] = np.asarray(rates)[rng.integers(0, len(rates), n)]
    for c, name in enumerate(names):
        sel = np.flatnonzero(pick == c)
        link["h"][sel] = cm.draw_fading(rng.standard_normal, (len(sel),), name)
    return link


def link_summary(link):
    """A short JSON-able summary of a unit's draws (for the manifest)."""
    out = {"snr_db_min": round(float(link["snr_db"].min()), 3), "snr_db_max": round(float(link["snr_db"].max()), 3),
           "snr_db_mean": round(float(link["snr_db"].mean()), 3), "rates": sorted({int(r) for r in link["rate"]})}
    for name, code in CHANNEL_CODES.items():
        if code:
            out[f"{name}_fraction"] = round(float(np.mean(link["channel"] == code)), 4)
    return out


def _flat(arrays, dtype, width=None):
    offsets = np.zeros(len(arrays) + 1, np.int64)
    offsets[1:] = np.cumsum([len(a) for a in arrays])
    shape = (int(offsets[-1]),) + ((width,) if width else ())
    flat = np.zeros(shape, dtype)
    for a, lo, hi in zip(arrays, offsets[:-1], offsets[1:]):
        flat[lo:hi] = a
    return flat, offsets


def _split_flat(flat, offsets):
    return [flat[lo:hi] for lo, hi in zip(offsets[:-1], offsets[1:])]


def corpus_digest(root, split):
    """sha256[:16] of a split's ``meta.json`` (its counts, seed and answer tables identify the build)."""
    return hashlib.sha256((pathlib.Path(root) / split / "meta.json").read_bytes()).hexdigest()[:16]


class Builder:
    """Builds one cache folder (see the module docstring); ``build()`` returns the manifest."""

    def __init__(self, corpus, split, out, copies=4, seed=0, snr_range=SNR_RANGE, channels=CHANNELS,
                 rates=DEFAULT_RATES, threads=1, device="cpu", batch=256, limit=None, name=None, streams=STREAMS,
                 models=None, progress=True, clean_from=None):
        if copies < 0:
            raise ValueError(f"copies must be >= 0; got {copies}")
        if not channels or any(c not in CHANNELS for c in channels):
            raise ValueError(f"channels must be some of {CHANNELS}; got {channels!r}")
        if snr_range[0] > snr_range[1]:
            raise ValueError(f"the SNR range {snr_range} is empty")
        self.corpus, self.split = pathlib.Path(corpus), split
        self.data = CorpusSplit(corpus, split)
        self.name = name or split
        self.folder = pathlib.Path(out) / self.name
        self.copies, self.seed, self.batch = int(copies), int(seed), int(batch)
        self.snr_range, self.channels, self.rates = tuple(map(float, snr_range)), tuple(channels), tuple(map(int, rates))
        self.streams = tuple(streams)
        self.models = models or Models(threads, device)
        for m in ("image", "audio", "text"):
            bad = [r for r in self.rates if r not in self.models.rates[m]]
            if bad:
                raise ValueError(f"rates {bad} are not rates of the shipped {m} JSCC {self.models.rates[m]}")
        n_scenes, n_utt = len(self.data), len(self.data.utterances)
        self.n_scenes = n_scenes if limit is None else min(int(limit), n_scenes)
        self.n_utt = n_utt if limit is None else min(int(limit), n_utt)
        self.q_rows = [q for q in self.data.questions if q["scene"] < self.n_scenes]
        self.progress = progress
        self.clean_from = pathlib.Path(clean_from) if clean_from else None
        self.config = {"schema": SCHEMA, "corpus": str(self.corpus.resolve()), "split": split,
                       "corpus_meta_sha": corpus_digest(corpus, split), "seed": self.seed,
                       "snr_range_db": list(self.snr_range), "channels": list(self.channels),
                       "rates": list(self.rates), "limit": limit, "scenes": self.n_scenes, "questions": len(self.q_rows),
                       "utterances": self.n_utt}

    # --- the manifest -------------------------------------------------------------------------------
    def _load_manifest(self):
        path = self.folder / "manifest.json"
        if not path.is_file():
            return None
        manifest = json.loads(path.read_text())
        diff = {k: (manifest.get(k), v) for k, v in self.config.items() if manifest.get(k) != v}
        if diff:
            raise ValueError(f"the cache at {self.folder} was built with other settings: "
                             + "; ".join(f"{k} {a!r} there, {b!r} now" for k, (a, b) in diff.items())
                             + " (use another --out, or delete the folder)")
        return manifest

    def _save_manifest(self, manifest):
        self.folder.mkdir(parents=True, exist_ok=True)
        _atomic_text(self.folder / "manifest.json", json.dumps(manifest, indent=1, sort_keys=True) + "\n")

    def seed_of(self, stream, copy):
        """The entropy of a unit's random stream: [seed, crc32(folder name), stream index, copy]."""
        return [self.seed, zlib.crc32(self.name.encode()), STREAMS.index(stream), int(copy)]

    # --- building -----------------------------------------------------------------------------------
    def build(self):
        """Make every missing or stale unit; returns the manifest (also written to ``manifest.json``)."""
        manifest = self._load_manifest() or dict(self.config, units={})
        manifest.update(models=self.models.ids, copies=max(self.copies, manifest.get("copies", 0)))
        self.folder.mkdir(parents=True, exist_ok=True)
        self._targets()
        for stream in self.streams:
            for copy in range(self.copies + 1 if stream in LINKED else 1):
                key = f"{stream}.c{copy}"
                deps = self.models.deps(stream, copy)
                done = manifest["units"].get(key)
                if done and done["models"] == deps and (self.folder / done["file"]).is_file():
                    continue
                if done:
                    changed = [k for k in deps if done["models"].get(k) != deps[k]]
                    print(f"[{self.name}] rebuilding {key}: {', '.join(changed) or 'file missing'} changed",
                          flush=True)
                t0 = time.time()
                entry = (copy == 0 and self._reuse_clean(stream, deps)) or self._unit(stream, copy)
                entry.update(models=deps, threads=self.models.threads, seconds=round(time.time() - t0, 3),
                             file=f"{key}.npy")
                manifest["units"][key] = entry
                self._save_manifest(manifest)
                n = entry["items"]
                print(f"[{self.name}] {key}: {n} items in {entry['seconds']:.1f} s "
                      f"({n / max(entry['seconds'], 1e-9):.0f}/s)", flush=True)
        manifest["complete"] = all(f"{s}.c{c}" in manifest["units"] for s in self.streams
                                   for c in range(manifest["copies"] + 1 if s in LINKED else 1))
        manifest["timing"] = timing(manifest)
        self._save_manifest(manifest)
        return manifest

    def _reuse_clean(self, stream, deps):
        """Link copy 0 of ``stream`` from ``clean_from`` (a cache of the same corpus split, limit and models)
        instead of tokenizing again; returns its manifest entry, or None when it cannot."""
        if self.clean_from is None or not (self.clean_from / "manifest.json").is_file():
            return None
        src = json.loads((self.clean_from / "manifest.json").read_text())
        unit = src.get("units", {}).get(f"{stream}.c0")
        same = all(src.get(k) == self.config[k] for k in ("corpus", "corpus_meta_sha", "split", "limit"))
        if not (same and unit and unit["models"] == deps and (self.clean_from / unit["file"]).is_file()):
            return None
        names = [unit["file"]] + ([f"{stream}.offsets.npy"] if stream not in ("images", "caption_images") else [])
        for name in names:
            tmp = self.folder / (name + ".tmp")
            tmp.unlink(missing_ok=True)
            try:
                os.link(self.clean_from / name, tmp)
            except OSError:
                shutil.copyfile(self.clean_from / name, tmp)
            tmp.replace(self.folder / name)
        return dict(unit, reused_from=str(self.clean_from))

    def _targets(self):
        """``targets.npz`` and ``rows.json``: clean answers, transcripts and labels (cheap; written when they
        are missing or differ)."""
        utt = self.data.utterances[:self.n_utt]
        train_meta = self.corpus / "train" / "meta.json"
        heard = set(json.loads(train_meta.read_text())["speakers"]) if train_meta.is_file() else set()
        pool = set(speech.speakers("train"))
        rows = {"question_template": [q["template"] for q in self.q_rows],
                "question_text": [q["text"] for q in self.q_rows],
                "answer_text": [q["answer"] for q in self.q_rows],
                "question_trace": [questions.trace(q["program"], self.data.objects(q["scene"])) for q in self.q_rows],
                "caption_text": [c["text"] for c in self.data.captions[:self.n_scenes]],
                "description_text": [captions.describe(self.data.objects(i)) for i in range(self.n_scenes)],
                "transcript_text": [u["text"] for u in utt],
                "speaker": [u["speaker"] for u in utt],
                "speaker_heard_in_train": [u["speaker"] in heard for u in utt],
                "speaker_held_out": [u["speaker"] not in pool for u in utt]}
        text = json.dumps(rows) + "\n"
        path = self.folder / "rows.json"
        if path.is_file() and path.read_text() == text and (self.folder / "targets.npz").is_file():
            return
        transcripts = [np.array(vocab.encode(u["text"], add_special=False), np.int64) for u in utt]
        t_flat, t_off = _flat(transcripts, np.int64)
        descriptions = [np.array(vocab.encode(d, add_special=False), np.int64) for d in rows["description_text"]]
        d_flat, d_off = _flat(descriptions, np.int64)
        traces = [np.array(vocab.encode(t, add_special=False), np.int64) for t in rows["question_trace"]]
        q_flat, q_off = _flat(traces, np.int64)
        np.savez(self.folder / "targets.tmp.npz", answer=np.array([vocab.TOKEN_ID[q["answer"]] for q in self.q_rows],
                                                                  np.int64),
                 question_scene=np.array([q["scene"] for q in self.q_rows], np.int64),
                 transcript=t_flat, transcript_offsets=t_off, description=d_flat, description_offsets=d_off,
                 trace=q_flat, trace_offsets=q_off,
                 utterance_scene=np.array([u["scene"] for u in utt], np.int64))
        (self.folder / "targets.tmp.npz").replace(self.folder / "targets.npz")
        _atomic_text(path, text)

    def clean(self, stream):
        """Copy 0 of ``stream`` (tokens or ids), loaded from the cache (or made now if it is missing)."""
        path = self.folder / f"{stream}.c0.npy"
        if path.is_file():
            arr = np.load(path)
            if stream in ("images", "caption_images"):
                return arr
            return _split_flat(arr, np.load(self.folder / f"{stream}.offsets.npy"))
        return self._make_clean(stream, Progress(self.name, f"{stream}.c0", 1, False))

    def _make_clean(self, stream, bar):
        if stream == "images":
            return self.models.tokenize_images(self.data.images[:self.n_scenes], self.batch, bar)
        if stream == "caption_images":
            return self.models.tokenize_images(self.data.caption_images[:self.n_scenes], self.batch, bar)
        if stream == "audio":
            return self.models.tokenize_audio([self.data.audio(k) for k in range(self.n_utt)], self.batch, bar)
        texts = [q["text"] for q in self.q_rows] if stream == "questions" else \
            [c["text"] for c in self.data.captions[:self.n_scenes]]
        return [np.array(vocab.encode(t), np.int64) for t in texts]

    def _unit(self, stream, copy):
        n = {"images": self.n_scenes, "caption_images": self.n_scenes, "questions": len(self.q_rows),
             "captions": self.n_scenes, "audio": self.n_utt}[stream]
        bar = Progress(self.name, f"{stream}.c{copy}", n, self.progress)
        entry = {"items": n, "stream": stream, "copy": copy, "modality": MODALITY[stream]}
        if copy == 0:
            out = self._make_clean(stream, bar)
            entry["clean"] = True
        else:
            clean = self.clean(stream)
            rng = np.random.default_rng(np.random.SeedSequence(self.seed_of(stream, copy)))
            link = draw_link(rng, n, self.snr_range, self.channels, self.rates)
            out = self._send(MODALITY[stream], clean, link, rng, bar)
            _atomic_save(self.folder / f"{stream}.c{copy}.link.npy", link)
            entry.update(clean=False, seed=self.seed_of(stream, copy), link=link_summary(link),
                         link_file=f"{stream}.c{copy}.link.npy")
        if isinstance(out, list):
            flat, offsets = _flat(out, np.float32 if stream == "audio" else np.int64,
                                  out[0].shape[1] if stream == "audio" and out else None)
            if stream == "audio" and not out:
                flat = np.zeros((0, layout.TOKEN_DIM), np.float32)
            _atomic_save(self.folder / f"{stream}.offsets.npy", offsets)
            out = flat
        _atomic_save(self.folder / f"{stream}.c{copy}.npy", out)
        entry["shape"] = list(out.shape)
        return entry

    def _send(self, modality, clean, link, rng, bar):
        """Every item of ``clean`` through the link (batches of one length); same container as ``clean``."""
        if isinstance(clean, np.ndarray):
            out = np.zeros_like(clean)
            for i in range(0, len(clean), self.batch):
                sl = slice(i, i + self.batch)
                out[sl] = self.models.send(modality, clean[sl], link[sl], rng)
                bar.update(min(i + self.batch, len(clean)))
            return out
        out, done = [None] * len(clean), 0
        for idx in _groups([len(c) for c in clean], self.batch):
            res = self.models.send(modality, np.stack([clean[i] for i in idx]), link[idx], rng)
            for j, i in enumerate(idx):
                out[i] = res[j]
            done += len(idx)
            bar.update(done)
        return out


def timing(manifest):
    """Seconds per 1,000 scenes (images, caption images, questions, captions) and per 1,000 utterances
    (audio), over the units built in this folder (clean copy + received copies; linked ones not counted)."""
    per = {"scenes": 0.0, "utterances": 0.0}
    for key, unit in manifest["units"].items():
        if "reused_from" in unit:
            continue
        kind = "utterances" if unit["stream"] == "audio" else "scenes"
        n = manifest["utterances"] if kind == "utterances" else manifest["scenes"]
        per[kind] += unit["seconds"] * 1000.0 / max(n, 1)
    return {"seconds_per_1000_scenes": round(per["scenes"], 2),
            "seconds_per_1000_utterances": round(per["utterances"], 2), "copies": manifest["copies"]}


class Cache:
    """A built cache folder, read-only: arrays memory-mapped, items for the MLLM's three tasks.

    ``n_copies`` counts copy 0 (clean) and the received copies."""

    def __init__(self, folder):
        self.folder = pathlib.Path(folder)
        path = self.folder / "manifest.json"
        if not path.is_file():
            raise FileNotFoundError(f"no MLLM cache at {self.folder} (build it with python -m onnx_export.mllm.data)")
        self.manifest = json.loads(path.read_text())
        if not self.manifest.get("complete"):
            raise ValueError(f"the cache at {self.folder} is incomplete; run the build again to finish it")
        self.n_copies = self.manifest["copies"] + 1
        load = lambda name: np.load(self.folder / name, mmap_mode="r")   # noqa: E731
        self.images = [load(f"images.c{c}.npy") for c in range(self.n_copies)]
        self.caption_images = load("caption_images.c0.npy")
        self._flat = {s: [load(f"{s}.c{c}.npy") for c in range(self.n_copies)] for s in ("questions", "captions", "audio")}
        self._offsets = {s: np.load(self.folder / f"{s}.offsets.npy") for s in ("questions", "captions", "audio")}
        t = np.load(self.folder / "targets.npz")
        self.answer, self.question_scene = t["answer"], t["question_scene"]
        self.transcripts = _split_flat(t["transcript"], t["transcript_offsets"])
        self.utterance_scene = t["utterance_scene"]
        if "description" not in t:
            raise ValueError(f"the cache at {self.folder} predates the dsc task; run the build again (it only "
                             "rewrites targets.npz)")
        self.descriptions = _split_flat(t["description"], t["description_offsets"])
        if "trace" not in t:
            raise ValueError(f"the cache at {self.folder} predates VQA traces; run the build again (it only "
                             "rewrites targets.npz)")
        self.traces = _split_flat(t["trace"], t["trace_offsets"])
        self.rows = json.loads((self.folder / "rows.json").read_text())
        self.n_scenes, self.n_questions, self.n_utterances = len(self.caption_images), len(self.answer), len(self.transcripts)

    def link(self, stream, copy):
        """The link draws of a received copy (``LINK_DTYPE``), or None for copy 0."""
        return None if copy == 0 else np.load(self.folder / f"{stream}.c{copy}.link.npy")

    def seq(self, stream, copy, i):
        """Item ``i`` of a variable-length stream (question/caption ids, audio tokens) in copy ``copy``."""
        off = self._offsets[stream]
        return np.asarray(self._flat[stream][copy][off[i]:off[i + 1]])

    def vqa(self, q, copy=0, image_copy=None, trace=False):
        """VQA item of question ``q``: image tokens and question ids of ``copy`` (``image_copy`` overrides).
        The target is the answer word, or with ``trace`` the words of ``questions.trace`` (the objects the
        question refers to), ``<sep>``, the answer word."""
        c = copy if image_copy is None else image_copy
        target = [int(self.answer[q])]
        if trace:
            target = [int(i) for i in self.traces[q]] + [vocab.SEP] + target
        return layout.vqa(np.asarray(self.images[c][self.question_scene[q]]), self.seq("questions", copy, q), target)

    def t2i(self, s, copy=0):
        """t2i item of scene ``s``: caption ids of ``copy`` → the clean tokens of the caption's render."""
        return layout.t2i(self.seq("captions", copy, s), np.asarray(self.caption_images[s]))

    def asr(self, u, copy=0):
        """ASR item of utterance ``u``: audio tokens of ``copy`` → the clean transcript."""
        return layout.asr(self.seq("audio", copy, u), self.transcripts[u])

    def describe(self, s, copy=0):
        """dsc item of scene ``s``: its image tokens of ``copy`` → the clean scene description."""
        return layout.describe(np.asarray(self.images[copy][s]), self.descriptions[s])

    def counts(self):
        """{'vqa', 't2i', 'asr', 'dsc'}: items per task."""
        return {"vqa": self.n_questions, "t2i": self.n_scenes, "asr": self.n_utterances, "dsc": self.n_scenes}

    def token_stats(self, modality):
        """(mean, std) per dimension (d,) of the clean training tokens of ``modality`` ('image': scene and
        caption renders; 'audio')."""
        if modality == "image":
            x = np.concatenate([np.asarray(self.images[0]).reshape(-1, layout.TOKEN_DIM),
                                np.asarray(self.caption_images).reshape(-1, layout.TOKEN_DIM)])
        else:
            x = np.asarray(self._flat["audio"][0])
        return x.mean(0), x.std(0)


def main(argv=None):
    """Command line: build the cache of each ``--split`` (progress on stderr, one line per unit)."""
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--corpus", required=True, help="a built corpus (python -m gnuradio.unitocom.data.corpus build)")
    p.add_argument("--split", default="train", help="comma-separated splits, e.g. train,val,test")
    p.add_argument("--out", required=True, help="cache root; each split goes to <out>/<split>")
    p.add_argument("--copies", type=int, default=4, help="received copies per item (copy 0, clean, comes on top)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--snr-min", type=float, default=SNR_RANGE[0])
    p.add_argument("--snr-max", type=float, default=SNR_RANGE[1])
    p.add_argument("--channels", default=",".join(CHANNELS))
    p.add_argument("--rates", default=",".join(map(str, DEFAULT_RATES)), help="symbols per token, drawn per item")
    p.add_argument("--limit", type=int, default=None, help="only the first N scenes and N utterances")
    p.add_argument("--name", default=None, help="folder name under --out (default: the split)")
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--device", default="cpu", choices=("cpu", "cuda", "auto"))
    p.add_argument("--batch", type=int, default=256)
    args = p.parse_args(argv)
    models = Models(args.threads, args.device)
    splits = [s for s in args.split.split(",") if s]
    for split in splits:
        b = Builder(args.corpus, split, args.out, args.copies, args.seed, (args.snr_min, args.snr_max),
                    tuple(args.channels.split(",")), tuple(int(r) for r in args.rates.split(",")),
                    batch=args.batch, limit=args.limit, name=args.name if len(splits) == 1 else None,
                    models=models)
        m = b.build()
        t = m["timing"]
        print(f"[{b.name}] complete: {m['scenes']} scenes, {m['questions']} questions, {m['utterances']} utterances, "
              f"copies 0…{m['copies']}; {t['seconds_per_1000_scenes']:.1f} s per 1,000 scenes, "
              f"{t['seconds_per_1000_utterances']:.1f} s per 1,000 utterances ({args.threads} thread(s))", flush=True)


if __name__ == "__main__":
    main()
