"""[8/10]'s verification in the loopback (fixed seeds): tx → ofdm_tx → channel model → ofdm_rx → rx.

At 15 dB in-band SNR with a CFO of 0.1 carrier spacing, a random timing offset
(integer and fractional), a sampling-rate offset of 20 ppm and a 3-tap multipath
channel (``apps.ota_loopback.TAPS``): every frame detected with a valid header,
the per-frame SNR estimate within 1 dB of the truth, image PSNR within 1 dB of
the genie-CSI simulation (tx → block_fading_channel AWGN → rx) at the same SNR,
no frame lost or duplicated; session id and task arrive in the PDUs.
The 1,000-frame run is ``scripts/verify_ota_loopback.py``."""
import numpy as np
import pytest

from gnuradio.unitocom.apps import ota_loopback as ol
from gnuradio.unitocom.ofdm.params import OfdmParams

N_IMAGES = 40


@pytest.fixture(scope="module")
def link():
    images = ol.scenes(N_IMAGES)
    bursts = ol.transmit(images)
    imp = ol.Impairments(snr_db=15.0, seed=7)
    got, stats = ol.receive(ol.impair(bursts, imp)[0])
    return images, bursts, imp, got, stats


def test_every_frame_arrives_once_with_its_header(link):
    images, bursts, _, got, stats = link
    assert len(bursts) == N_IMAGES
    ids = [m["frame_id"] for m, _ in got]
    assert ids == list(range(N_IMAGES)), ids                # none lost, none duplicated, in order
    assert stats["frames"] == N_IMAGES and stats["truncated"] == 0
    for meta, _ in got:
        assert (meta["session_id"], meta["task"], meta["modality"]) == (0xC0FFEE, "vqa", "image")


def test_snr_estimate_within_1db(link):
    _, _, imp, got, _ = link
    truth = ol.true_snr_db(imp, OfdmParams())
    err = np.array([m["snr_db"] - truth for m, _ in got])
    assert np.all(np.abs(err) < 1.0), err
    assert all(m["snr_est_db"] == m["snr_db"] for m, _ in got)


def test_psnr_within_1db_of_genie_csi(link):
    images, _, imp, got, _ = link
    est = np.mean(list(ol.psnrs(got, images).values()))
    genie = np.mean(list(ol.psnrs(ol.genie(images, imp.snr_db, seed=7), images).values()))
    assert est > genie - 1.0, (est, genie)
