#!/usr/bin/env python3
"""QA for the rx hier block: whole tx → channel → rx links (tiny fixture models for images,
the shipped text JSCC pair for the text link, where the words must come back)."""
import os

import numpy as np
import pmt
from gnuradio import blocks, gr, gr_unittest
from gnuradio import pdu as gr_pdu

from unitocom_testing import FIXTURE_MODELS, make_tag, message_collector, run_flowgraph

os.environ["UNITOCOM_MODEL_DIR"] = str(FIXTURE_MODELS)
from gnuradio.unitocom import block_fading_channel, rx, tx  # noqa: E402
from gnuradio.unitocom.data import corpus, vocab  # noqa: E402
from gnuradio.unitocom.runtime import model_store  # noqa: E402
from gnuradio.unitocom.runtime.onnx_session import make_session  # noqa: E402

TX_ARGS = ("image", "test_tokenizer_s8", "genib", "test_image_jscc_encoder_s8")
RX_ARGS = ("image", "test_image_jscc_decoder_s8", "test_detokenizer_s8", "genib")
TOK8 = model_store.model_id(model_store.find("test_tokenizer_s8", "genib"))


def byte_stream(chunks, meta_key=None):
    """The chunks (u8 arrays) back to back with a packet_len tag (and ``meta_key`` = index) at each start."""
    data = np.concatenate(chunks).astype(np.uint8)
    starts = np.concatenate([[0], np.cumsum([len(c) for c in chunks])[:-1]]).astype(int)
    tags = [make_tag(int(o), "packet_len", len(c)) for o, c in zip(starts, chunks)]
    tags += [make_tag(int(o), meta_key, i) for i, o in enumerate(starts)] if meta_key else []
    return blocks.vector_source_b(data.tolist(), False, 1, tags)


def reference_image(tokens):
    """What the de-tokenizer must make of 8·4 tokens: u8 RGB bytes, row-major."""
    sess = make_session(str(model_store.find("test_detokenizer_s8", "genib")), 1, "cpu")
    im = sess.run(None, {"tokens": np.asarray(tokens, np.float32).reshape(1, 8, 4)})[0][0]
    return np.round(np.clip(im, 0, 1) * 255).astype(np.uint8).transpose(1, 2, 0).ravel()


class qa_rx(gr_unittest.TestCase):

    def test_mismatched_models(self):
        rx(*RX_ARGS)
        with self.assertRaisesRegex(ValueError, "token_len"):
            rx("image", "test_image_jscc_decoder_s8", "test_detokenizer_s16", "genib")
        with self.assertRaises(ValueError):
            rx("video")

    def test_images_cross_a_fading_link_and_all_arrive(self):
        n = 12
        images = [np.random.default_rng(i).integers(0, 256, 12288).astype(np.uint8) for i in range(n)]
        tb = gr.top_block()
        src = byte_stream(images, "frame_id")
        to_pdu = gr_pdu.tagged_stream_to_pdu(gr.types.byte_t, "packet_len")
        transmitter = tx(*TX_ARGS, rate=4, snr_db=10.0, power=2.0, device="cpu")
        channel = block_fading_channel("rayleigh", 10.0, 0, 0.0, 2.0, 5, "packet_len")
        receiver = rx(*RX_ARGS, device="cpu")
        symbols = blocks.vector_sink_c()
        out_images, out_tokens = message_collector(), message_collector()
        tb.connect(src, to_pdu)
        tb.msg_connect(to_pdu, "pdus", transmitter, "pdu")
        tb.connect(transmitter, channel, receiver)
        tb.connect(transmitter, symbols)
        tb.msg_connect(receiver, "pdu", out_images, "in")
        tb.msg_connect(receiver, "tokens", out_tokens, "in")
        run_flowgraph(tb)
        z = np.array(symbols.data())
        self.assertEqual(len(z), n * 8 * 4)
        for i in range(n):                                             # every frame at power 2
            self.assertAlmostEqual(float(np.mean(np.abs(z[32 * i:32 * (i + 1)]) ** 2)), 2.0, places=4)
        tokens, pics = out_tokens.pdus(), out_images.pdus()
        self.assertEqual((len(pics), len(tokens)), (n, n))
        for i, ((tmeta, tvec), (meta, img)) in enumerate(zip(tokens, pics)):
            self.assertEqual((tmeta["frame_id"], meta["frame_id"]), (i, i))            # in order, none lost
            self.assertEqual((tmeta["modality"], tmeta["n_tokens"], tmeta["rate"], tmeta["snr_db"], tmeta["model_id"]),
                             ("image", 8, 4, 10.0, TOK8))
            self.assertEqual((tvec.dtype, tvec.shape), (np.float32, (32,)))
            self.assertTrue(np.all(np.isfinite(tvec)))
            self.assertEqual((meta["width"], meta["height"], meta["channels"], meta["rate"], meta["snr_db"]),
                             (64, 64, 3, 4, 10.0))
            self.assertEqual(meta["h"], tmeta["h"])                   # the image keeps its frame's metadata
            self.assertEqual((img.dtype, img.shape), (np.uint8, (12288,)))
            # the image is the de-tokenizer's output for the tokens published beside it
            np.testing.assert_allclose(img.astype(int), reference_image(tvec).astype(int), atol=1)
        self.assertEqual(len({m["h"] for m, _ in tokens}), n)          # a fade per frame, told to the decoder

    def test_session_and_task_reach_the_token_pdus(self):
        # tx tags session_id / task (its arguments or the PDU's); rx hands them on in both outputs
        # and gives frames without them (here: straight from a vector source) its own arguments
        rng = np.random.default_rng(5)
        images = [rng.integers(0, 256, 12288).astype(np.uint8) for _ in range(2)]
        tb = gr.top_block()
        src = byte_stream(images, "frame_id")
        to_pdu = gr_pdu.tagged_stream_to_pdu(gr.types.byte_t, "packet_len")
        transmitter = tx(*TX_ARGS, rate=4, device="cpu", session_id=5, task="vqa")
        receiver = rx(*RX_ARGS, device="cpu", session_id=99, task="dsc")
        out_images, out_tokens = message_collector(), message_collector()
        tb.connect(src, to_pdu)
        tb.msg_connect(to_pdu, "pdus", transmitter, "pdu")
        channel = block_fading_channel("awgn", 20.0, 0, 0.0, 1.0, 1, "packet_len")     # a Python block: keep a reference
        tb.connect(transmitter, channel, receiver)
        tb.msg_connect(receiver, "pdu", out_images, "in")
        tb.msg_connect(receiver, "tokens", out_tokens, "in")
        run_flowgraph(tb)
        for meta, _ in out_tokens.pdus() + out_images.pdus():
            self.assertEqual((meta["session_id"], meta["task"]), (5, "vqa"))
        self.assertEqual((len(out_tokens.messages), len(out_images.messages)), (2, 2))

        samples = (rng.standard_normal(64) + 1j * rng.standard_normal(64)).astype(np.complex64)
        tags = [make_tag(0, "packet_len", 32), make_tag(32, "packet_len", 32), make_tag(32, "session_id", 8),
                make_tag(32, "task", pmt.intern("asr"))]
        tb = gr.top_block()
        receiver, out_tokens = rx(*RX_ARGS, device="cpu", session_id=99, task="dsc"), message_collector()
        tb.connect(blocks.vector_source_c(samples.tolist(), False, 1, tags), receiver)
        tb.msg_connect(receiver, "tokens", out_tokens, "in")
        run_flowgraph(tb)
        self.assertEqual([(m["session_id"], m["task"]) for m, _ in out_tokens.pdus()], [(99, "dsc"), (8, "asr")])
        with self.assertRaises(ValueError):
            rx(*RX_ARGS, session_id=-1)
        with self.assertRaises(ValueError):
            rx(*RX_ARGS, task="sing")

    def test_text_link(self):
        # the shipped text JSCC pair at 20 dB AWGN makes no token errors on corpus sentences
        # (test_jscc_link_quality): every sentence must come back word for word, in order
        texts = []
        for i in range(3):
            item = corpus.make_item("test", i, 0)
            texts += [q["text"] for q in item["questions"]] + [item["caption"]["text"]]
        tb = gr.top_block()
        src = byte_stream([np.frombuffer(t.encode(), np.uint8) for t in texts], "session_id")
        to_pdu = gr_pdu.tagged_stream_to_pdu(gr.types.byte_t, "packet_len")
        transmitter = tx("text", "", "", "", rate=8, snr_db=20.0, device="cpu")
        channel = block_fading_channel("awgn", 20.0, 0, 0.0, 1.0, 1, "packet_len")
        receiver = rx("text", "", "", "", snr_db=20.0, device="cpu")
        out_text, out_tokens = message_collector(), message_collector()
        tb.connect(src, to_pdu)
        tb.msg_connect(to_pdu, "pdus", transmitter, "pdu")
        tb.connect(transmitter, channel, receiver)
        tb.msg_connect(receiver, "pdu", out_text, "in")
        tb.msg_connect(receiver, "tokens", out_tokens, "in")
        run_flowgraph(tb)
        self.assertEqual((len(out_text.messages), len(out_tokens.messages)), (len(texts), len(texts)))
        for i, ((tmeta, ids), (meta, data)) in enumerate(zip(out_tokens.pdus(), out_text.pdus())):
            self.assertEqual((tmeta["session_id"], meta["session_id"]), (i, i))
            self.assertEqual(ids.dtype, np.int32)
            np.testing.assert_array_equal(ids, vocab.encode(texts[i]))
            self.assertEqual((tmeta["modality"], tmeta["rate"], tmeta["snr_db"], tmeta["model_id"], tmeta["h"]),
                             ("text", 8, 20.0, "text_vocab", 1.0))
            self.assertEqual(data.dtype, np.uint8)
            self.assertEqual(bytes(data).decode("utf-8"), texts[i])


if __name__ == "__main__":
    gr_unittest.run(qa_rx)
