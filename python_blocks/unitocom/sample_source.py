"""sample_source: corpus samples for the three MLLM tasks as source PDUs with session ids (a finite source)."""
import numpy as np
import pmt
from gnuradio import blocks, gr
from gnuradio import pdu as gr_pdu

from .core.modalities import IMAGE_BYTES
from .core.tags import DEFAULT_LEN_TAG_KEY, INT64_MAX
from .data import corpus, speech
from .data.scenes import SPLITS
from .runtime.args import check_int

MAX_SAMPLES = 1000
TASK_CHOICES = ("vqa", "t2i", "asr")


def _tags(offset, meta):
    out = []
    for key, value in meta.items():
        if isinstance(value, bool):
            v = pmt.from_bool(value)
        elif isinstance(value, (int, np.integer)):
            v = pmt.from_long(int(value))
        elif isinstance(value, float):
            v = pmt.from_double(value)
        else:
            v = pmt.intern(str(value))
        out.append(gr.tag_utils.python_to_tag((offset, pmt.intern(key), v)))
    return out


class sample_source(gr.hier_block2):
    """Test-split samples for VQA, text-to-image and ASR as the PDUs ``tx`` takes, then finishes.

    Sample i of scene ``first + i`` (``data.corpus.make_item``, the very
    scenes, questions and captions a corpus built with ``seed`` holds; the
    speech is synthesised now with espeak-ng by a test-split speaker):

    * ``vqa``: message out ``image``: the scene, u8 64·64·3 RGB; and message
      out ``text``: question i mod 3 of the scene, UTF-8 bytes; both with
      ``session_id`` = 3·i, ``task`` 'vqa', ``question``, ``answer`` (the
      truth, for scoring), ``scene_index``;
    * ``t2i``: message out ``text``: the scene's caption, ``session_id`` =
      3·i + 1, ``task`` 't2i', ``caption``, ``scene_index``;
    * ``asr``: message out ``audio``: the question spoken, f32 in [-1, 1] at
      16 kHz, ``session_id`` = 3·i + 2, ``task`` 'asr', ``transcript`` (the
      truth), ``speaker``, ``scene_index``.

    Every PDU also has ``sample`` (i), ``modality``, ``split`` and ``corpus_seed``
    (so ``image_sink`` scores the received images). ``tasks`` picks which
    of the three are sent. After the last PDU the source finishes, so a
    headless flowgraph ends by itself.

    Args:
        split: 'train', 'val' or 'test'.
        first: index of the first scene (>= 0).
        n_samples: how many scenes (1…1000).
        seed: corpus seed (>= 0; the default build uses 0).
        tasks: comma-separated subset of 'vqa,t2i,asr'.
    """

    def __init__(self, split="test", first=0, n_samples=4, seed=0, tasks="vqa,t2i,asr"):
        gr.hier_block2.__init__(self, "sample_source", gr.io_signature(0, 0, 0), gr.io_signature(0, 0, 0))
        if not isinstance(split, str) or split not in SPLITS:
            raise ValueError(f"split must be one of {', '.join(SPLITS)}; got {split!r}")
        n_samples = check_int("n_samples", n_samples, 1, MAX_SAMPLES)
        first = check_int("first", first, 0, INT64_MAX - n_samples + 1)
        seed = check_int("seed", seed, 0, INT64_MAX)
        wanted = [t.strip() for t in str(tasks).split(",") if t.strip()]
        if not wanted or any(t not in TASK_CHOICES for t in wanted):
            raise ValueError(f"tasks must be a comma-separated subset of {','.join(TASK_CHOICES)}; got {tasks!r}")
        if "asr" in wanted and not speech.espeak_available():
            raise ValueError("the asr samples need espeak-ng (Debian package espeak-ng; ./unitocom bootstrap)")
        self.tasks = tuple(t for t in TASK_CHOICES if t in wanted)
        images, texts, audio = [], [], []
        tags = {"image": [], "text": [], "audio": []}
        sizes = {"image": 0, "text": 0, "audio": 0}
        self.samples = []

        def add(port, payload, meta):
            meta = dict(meta, split=split, corpus_seed=seed, **{DEFAULT_LEN_TAG_KEY: len(payload)})
            tags[port] += _tags(sizes[port], meta)
            sizes[port] += len(payload)

        for i in range(n_samples):
            index = first + i
            item = corpus.make_item(split, index, seed)
            q, cap = item["questions"][i % len(item["questions"])], item["caption"]["text"]
            rec = {"sample": i, "scene_index": index, "question": q["text"], "answer": q["answer"], "caption": cap}
            if "vqa" in self.tasks:
                meta = {"sample": i, "session_id": 3 * i, "task": "vqa", "question": q["text"], "answer": q["answer"],
                        "scene_index": index}
                images.append(item["image"].ravel())
                add("image", images[-1], dict(meta, modality="image"))
                texts.append(np.frombuffer(q["text"].encode(), np.uint8))
                add("text", texts[-1], dict(meta, modality="text"))
            if "t2i" in self.tasks:
                texts.append(np.frombuffer(cap.encode(), np.uint8))
                add("text", texts[-1], {"sample": i, "session_id": 3 * i + 1, "task": "t2i", "caption": cap,
                                        "scene_index": index, "modality": "text"})
            if "asr" in self.tasks:
                rng = np.random.default_rng(item["scene"]["scene_seed"] + 1)
                pcm, info = speech.utterance(rng, q["text"], split)
                audio.append(pcm.astype(np.float32) / 32768.0)
                add("audio", audio[-1], {"sample": i, "session_id": 3 * i + 2, "task": "asr",
                                         "transcript": q["text"], "speaker": info["speaker"], "scene_index": index,
                                         "modality": "audio"})
                rec["speaker"] = info["speaker"]
            self.samples.append(rec)
        self.image_source = self._port("image", blocks.vector_source_b, gr.types.byte_t, images, np.uint8, tags)
        self.text_source = self._port("text", blocks.vector_source_b, gr.types.byte_t, texts, np.uint8, tags)
        self.audio_source = self._port("audio", blocks.vector_source_f, gr.types.float_t, audio, np.float32, tags)

    def _port(self, name, source, item_type, chunks, dtype, tags):
        """Message out ``name``: the concatenated ``chunks`` through a vector source → tagged_stream_to_pdu."""
        self.message_port_register_hier_out(name)
        if not chunks:
            return None
        data = np.concatenate(chunks).astype(dtype)
        src = source(memoryview(data.tobytes()).cast(data.dtype.char) if dtype == np.float32 else
                     memoryview(data.tobytes()), False, 1, tags[name])
        to_pdu = gr_pdu.tagged_stream_to_pdu(item_type, DEFAULT_LEN_TAG_KEY)
        self.connect(src, to_pdu)
        self.msg_connect(to_pdu, "pdus", self, name)
        return src
