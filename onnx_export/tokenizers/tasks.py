"""What differs between modalities in tokenizer training: data, networks,
evaluation, export shapes and the model card's table.

One class per modality (``TASKS``), built from the ``train_tokenizer``
arguments and the run folder. Scores are ``gnuradio.unitocom.core.metrics``
on the decoded test split (PSNR/SSIM for images, log-mel L1 in nepers for
audio), noiseless and through ``genib.token_channel`` (``CONDITIONS``).
"""
import numpy as np
import torch

from gnuradio.unitocom.core import metrics
from gnuradio.unitocom.dsp import audio_features as af
from gnuradio.unitocom.data.loaders import CorpusSplit

from . import genib
from .audio import STRIDE, AudioDetokenizer, AudioTokenizer
from .image import ImageDetokenizer, ImageTokenizer

CONDITIONS = ("noiseless", "rayleigh_0dB", "rayleigh_10dB", "rayleigh_20dB")


def _links():
    gen = torch.Generator().manual_seed(1234)
    return {c: (None if c == "noiseless" else
                (lambda t, snr=float(c.split("_")[1][:-2]): genib.token_channel(t, snr, "rayleigh", generator=gen)))
            for c in CONDITIONS}


def image_scores(decoded, images):
    """PSNR (dB) and SSIM of each decoded image against the original: two tensors (B, 3, H, W) in [0, 1]
    → numpy (B, 2), columns PSNR and SSIM (``core.metrics`` with peak 1, SSIM's 7×7 box window)."""
    a = decoded.detach().permute(0, 2, 3, 1).numpy()
    b = images.detach().permute(0, 2, 3, 1).numpy()
    ssim = [metrics.ssim(u, v, peak=1.0) for u, v in zip(a, b)]
    return np.stack([metrics.psnr(a, b, peak=1.0), np.asarray(ssim)], axis=1)


class ImageTask:
    """Image tokenizers: 64×64 corpus scenes, ``ImageTokenizer``/``ImageDetokenizer`` with S = ``args.tokens``,
    scored by PSNR and SSIM on the first 1000 test images."""
    name, title, input_name, output_name = "image", "Image tokenizer", "image", "image"
    loss_text = "MSE on pixels in [0, 1]"
    eval_text = "first 1000 images"
    dynamic_in = dynamic_out = None

    def __init__(self, args, out):
        self.args = args
        self.train = CorpusSplit(args.corpus, "train").images
        self.test = CorpusSplit(args.corpus, "test").images
        self.suffix = f"_s{args.tokens}"
        self.token_len = str(args.tokens)
        self.n_symbols = str(args.tokens * args.token_dim // 2)
        self.shape_text = f"S = {args.tokens} tokens × d = {args.token_dim}"

    def models(self, vae):
        """(tokenizer, de-tokenizer) built from the arguments; ``vae`` adds the log-variance head."""
        a = self.args
        return (ImageTokenizer(a.tokens, a.token_dim, a.width, a.depth, a.heads, vae=vae),
                ImageDetokenizer(a.tokens, a.token_dim, a.width, a.depth, a.heads))

    @staticmethod
    def tensor(images):
        """u8 images (N, H, W, 3) → float tensor (N, 3, H, W) in [0, 1]."""
        return torch.from_numpy(np.array(images)).permute(0, 3, 1, 2).float() / 255.0

    def batches(self, rng):
        """One pass over the training images in ``rng``'s random order: tensors (batch, 3, 64, 64)."""
        order = rng.permutation(len(self.train))
        for i in range(0, len(order) - self.args.batch + 1, self.args.batch):
            yield self.tensor(self.train[np.sort(order[i:i + self.args.batch])])

    def example(self, n, other_shape=False):
        """A random tokenizer input for export and parity: (n, 3, 64, 64) (images have one shape)."""
        return torch.rand(n, 3, 64, 64)

    @torch.no_grad()
    def evaluate(self, tok, det, vae, n=1000, batch=100):
        """Score the pair on the first ``n`` test images under every condition.

        Returns ``{condition: {"psnr_db": 2 decimals, "ssim": 4 decimals}, "latent_std_per_dim": [...]}``."""
        scores = {c: [] for c in CONDITIONS}
        latents = []
        links = _links()
        for i in range(0, min(n, len(self.test)), batch):
            x = self.tensor(self.test[i:i + batch])
            mu = tok(x)[0] if vae else tok(x)
            latents.append(mu.flatten(0, 1))
            for c, link in links.items():
                y = det(mu if link is None else link(mu))
                scores[c].append(image_scores(y, x))
        out = {}
        for c, vals in scores.items():
            v = np.concatenate(vals)
            out[c] = {"psnr_db": round(float(v[:, 0].mean()), 2), "ssim": round(float(v[:, 1].mean()), 4)}
        out["latent_std_per_dim"] = [round(s, 4) for s in torch.cat(latents).std(dim=0).tolist()]
        return out

    def metrics_table(self, m):
        """The card's markdown table (condition, PSNR, SSIM) from ``evaluate``'s dict."""
        rows = "\n".join(f"| {c} | {m[c]['psnr_db']} | {m[c]['ssim']} |" for c in CONDITIONS)
        return "| condition | PSNR (dB) | SSIM |\n|---|---|---|\n" + rows


class AudioTask:
    """Audio tokenizers: log-mels of the corpus utterances (cached in the run folder), ``AudioTokenizer``/
    ``AudioDetokenizer`` at 25 tokens/s, scored by mean absolute log-mel error on the first 300 test utterances."""
    name, title, input_name, output_name = "audio", "Audio tokenizer", "mel", "mel"
    loss_text = "MSE on the scaled log-mel (64 mels, 10 ms frames)"
    eval_text = "first 300 utterances"
    suffix = ""
    dynamic_in = {"mel": {2: "frames"}, "tokens": {1: "tokens"}}
    dynamic_out = {"tokens": {1: "tokens"}, "mel": {2: "frames"}}

    def __init__(self, args, out):
        self.args = args
        self.train = self._mels(args.corpus, "train", out / "train_mels.npy")
        self.test = self._mels(args.corpus, "test", out / "test_mels.npy", limit=300)
        self.token_len = f"{100 // STRIDE}/s"
        self.n_symbols = f"{100 // STRIDE * args.token_dim // 2}/s"
        self.shape_text = f"{100 // STRIDE} tokens/s × d = {args.token_dim}"

    @staticmethod
    def _mels(corpus, split, cache, limit=None):
        """Log-mels of a split's utterances, computed once and cached (list of (64, T))."""
        if cache.is_file():
            flat = np.load(cache)
            lengths = np.load(str(cache).replace(".npy", "_len.npy"))
            return np.split(flat, np.cumsum(lengths)[:-1], axis=1)
        data = CorpusSplit(corpus, split)
        n = len(data.utterances) if limit is None else min(limit, len(data.utterances))
        mels = [af.log_mel(data.audio(k)) for k in range(n)]
        if not mels:
            raise ValueError(f"the {split} split of {corpus} has no utterances")
        np.save(cache, np.concatenate(mels, axis=1))
        np.save(str(cache).replace(".npy", "_len.npy"), np.array([m.shape[1] for m in mels]))
        return mels

    def models(self, vae):
        """(tokenizer, de-tokenizer) built from the arguments; ``vae`` adds the log-variance head."""
        a = self.args
        return (AudioTokenizer(a.token_dim, a.width, a.depth, a.heads, vae=vae),
                AudioDetokenizer(a.token_dim, a.width, a.depth, a.heads))

    def _crop(self, mel, frames, rng):
        if mel.shape[1] < frames:
            mel = np.pad(mel, ((0, 0), (0, frames - mel.shape[1])), constant_values=mel.min())
        start = int(rng.integers(0, mel.shape[1] - frames + 1))
        return mel[:, start:start + frames]

    def batches(self, rng):
        """One pass over the training utterances in ``rng``'s order: random crops (batch, 64, --crop-frames)."""
        order = rng.permutation(len(self.train))
        frames = self.args.crop_frames // STRIDE * STRIDE
        for i in range(0, len(order) - self.args.batch + 1, self.args.batch):
            yield torch.from_numpy(np.stack([self._crop(self.train[k], frames, rng)
                                             for k in order[i:i + self.args.batch]]))

    def example(self, n, other_shape=False):
        """A random log-mel for export and parity: (n, 64, 128), or (n, 64, 200) with ``other_shape``."""
        return torch.randn(n, 64, 200 if other_shape else 128)

    @torch.no_grad()
    def evaluate(self, tok, det, vae):
        """Score the pair on the cached test utterances under every condition.

        Returns ``{condition: {"logmel_l1_nepers": 4 decimals}, "latent_std_per_dim": [...]}``."""
        errors = {c: [] for c in CONDITIONS}
        latents = []
        links = _links()
        for mel in self.test:
            t = mel.shape[1] // STRIDE * STRIDE
            x = torch.from_numpy(np.ascontiguousarray(mel[None, :, :t]))
            mu = tok(x)[0] if vae else tok(x)
            latents.append(mu[0])
            for c, link in links.items():
                y = det(mu if link is None else link(mu))
                errors[c].append(metrics.log_mel_l1(y.numpy(), x.numpy()) * af.LOG_SCALE)
        out = {c: {"logmel_l1_nepers": round(float(np.mean(v)), 4)} for c, v in errors.items()}
        out["latent_std_per_dim"] = [round(s, 4) for s in torch.cat(latents).std(dim=0).tolist()]
        return out

    def metrics_table(self, m):
        """The card's markdown table (condition, log-mel error) from ``evaluate``'s dict."""
        rows = "\n".join(f"| {c} | {m[c]['logmel_l1_nepers']} |" for c in CONDITIONS)
        return ("| condition | mean abs. log-mel error (nepers) |\n|---|---|\n" + rows
                + "\n\nWaveforms: `gnuradio.unitocom.dsp.audio_features.griffin_lim` (32 iterations).")


TASKS = {"image": ImageTask, "audio": AudioTask}
