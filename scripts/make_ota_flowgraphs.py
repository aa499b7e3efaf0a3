import yaml, sys
def param(name, label, typ, value, x):
    return {"name": name, "id": "parameter", "parameters": {"label": label, "type": typ, "value": value, "short_id": "", "hide": "none"},
            "states": {"coordinate": [x, 8], "rotation": 0, "state": "enabled"}}
def blk(name, bid, params, x, y):
    return {"name": name, "id": bid, "parameters": params, "states": {"coordinate": [x, y], "rotation": 0, "state": "enabled"}}
def var(name, value, x, y=100):
    return blk(name, "variable", {"value": value}, x, y)
def imp(name, imports, x, y=100):
    return blk(name, "import", {"imports": imports}, x, y)
def options(id_, title, desc, x=8):
    return {"parameters": {"id": id_, "title": title, "author": "gr-unitocom", "category": "[UniToCom]", "description": desc,
            "generate_options": "no_gui", "output_language": "python", "run_options": "run", "run": "True", "max_nouts": "0",
            "realtime_scheduling": ""}, "states": {"coordinate": [8, 8], "rotation": 0, "state": "enabled"}}
def dump(path, opts, blocks, conns):
    d = {"options": opts, "blocks": blocks, "connections": conns, "metadata": {"file_format": 1, "grc_version": "3.10.5.1"}}
    with open(path, "w") as f:
        yaml.safe_dump(d, f, sort_keys=False, default_flow_style=False, width=120)

OFDM_TX = lambda name, x, y, n_inputs="1", gap="160": blk(name, "unitocom_ofdm_tx", {"fft_len": "fft_len", "cp_len": "cp_len", "occupied_carriers": "[]",
        "pilot_carriers": "[]", "rolloff": "2", "gap": gap, "n_inputs": n_inputs, "len_tag_key": "'packet_len'"}, x, y)
OFDM_RX = lambda name, x, y, outputs="['image']": blk(name, "unitocom_ofdm_rx", {"fft_len": "fft_len", "cp_len": "cp_len", "occupied_carriers": "[]",
        "pilot_carriers": "[]", "outputs": outputs, "sync_threshold": "0.4", "len_tag_key": "'packet_len'"}, x, y)
TX = lambda name, modality, x, y, task="''", session="session_id": blk(name, "unitocom_tx", {"modality": f"'{modality}'", "tokenizer_model": "''",
        "variant": "''", "jscc_model": "''", "rate": "rate", "snr_db": "snr_db", "power": "1.0", "len_tag_key": "'packet_len'",
        "device": "'cpu'", "threads": "1", "session_id": session, "task": task}, x, y)
RX = lambda name, modality, x, y: blk(name, "unitocom_rx", {"modality": f"'{modality}'", "jscc_model": "''", "detokenizer_model": "''",
        "variant": "''", "snr_db": "snr_db", "len_tag_key": "'packet_len'", "device": "'cpu'", "threads": "1", "session_id": "0", "task": "''"}, x, y)

SCENE_NAMES = '''"""Names the sent scene in each received image's metadata (the header carries only frame_id), for the PSNR."""
import pmt
from gnuradio import gr


class blk(gr.basic_block):
    """frame_id -> scene_index (scene_source sends scene i as frame i), plus split and corpus_seed."""

    def __init__(self, split='test', corpus_seed=0):
        gr.basic_block.__init__(self, name='Scene names', in_sig=None, out_sig=None)
        self.split, self.corpus_seed = split, corpus_seed
        self.message_port_register_in(pmt.intern('in'))
        self.message_port_register_out(pmt.intern('out'))
        self.set_msg_handler(pmt.intern('in'), self.handle)

    def handle(self, msg):
        meta = pmt.car(msg)
        fid = pmt.dict_ref(meta, pmt.intern('frame_id'), pmt.PMT_NIL)
        if pmt.is_integer(fid):
            meta = pmt.dict_add(meta, pmt.intern('scene_index'), fid)
            meta = pmt.dict_add(meta, pmt.intern('split'), pmt.intern(self.split))
            meta = pmt.dict_add(meta, pmt.intern('corpus_seed'), pmt.from_long(self.corpus_seed))
        self.message_port_pub(pmt.intern('out'), pmt.cons(meta, pmt.cdr(msg)))
'''

# --- sim/ota_loopback.grc ----------------------------------------------------------------
b = [param("snr_db", "SNR (dB, in-band)", "eng_float", "15.0", 200), param("cfo", "CFO (carrier spacings)", "eng_float", "0.1", 340),
     param("sro_ppm", "Sampling-rate offset (ppm)", "eng_float", "20.0", 500), param("delay", "Timing offset (samples)", "intx", "517", 660),
     param("frac_delay", "Fractional timing offset", "eng_float", "0.37", 820), param("doppler", "Doppler fD*Ts (0 = static)", "eng_float", "0.0", 980),
     param("n_images", "Number of test images", "intx", "16", 1140), param("seed", "Noise seed", "intx", "1", 1300),
     param("out_dir", "PNG folder ('' = none)", "str", "", 1460),
     var("fft_len", "64", 200), var("cp_len", "16", 300), var("rate", "8", 400), var("session_id", "7", 500),
     var("taps", "[0.85 / 1.0, 0, 0.45j, 0, 0, -0.25]", 600),
     var("noise_voltage", "OfdmParams(fft_len, cp_len).noise_voltage_for_snr(snr_db) * (sum(abs(t) ** 2 for t in taps) ** 0.5)", 800),
     imp("imp_ofdm", "from gnuradio.unitocom.ofdm.params import OfdmParams", 1000),
     blk("source", "unitocom_scene_source", {"split": "'test'", "first": "0", "n_images": "n_images + 1", "seed": "0"}, 8, 250),
     blk("scene_names", "epy_block", {"_source_code": SCENE_NAMES, "split": "'test'", "corpus_seed": "0"}, 1640, 400),
     TX("transmitter", "image", 200, 250, task="'vqa'"),
     OFDM_TX("ofdm_transmitter", 420, 250),
     blk("timing", "blocks_delay", {"type": "complex", "delay": "delay", "num_ports": "1", "vlen": "1", "showports": "False"}, 620, 250),
     blk("fractional", "mmse_resampler_xx", {"type": "complex", "phase_shift": "frac_delay", "resamp_ratio": "1.0"}, 760, 250),
     blk("multipath", "channels_channel_model", {"noise_voltage": "noise_voltage", "freq_offset": "cfo / fft_len", "epsilon": "1.0 + sro_ppm * 1e-6",
         "taps": "taps", "seed": "seed", "block_tags": "False"}, 920, 250),
     blk("fading", "channels_selective_fading_model", {"N": "8", "fDTs": "doppler", "LOS": "True", "K": "1e6 if doppler == 0 else 4.0",
         "seed": "seed", "delays": "[0.0]", "mags": "[1.0]", "ntaps": "8"}, 1100, 250),
     OFDM_RX("ofdm_receiver", 1280, 250),
     RX("receiver", "image", 1460, 250),
     blk("sink", "unitocom_image_sink", {"directory": "out_dir", "label": "'ota_loopback'"}, 1640, 250)]
c = [["source", "pdu", "transmitter", "pdu"], ["transmitter", "0", "ofdm_transmitter", "0"], ["ofdm_transmitter", "0", "timing", "0"],
     ["timing", "0", "fractional", "0"], ["fractional", "0", "multipath", "0"], ["multipath", "0", "fading", "0"],
     ["fading", "0", "ofdm_receiver", "0"], ["ofdm_receiver", "0", "receiver", "0"], ["receiver", "pdu", "scene_names", "in"], ["scene_names", "out", "sink", "pdu"]]
dump("/work/main/flowgraphs/sim/ota_loopback.grc",
     options("ota_loopback", "UniToCom over OFDM: loopback through GNU Radio's channel models",
             "test scenes -> unitocom_tx -> unitocom_ofdm_tx -> timing offset, fractional delay, channel model (noise, CFO, SRO, 3 taps), "
             "Doppler fading -> unitocom_ofdm_rx (estimated CSI) -> unitocom_rx -> PSNR"), b, c)

# --- ota/*.grc ------------------------------------------------------------------------------
def radio_params(gain_label, gain_default):
    return [param("samp_rate", "Sample rate (S/s)", "eng_float", "1e6", 200), param("freq", "Centre frequency (Hz)", "eng_float", "915e6", 360),
            param("gain", gain_label, "eng_float", gain_default, 520), param("dev_addr", "USRP address (e.g. type=b200 or addr=192.168.10.2)", "str", "", 680)]
USRP_SINK = blk("usrp", "uhd_usrp_sink", {"type": "fc32", "otw": "", "stream_args": "", "stream_chans": "[]", "dev_addr": "dev_addr",
                "dev_args": '""', "sync": "", "num_mboards": "1", "nchan": "1", "samp_rate": "samp_rate", "center_freq0": "freq",
                "gain0": "gain", "gain_type0": "default", "ant0": "TX/RX", "bw0": "0", "len_tag_name": "'packet_len'"}, 1100, 250)
USRP_SOURCE = blk("usrp", "uhd_usrp_source", {"type": "fc32", "otw": "", "stream_args": "", "stream_chans": "[]", "dev_addr": "dev_addr",
                  "dev_args": '""', "sync": "", "num_mboards": "1", "nchan": "1", "samp_rate": "samp_rate", "center_freq0": "freq",
                  "gain0": "gain", "gain_type0": "default", "ant0": "RX2", "bw0": "0", "dc_offs_enb0": '""', "iq_imbal_enb0": '""'}, 8, 250)
COMMON = [var("fft_len", "64", 200, 100), var("cp_len", "16", 300, 100), var("rate", "8", 400, 100), var("snr_db", "15.0", 500, 100),
          var("session_id", "1", 600, 100)]
AMP = blk("amplitude", "blocks_multiply_const_vxx", {"type": "complex", "const": "tx_amplitude", "vlen": "1"}, 900, 250)
for kind, tasks, mods in (("image", "vqa", ("image", "text")), ("speech", "asr", ("audio",))):
    b = radio_params("TX gain (dB)", "60") + [param("tx_amplitude", "Baseband amplitude (OFDM peaks: keep < 0.5)", "eng_float", "0.3", 840),
                                            param("n_samples", "Samples to send", "intx", "1000", 1000),
                                            param("gap", "Silence after each burst (samples; paces frames for the receiver)", "intx", "50000", 1160)] + COMMON
    b += [blk("source", "unitocom_sample_source", {"split": "'test'", "first": "0", "n_samples": "n_samples", "seed": "0", "tasks": f"'{tasks}'"}, 8, 250),
          OFDM_TX("ofdm_transmitter", 700, 250, str(len(mods)), "gap"), AMP, USRP_SINK]
    c = [["ofdm_transmitter", "0", "amplitude", "0"], ["amplitude", "0", "usrp", "0"]]
    for i, m in enumerate(mods):
        b.append(TX(f"tx_{m}", m, 300, 250 + 150 * i, task=f"'{tasks}'"))
        c += [["source", m, f"tx_{m}", "pdu"], [f"tx_{m}", "0", "ofdm_transmitter", str(i)]]
    dump(f"/work/main/flowgraphs/ota/ota_{kind}_tx.grc",
         options(f"ota_{kind}_tx", f"UniToCom over the air: {kind} transmitter (USRP)",
                 f"corpus samples ({tasks}) -> unitocom_tx per modality -> unitocom_ofdm_tx -> UHD USRP Sink (burst mode on packet_len)"), b, c)
    b = radio_params("RX gain (dB)", "30") + [param("out_dir", "Folder for received files", "str", "ota_rx", 840)] + COMMON
    outs = "[" + ", ".join(f"'{m}'" for m in mods) + "]"
    b += [USRP_SOURCE, OFDM_RX("ofdm_receiver", 250, 250, outs)]
    c = [["usrp", "0", "ofdm_receiver", "0"]]
    for i, m in enumerate(mods):
        b.append(RX(f"rx_{m}", m, 500, 250 + 150 * i))
        c.append(["ofdm_receiver", str(i), f"rx_{m}", "0"])
    if "image" in mods:
        b += [blk("images", "unitocom_image_sink", {"directory": "out_dir", "label": "'ota_image'"}, 800, 250),
              blk("questions", "blocks_message_debug", {"en_uvec": "True"}, 800, 400)]
        c += [["rx_image", "pdu", "images", "pdu"], ["rx_text", "pdu", "questions", "print"]]
    else:
        b += [blk("to_stream", "pdu_pdu_to_tagged_stream", {"type": "float", "tag": "packet_len"}, 800, 250),
              blk("wav", "blocks_wavfile_sink", {"file": "out_dir + '/ota_speech.wav'", "nchan": "1", "samp_rate": "16000",
                                                 "format": "FORMAT_WAV", "bits_per_sample1": "FORMAT_PCM_16", "append": "False"}, 1000, 250),
              blk("transcripts", "blocks_message_debug", {"en_uvec": "False"}, 800, 400)]
        c += [["rx_audio", "pdu", "to_stream", "pdus"], ["to_stream", "0", "wav", "0"], ["rx_audio", "tokens", "transcripts", "print"]]
    dump(f"/work/main/flowgraphs/ota/ota_{kind}_rx.grc",
         options(f"ota_{kind}_rx", f"UniToCom over the air: {kind} receiver (USRP)",
                 f"UHD USRP Source -> unitocom_ofdm_rx (sync, header, estimated CSI) -> unitocom_rx per modality -> files and printed metadata"), b, c)
