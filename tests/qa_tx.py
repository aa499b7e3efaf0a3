#!/usr/bin/env python3
"""QA for the tx hier block (tiny fixture models); qa_rx runs whole links."""
import os

import numpy as np
import pmt
from gnuradio import blocks, gr, gr_unittest

from unitocom_testing import FIXTURE_MODELS, pdu, pdu_source, run_flowgraph

os.environ["UNITOCOM_MODEL_DIR"] = str(FIXTURE_MODELS)
from gnuradio.unitocom import tx  # noqa: E402
from gnuradio.unitocom.runtime import model_store  # noqa: E402
from gnuradio.unitocom.runtime.onnx_session import make_session  # noqa: E402

TX_ARGS = ("image", "test_tokenizer_s8", "genib", "test_image_jscc_encoder_s8")
TOK8 = model_store.model_id(model_store.find("test_tokenizer_s8", "genib"))


def session(name, variant="genib"):
    return make_session(str(model_store.find(name, variant)), 1, "cpu")


def expected_frame(img, rate, snr_db, power):
    """√P × the encoder model's frame for the tokenizer model's tokens of ``img`` (u8 bytes)."""
    x = (img.astype(np.float32) / 255.0).reshape(64, 64, 3).transpose(2, 0, 1)[None]
    tokens = session("test_tokenizer_s8").run(None, {"image": x})[0]
    s = session("test_image_jscc_encoder_s8").run(None, {"tokens": tokens, "snr_db": np.array([snr_db], np.float32),
                                                         "rate": np.array([float(rate)], np.float32)})[0][0]
    return np.sqrt(power) * (s[:, :rate, 0] + 1j * s[:, :rate, 1]).T.reshape(-1)


def transmit(transmitter, msgs):
    """pdu_source(msgs) → tx → vector_sink until the graph finishes; (samples, {offset: {key: value}})."""
    tb = gr.top_block()
    src, sink = pdu_source(msgs), blocks.vector_sink_c()
    tb.msg_connect(src, "out", transmitter, "pdu")
    tb.connect(transmitter, sink)
    run_flowgraph(tb)
    tags = {}
    for t in sink.tags():
        tags.setdefault(t.offset, {})[pmt.symbol_to_string(t.key)] = pmt.to_python(t.value)
    return np.array(sink.data()), tags


class qa_tx(gr_unittest.TestCase):

    def test_arguments_and_mismatched_models(self):
        tx(*TX_ARGS)
        with self.assertRaisesRegex(ValueError, "trained on tokens of"):
            tx("image", "test_tokenizer_s16", "genib", "test_image_jscc_encoder_s8")
        with self.assertRaises(ValueError):
            tx("video")
        for kwargs in ({"rate": 3}, {"power": 0}, {"snr_db": float("nan")}):
            with self.assertRaises(ValueError, msg=str(kwargs)):
                tx(*TX_ARGS, **kwargs)

    def test_images_become_frames_at_the_given_power(self):
        rng = np.random.default_rng(0)
        images = [rng.integers(0, 256, 12288).astype(np.uint8) for _ in range(4)]
        bad = [pmt.intern("x"), pdu({}, np.zeros(100, np.uint8))]
        msgs = bad + [pdu({"frame_id": 10 + i}, im) for i, im in enumerate(images)] + bad
        z, tags = transmit(tx(*TX_ARGS, rate=4, snr_db=6.0, power=2.0, device="cpu"), msgs)
        self.assertEqual(len(z), 4 * 8 * 4)
        self.assertEqual(sorted(tags), [32 * i for i in range(4)])
        for i, im in enumerate(images):
            frame, t = z[32 * i:32 * (i + 1)], tags[32 * i]
            self.assertEqual((t["frame_id"], t["packet_len"], t["n_tokens"], t["rate"], t["tx_snr_db"], t["modality"],
                              t["tokenizer_id"]), (10 + i, 32, 8, 4, 6.0, "image", TOK8))
            self.assertAlmostEqual(float(np.mean(np.abs(frame) ** 2)), 2.0, places=4)
            np.testing.assert_allclose(frame, expected_frame(im, 4, 6.0, 2.0), rtol=1e-4, atol=1e-5)

    def test_set_rate_and_snr(self):
        transmitter = tx(*TX_ARGS, rate=4, snr_db=10.0, device="cpu")
        transmitter.set_rate(2)
        transmitter.set_snr_db(0.0)
        with self.assertRaises(ValueError):
            transmitter.set_rate(3)
        im = np.random.default_rng(1).integers(0, 256, 12288).astype(np.uint8)
        z, tags = transmit(transmitter, [pdu({}, im)])
        self.assertEqual((len(z), tags[0]["rate"], tags[0]["tx_snr_db"]), (16, 2, 0.0))
        np.testing.assert_allclose(z, expected_frame(im, 2, 0.0, 1.0), rtol=1e-4, atol=1e-5)

    def test_session_and_task_tags(self):
        # the PDU's session_id / task win; absent or unusable ones (logged) become the arguments'
        transmitter = tx(*TX_ARGS, rate=2, device="cpu", session_id=7, task="dsc")
        im = np.random.default_rng(2).integers(0, 256, 12288).astype(np.uint8)
        metas = [{}, {"session_id": 42, "task": "vqa"}, {"session_id": -3, "task": "sing"},
                 {"session_id": 2 ** 32, "task": 5}, {"task": "t2i"}]
        msgs = [pdu(m, im) for m in metas]
        msgs.insert(1, pmt.cons(pmt.from_long(1), pmt.init_u8vector(12288, im.tolist())))    # not a PDU: dropped
        big = pmt.dict_add(pmt.make_dict(), pmt.intern("session_id"), pmt.from_uint64(2 ** 32 - 1))
        msgs.append(pmt.cons(big, pmt.init_u8vector(12288, im.tolist())))
        z, tags = transmit(transmitter, msgs)
        got = [(tags[s]["session_id"], tags[s].get("task")) for s in sorted(tags)]
        self.assertEqual(got, [(7, "dsc"), (42, "vqa"), (7, "dsc"), (7, "dsc"), (7, "t2i"), (2 ** 32 - 1, "dsc")])
        transmitter = tx(*TX_ARGS, rate=2, device="cpu")                # defaults: session 0, no task
        transmitter.set_session_id(2 ** 32 - 1)
        transmitter.set_task("asr")
        transmitter.set_task("")
        _, tags = transmit(transmitter, [pdu({}, im)])
        self.assertEqual((tags[0]["session_id"], "task" in tags[0]), (2 ** 32 - 1, False))

    def test_session_arguments(self):
        for kwargs in ({"session_id": -1}, {"session_id": 2 ** 32}, {"session_id": 1.5}, {"session_id": None},
                       {"task": "sing"}, {"task": None}, {"task": "health"}):
            with self.assertRaises(ValueError, msg=str(kwargs)):
                tx(*TX_ARGS, **kwargs)
        transmitter = tx(*TX_ARGS)
        with self.assertRaises(ValueError):
            transmitter.set_session_id(-1)
        with self.assertRaises(ValueError):
            transmitter.set_task("VQA")

    def test_text_becomes_one_frame_per_sentence(self):
        from gnuradio.unitocom.data import vocab
        texts = ["is the small red cube left of the large sphere?", "what size is the rubber cube?"]
        msgs = [pdu({"q": i}, np.frombuffer(t.encode(), np.uint8)) for i, t in enumerate(texts)]
        z, tags = transmit(tx("text", "", "", "test_text_jscc_encoder", rate=8, device="cpu"), msgs)
        lengths = [len(vocab.encode(t)) for t in texts]
        self.assertEqual(len(z), 8 * sum(lengths))
        self.assertEqual(sorted(tags), [0, 8 * lengths[0]])
        for q, start in enumerate(sorted(tags)):
            t = tags[start]
            self.assertEqual((t["q"], t["n_tokens"], t["packet_len"], t["modality"], t["tokenizer_id"]),
                             (q, lengths[q], 8 * lengths[q], "text", "text_vocab"))
            self.assertAlmostEqual(float(np.mean(np.abs(z[start:start + 8 * lengths[q]]) ** 2)), 1.0, places=4)


if __name__ == "__main__":
    gr_unittest.run(qa_tx)
