"""scene_source: CLEVR-style test scenes as image PDUs (a finite source)."""
import numpy as np
import pmt
from gnuradio import blocks, gr
from gnuradio import pdu as gr_pdu

from .data import corpus

SPLITS = ("train", "val", "test")


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
        n_images: how many scenes (>= 1).
        seed: corpus seed (the default build uses 0).
    """

    def __init__(self, split="test", first=0, n_images=16, seed=0):
        gr.hier_block2.__init__(self, "scene_source", gr.io_signature(0, 0, 0), gr.io_signature(0, 0, 0))
        if split not in SPLITS:
            raise ValueError(f"split must be one of {', '.join(SPLITS)}; got {split!r}")
        if int(first) < 0 or int(n_images) < 1:
            raise ValueError(f"need first >= 0 and n_images >= 1; got first={first}, n_images={n_images}")
        size = 64 * 64 * 3
        images = [corpus.scene_image(split, int(first) + i, int(seed)) for i in range(int(n_images))]
        tags = []
        for i in range(int(n_images)):
            for key, value in (("packet_len", pmt.from_long(size)), ("frame_id", pmt.from_long(i)),
                               ("split", pmt.intern(split)), ("scene_index", pmt.from_long(int(first) + i)),
                               ("corpus_seed", pmt.from_long(int(seed))), ("width", pmt.from_long(64)),
                               ("height", pmt.from_long(64)), ("channels", pmt.from_long(3))):
                tags.append(gr.tag_utils.python_to_tag((i * size, pmt.intern(key), value)))
        self.source = blocks.vector_source_b(np.concatenate([im.ravel() for im in images]).tolist(), False, 1, tags)
        self.to_pdu = gr_pdu.tagged_stream_to_pdu(gr.types.byte_t, "packet_len")
        self.connect(self.source, self.to_pdu)
        self.message_port_register_hier_out("pdu")
        self.msg_connect(self.to_pdu, "pdus", self, "pdu")
