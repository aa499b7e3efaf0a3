"""Audio features (numpy) and the audio tokenizer/de-tokenizer (torch, ONNX)."""
import json

import numpy as np
import pytest

from gnuradio.unitocom.dsp import audio_features as af
from gnuradio.unitocom.data import speech

torch = pytest.importorskip("torch")
from onnx_export import export  # noqa: E402
from onnx_export.tokenizers import genib  # noqa: E402
from onnx_export.tokenizers.audio import AudioDetokenizer, AudioTokenizer  # noqa: E402


def tone(seconds=1.0, f=440.0):
    t = np.arange(int(seconds * af.SAMPLE_RATE)) / af.SAMPLE_RATE
    return (0.5 * np.sin(2 * np.pi * f * t)).astype(np.float32)


def test_log_mel_shape_range_and_peak_at_the_tone():
    m = af.log_mel(tone(1.0, 1000.0))
    assert m.shape == (af.N_MELS, 101) and m.dtype == np.float32 and np.all(np.isfinite(m))
    centers = af.mel_to_hz((af.hz_to_mel(0) + np.arange(1, af.N_MELS + 1)
                            * (af.hz_to_mel(8000) - af.hz_to_mel(0)) / (af.N_MELS + 1)))
    peak = centers[np.argmax(m[:, 50])]
    assert 850 < peak < 1150
    # int16 input is scaled to [-1, 1]; quantisation noise only shows near the log floor
    ref, quantised = af.log_mel(tone()), af.log_mel((tone() * 32767).astype(np.int16))
    loud = ref > -1.0
    assert loud.sum() > 200 and np.allclose(quantised[loud], ref[loud], atol=0.01)
    with pytest.raises(ValueError):
        af.log_mel(np.zeros(100, np.float32))


@pytest.mark.skipif(not speech.espeak_available(), reason="espeak-ng not installed")
def test_griffin_lim_reconstruction_has_the_same_spectrogram():
    audio = speech.synthesize("what color is the large cube?", "en-us+f2", 160, 50)
    m = af.log_mel(audio)
    wave = af.griffin_lim(m, iterations=24)
    assert np.all(np.isfinite(wave)) and abs(len(wave) - len(audio)) < af.HOP
    again = af.log_mel(wave)[:, :m.shape[1]]
    assert np.mean(np.abs(again - m)) < 0.12


def test_audio_tokenizer_shapes_batch_independence_and_objective():
    torch.manual_seed(0)
    tok, det = AudioTokenizer(8, 32, 1, 2), AudioDetokenizer(8, 32, 1, 2)
    mel = torch.randn(3, 64, 120)
    mu = tok(mel)
    assert mu.shape == (3, 30, 8) and det(mu).shape == mel.shape
    tok.eval(), det.eval()
    with torch.no_grad():
        together = det(tok(mel))
        alone = torch.cat([det(tok(mel[i:i + 1])) for i in range(3)])
    torch.testing.assert_close(together, alone, rtol=1e-4, atol=1e-5)
    tok.train(), det.train()
    loss, parts = genib.genib_loss(tok, det, mel)
    loss.backward()
    assert np.isfinite(loss.item()) and all(np.isfinite(list(parts.values())))


def test_audio_onnx_export_has_a_dynamic_time_axis(tmp_path):
    torch.manual_seed(0)
    tok = AudioTokenizer(8, 32, 1, 2).eval()
    meta = {"role": "tokenizer", "modality": "audio", "token_len": "25/s", "token_dim": "8", "n_symbols": "100/s",
            "variant": "genib", "train_data": "none (test)", "train_metrics": json.dumps({})}
    path = export.export(tok, torch.randn(2, 64, 80), "mel", ["tokens"], meta, tmp_path, "audio_tokenizer",
                         "genib", dynamic_dims={"mel": {2: "frames"}, "tokens": {1: "tokens"}})
    assert export.check_parity(tok, path, torch.randn(1, 64, 200))
