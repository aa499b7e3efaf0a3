"""The separate-coding reference: gr-fec LDPC with the sum-product decoder, JPEG scan transport."""
import numpy as np
import pytest

from gnuradio.unitocom.baselines import ldpc, separate
from gnuradio.unitocom.core import metrics
from gnuradio.unitocom.data import corpus
from gnuradio.unitocom.dsp.constellations import bit_labels, llrs, qam16_gray

CODE = "n_0300_k_0152_gap_03"


@pytest.fixture(scope="module")
def code():
    return ldpc.code(CODE)


def test_code_shape_and_systematic_positions(code):
    assert (code.n, code.k) == (300, 152)
    assert sorted(set(code.info_positions.tolist())) == sorted(code.info_positions.tolist())
    bits = np.random.default_rng(3).integers(0, 2, 5 * code.k).astype(np.uint8)
    cw = code.encode(bits).reshape(5, code.n)
    assert not np.any((code.h.astype(int) @ cw.T) % 2)
    assert np.array_equal(cw[:, code.info_positions].ravel(), bits)


def test_noiseless_llrs_decode_exactly(code):
    bits = np.random.default_rng(4).integers(0, 2, 4 * code.k).astype(np.uint8)
    cw = code.encode(bits)
    out, ok = code.decode(8.0 * (2.0 * cw - 1))
    assert ok.all() and np.array_equal(out, bits)


def _qam_link(code, bits, snr_db, rng):
    constellation = qam16_gray()
    points, labels = np.array(constellation.points()), bit_labels(constellation)
    coded = code.encode(bits)
    sym = points[(coded.reshape(-1, 4) * (1 << np.arange(3, -1, -1))).sum(axis=1)]
    noise_var = 10 ** (-snr_db / 10)
    y = sym + np.sqrt(noise_var / 2) * (rng.standard_normal(sym.size) + 1j * rng.standard_normal(sym.size))
    return coded, llrs(y, points, labels, 1.0, noise_var).ravel()


def test_coding_gain_over_uncoded_16qam(code):
    # 16-QAM at 8 dB SNR: a few percent raw bit errors; the rate-1/2 code removes them
    rng = np.random.default_rng(5)
    bits = rng.integers(0, 2, 40 * code.k).astype(np.uint8)
    coded, soft = _qam_link(code, bits, 8.0, rng)
    raw_ber = np.mean((soft > 0) != coded)
    out, ok = code.decode(soft)
    assert raw_ber > 0.01
    assert np.mean(out != bits) < raw_ber / 20
    assert ok.mean() > 0.9


def test_decoder_flags_failed_blocks(code):
    rng = np.random.default_rng(6)
    bits = rng.integers(0, 2, 10 * code.k).astype(np.uint8)
    _, soft = _qam_link(code, bits, -3.0, rng)
    out, ok = code.decode(soft)
    assert not ok.all() and np.mean(out != bits) > 0.05


def test_best_fit_uses_whole_codewords():
    assert ldpc.best_fit(1024) == ("n_0300_k_0152_gap_03", 3)
    name, blocks = ldpc.best_fit(8192)
    n, k = int(name[2:6]), int(name[9:13])
    assert blocks * n <= 8192 and blocks * k >= 3600
    assert ldpc.best_fit(50)[1] == 0


def test_missing_alist_is_a_clear_error():
    with pytest.raises(FileNotFoundError, match="not found"):
        ldpc.alist_path("n_9999_k_0001")


@pytest.fixture(scope="module")
def ladder():
    return separate.JpegLadder(corpus.scene_image("test", 0, 0))


def test_jpeg_scan_rebuilds_to_the_full_file(ladder):
    from PIL import Image
    import io
    for q in (1, 10, 50):
        full = np.asarray(Image.open(io.BytesIO(separate.jpeg_bytes(ladder.image, q))).convert("RGB"))
        assert np.array_equal(separate.jpeg_rebuild(ladder.scans[q], q, 64, 64), full)
    assert ladder.bits[1] < ladder.bits[50] and ladder.psnr[1] < ladder.psnr[50]


def test_corrupt_scan_does_not_raise(ladder):
    scan = bytearray(ladder.scans[10])
    scan[len(scan) // 2:] = bytes(len(scan) - len(scan) // 2)
    out = separate.jpeg_rebuild(bytes(scan), 10, 64, 64)
    assert out is None or out.shape == (64, 64, 3)
    junk = separate.jpeg_rebuild(b"\xff\xff\x00", 10, 64, 64)
    assert junk is None or junk.shape == (64, 64, 3)


def test_capacity_bound_grows_with_snr_and_symbols(ladder):
    fallback = np.full((64, 64, 3), 128, np.uint8)
    low = separate.send_capacity(ladder, 512, 0.0, 1.0, fallback)
    high = separate.send_capacity(ladder, 512, 20.0, 1.0, fallback)
    wide = separate.send_capacity(ladder, 2048, 20.0, 1.0, fallback)
    assert high[1] is not None and wide[1] > high[1]
    assert low[1] is None or low[1] < high[1]
    # a deep fade sends nothing
    assert separate.send_capacity(ladder, 512, 20.0, 1e-3, fallback)[1] is None


def test_ldpc_link_delivers_at_high_snr_and_falls_back_at_low(ladder):
    fallback = np.full((64, 64, 3), 128, np.uint8)
    rng = np.random.default_rng(7)
    rec, q = separate.send_ldpc(ladder, 1024, 20.0, 1.0 + 0j, rng, fallback)
    assert q is not None and metrics.psnr(rec, ladder.image) == pytest.approx(ladder.psnr[q])
    rec, q = separate.send_ldpc(ladder, 1024, -5.0, 1.0 + 0j, rng, fallback)
    assert q is None and rec is fallback
    # too few channel uses for even quality 1
    assert separate.send_ldpc(ladder, 64, 20.0, 1.0 + 0j, rng, fallback)[1] is None
