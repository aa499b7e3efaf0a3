#!/usr/bin/env python3
"""QA for ofdm_rx (and its ofdm_deframer): frames, their tags and CSI, and what is dropped."""
import numpy as np
from gnuradio import gr_unittest

import ofdm_testing as ot
from gnuradio.unitocom import ofdm_rx, ofdm_tx
from gnuradio.unitocom.ofdm.params import OfdmParams


def layout(bursts, gap=150, lead=400):
    z = np.zeros(gap, np.complex64)
    return np.concatenate([np.zeros(lead, np.complex64)] + [np.concatenate([b, z]) for b in bursts]
                          + [np.zeros(2000, np.complex64)])


def per_symbol_h(tags, n):
    """The gain of every output symbol from ``h`` tags of either form (vector: one gain per symbol on)."""
    h = np.full(n, np.nan, complex)
    for o, k, v in sorted(tags, key=lambda t: t[0]):
        if k == "h":
            v = np.atleast_1d(np.asarray(v, complex))
            h[o:o + len(v)] = v
    return h


class qa_ofdm_rx(gr_unittest.TestCase):

    @classmethod
    def setUpClass(cls):
        cls.frames, tags = ot.jscc_frames(6)
        cls.bursts = ot.transmit(cls.frames, tags, ofdm_tx())

    def test_defaults(self):
        blk = ofdm_rx()
        self.assertEqual(blk.stats()["frames"], 0)

    def test_bad_arguments_raise(self):
        for kwargs in ({"outputs": []}, {"outputs": ["image", "image"]}, {"outputs": ["smell"]},
                       {"sync_threshold": 0.1}, {"sync_threshold": 1.5}, {"fft_len": 100}, {"len_tag_key": ""}):
            with self.assertRaises(ValueError, msg=str(kwargs)):
                ofdm_rx(**kwargs)

    def test_frames_tags_and_csi(self):
        x = ot.channel(layout(self.bursts), snr_db=25.0, cfo=0.1, sro_ppm=20.0, taps=(0.9, 0.3j, 0.2))
        blk = ofdm_rx()
        ((y, tags),) = ot.receive(x, blk)
        self.assertEqual(blk.stats()["frames"], 6)
        self.assertEqual(len(y), 6 * 256)
        first = {k: v for o, k, v in tags if o == 0}
        self.assertEqual((first["frame_id"], first["modality"], first["n_tokens"], first["rate"], first["packet_len"],
                          first["session_id"], first["task"], first["model_id"]),
                         (0, "image", 32, 8, 256, 0xC0FFEE, "vqa", ot.MODEL_ID))
        self.assertAlmostEqual(first["cfo"], 0.1, delta=0.01)
        self.assertAlmostEqual(first["noise_var"], 10 ** (-first["snr_db"] / 10), places=9)
        h = per_symbol_h(tags, len(y))
        self.assertEqual([o for o, k, v in tags if k == "h"], [256 * i for i in range(6)])    # one vector per frame
        self.assertAlmostEqual(float(np.mean(np.abs(h[:256]) ** 2)), 1.0, delta=0.1)
        z = np.concatenate(self.frames)
        err = y / h - z
        self.assertLess(float(np.median(np.abs(err) ** 2)), 10 ** (-18 / 10))

    def test_csi_tag_forms_carry_the_same_channel(self):
        """csi_tags='frame' (one c64vector per frame) and 'symbol' (one complex per symbol): the same
        samples and the very same gains, symbol by symbol."""
        x = ot.channel(layout(self.bursts), snr_db=20.0, cfo=-0.2, taps=(0.8, 0, 0.5j))
        out = {form: ot.receive(x, ofdm_rx(csi_tags=form))[0] for form in ("frame", "symbol")}
        (yf, tf), (ys, ts) = out["frame"], out["symbol"]
        np.testing.assert_array_equal(yf, ys)
        self.assertEqual(len([1 for o, k, v in ts if k == "h"]), len(ys))
        np.testing.assert_array_equal(per_symbol_h(tf, len(yf)), per_symbol_h(ts, len(ys)))
        self.assertEqual(sorted((o, k, v) for o, k, v in tf if k != "h"), sorted((o, k, v) for o, k, v in ts if k != "h"))
        with self.assertRaises(ValueError):
            ofdm_rx(csi_tags="carrier")

    def test_noise_only_gives_no_frames(self):
        blk = ofdm_rx()
        ((y, tags),) = ot.receive(ot.noise(200000), blk)
        self.assertEqual(len(y), 0)
        self.assertEqual(blk.stats()["frames"], 0)

    def test_garbage_and_cut_frames_are_dropped_and_reception_goes_on(self):
        rng = np.random.default_rng(3)
        garbage = ((rng.standard_normal(3000) + 1j * rng.standard_normal(3000)) * 0.7).astype(np.complex64)
        b = self.bursts
        cut = b[1][:int(len(b[1]) * 0.8)]                      # header whole, payload cut
        bad_header = b[2].copy()
        p = OfdmParams()
        hs = p.n_preamble_symbols * p.sym_len
        bad_header[hs:hs + 3 * p.sym_len] = garbage[:3 * p.sym_len]     # header symbols overwritten: CRC fails
        x = layout([b[0], garbage, cut, b[3], bad_header, b[4], garbage, b[5]])
        blk = ofdm_rx()
        ((y, tags),) = ot.receive(ot.channel(x, snr_db=25.0), blk)
        ids = [v for o, k, v in sorted(tags) if k == "frame_id"]
        self.assertEqual(ids, [0, 3, 4, 5])
        s = blk.stats()
        self.assertEqual(s["frames"], 4)
        self.assertGreaterEqual(s["truncated"], 1)
        self.assertGreaterEqual(s["header_errors"], 1)

    def test_routing_by_modality(self):
        img, t1 = ot.jscc_frames(2)
        txt, t2 = ot.jscc_frames(2, n_tokens=10, rate=2, first_id=10, modality="text", seed=1)
        bursts = ot.transmit(img, t1, ofdm_tx()) + ot.transmit(txt, t2, ofdm_tx())
        bursts = [bursts[0], bursts[2], bursts[1], bursts[3]]
        blk = ofdm_rx(outputs=["text", "image"])
        out = ot.receive(ot.channel(layout(bursts), snr_db=25.0), blk, 2)
        self.assertEqual([v for o, k, v in out[0][1] if k == "frame_id"], [10, 11])
        self.assertEqual([v for o, k, v in out[1][1] if k == "frame_id"], [0, 1])
        only = ofdm_rx(outputs=["image"])
        ot.receive(ot.channel(layout(bursts), snr_db=25.0), only)
        self.assertEqual((only.stats()["frames"], only.stats()["unrouted"]), (2, 2))


if __name__ == "__main__":
    gr_unittest.run(qa_ofdm_rx)
