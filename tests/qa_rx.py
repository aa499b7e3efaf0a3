#!/usr/bin/env python3
"""QA for the rx hier block: whole tx → channel → rx links (tiny fixture models)."""
import os

import numpy as np
import pmt
from gnuradio import blocks, gr, gr_unittest
from gnuradio import pdu as gr_pdu

from unitocom_testing import FIXTURE_MODELS, make_tag

os.environ["UNITOCOM_MODEL_DIR"] = str(FIXTURE_MODELS)
from gnuradio.unitocom import block_fading_channel, rx, tx  # noqa: E402

TX_ARGS = ("image", "test_tokenizer_s8", "genib", "test_image_jscc_encoder_s8")
RX_ARGS = ("image", "test_image_jscc_decoder_s8", "test_detokenizer_s8", "genib")


def image_stream(n):
    """n random 64×64×3 images as a byte stream with length and frame_id tags."""
    data = np.random.default_rng(0).integers(0, 256, n * 12288).astype(np.uint8)
    tags = [make_tag(i * 12288, "packet_len", 12288) for i in range(n)]
    tags += [make_tag(i * 12288, "frame_id", i) for i in range(n)]
    return blocks.vector_source_b(data.tolist(), False, 1, tags)


class qa_rx(gr_unittest.TestCase):

    def test_mismatched_models(self):
        rx(*RX_ARGS)
        with self.assertRaisesRegex(ValueError, "token_len"):
            rx("image", "test_image_jscc_decoder_s8", "test_detokenizer_s16", "genib")
        with self.assertRaises(ValueError):
            rx("video")

    def test_images_cross_a_fading_link_and_all_arrive(self):
        n = 12
        tb = gr.top_block()
        src = image_stream(n)
        to_pdu = gr_pdu.tagged_stream_to_pdu(gr.types.byte_t, "packet_len")
        transmitter = tx(*TX_ARGS, rate=4, snr_db=10.0, power=2.0, device="cpu")
        channel = block_fading_channel("rayleigh", 10.0, 0, 0.0, 2.0, 5, "packet_len")
        receiver = rx(*RX_ARGS, device="cpu")
        symbols = blocks.vector_sink_c()
        images, tokens = blocks.message_debug(), blocks.message_debug()
        tb.connect(src, to_pdu)
        tb.msg_connect(to_pdu, "pdus", transmitter, "pdu")
        tb.connect(transmitter, channel, receiver)
        tb.connect(transmitter, symbols)
        tb.msg_connect(receiver, "pdu", images, "store")
        tb.msg_connect(receiver, "tokens", tokens, "store")
        tb.run()
        self.assertEqual(len(symbols.data()), n * 8 * 4)
        np.testing.assert_allclose(np.mean(np.abs(np.array(symbols.data())) ** 2), 2.0, rtol=1e-4)
        self.assertEqual((images.num_messages(), tokens.num_messages()), (n, n))
        metas = [pmt.to_python(pmt.car(images.get_message(i))) for i in range(n)]
        self.assertEqual([m["frame_id"] for m in metas], list(range(n)))
        self.assertTrue(all(m["width"] == 64 and m["rate"] == 4 and m["snr_db"] == 10.0 for m in metas))
        self.assertEqual(len(pmt.u8vector_elements(pmt.cdr(images.get_message(0)))), 12288)

    def test_text_link(self):
        tb = gr.top_block()
        text = "is there a red cube ?".encode()
        src = blocks.vector_source_b(list(text), False, 1, [make_tag(0, "packet_len", len(text))])
        to_pdu = gr_pdu.tagged_stream_to_pdu(gr.types.byte_t, "packet_len")
        transmitter = tx("text", "", "", "test_text_jscc_encoder", rate=8, snr_db=20.0, device="cpu")
        receiver = rx("text", "test_text_jscc_decoder", "", "", device="cpu")
        out = blocks.message_debug()
        tb.connect(src, to_pdu)
        tb.msg_connect(to_pdu, "pdus", transmitter, "pdu")
        tb.connect(transmitter, receiver)
        tb.msg_connect(receiver, "pdu", out, "store")
        tb.run()
        self.assertEqual(out.num_messages(), 1)        # random weights: the words are not right, the flow is


if __name__ == "__main__":
    gr_unittest.run(qa_rx)
