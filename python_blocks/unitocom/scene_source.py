"""scene_source: CLEVR-style test scenes as image PDUs (a finite source)."""
import numpy as np
import pmt
from gnuradio import blocks, gr
from gnuradio import pdu as gr_pdu

from .core.modalities import IMAGE_BYTES, IMAGE_CHANNELS, IMAGE_SIZE
from .core.tags import DEFAULT_LEN_TAG_KEY, INT64_MAX
from .data import corpus
from .data.scenes import SPLITS
from .runtime.args import check_int

MAX_IMAGES = 10_000          # all scenes are rendered at construction: 12 KiB (and ~4 ms) each


class scene_source(gr.hier_block2):
    """Emits ``n_images`` scenes of the corpus generator as image PDUs, then finishes.

    Message out ``pdu``: u8 vector of 64·64·3 RGB bytes (row-major), metadata
    ``frame_id`` (0, 1, …), ``split``, ``scene_index``, ``corpus_seed``,
    ``width``, ``height``, ``channels``. The images are the very ones a
    corpus built with seed ``seed`` holds (``data.corpus.scene_image``), so
    ``image_sink`` can score what arrives. When the last PDU is out, the
    source finishes and GNU Radio's "done" reaches the message blocks after
    it, so a headless flowgraph ends by itself.

    Args:
        split: 'train', 'val' or 'test'.
        first: index of the first scene (>= 0).
        n_images: how many scenes (1…10000).
        seed: corpus seed (>= 0; the default build uses 0).
    """

    def __init__(self, split="test", first=0, n_images=16, seed=0):
        gr.hier_block2.__init__(self, "scene_source", gr.io_signature(0, 0, 0), gr.io_signature(0, 0, 0))
        if not isinstance(split, str) or split not in SPLITS:
            raise ValueError(f"split must be one of {', '.join(SPLITS)}; got {split!r}")
        n_images = check_int("n_images", n_images, 1, MAX_IMAGES)
        first = check_int("first", first, 0, INT64_MAX - n_images + 1)
        seed = check_int("seed", seed, 0, INT64_MAX)
        images = np.concatenate([corpus.scene_image(split, first + i, seed).ravel() for i in range(n_images)])
        tags = []
        for i in range(n_images):
            for key, value in ((DEFAULT_LEN_TAG_KEY, pmt.from_long(IMAGE_BYTES)), ("frame_id", pmt.from_long(i)),
                               ("split", pmt.intern(split)), ("scene_index", pmt.from_long(first + i)),
                               ("corpus_seed", pmt.from_long(seed)), ("width", pmt.from_long(IMAGE_SIZE)),
                               ("height", pmt.from_long(IMAGE_SIZE)), ("channels", pmt.from_long(IMAGE_CHANNELS))):
                tags.append(gr.tag_utils.python_to_tag((i * IMAGE_BYTES, pmt.intern(key), value)))
        # a memoryview of the bytes, not a list: no Python int object per byte
        self.source = blocks.vector_source_b(memoryview(images.tobytes()), False, 1, tags)
        self.to_pdu = gr_pdu.tagged_stream_to_pdu(gr.types.byte_t, DEFAULT_LEN_TAG_KEY)
        self.connect(self.source, self.to_pdu)
        self.message_port_register_hier_out("pdu")
        self.msg_connect(self.to_pdu, "pdus", self, "pdu")
