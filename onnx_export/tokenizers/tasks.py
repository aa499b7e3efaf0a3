"""What differs between modalities in tokenizer training: data, networks,
evaluation, export shapes and the model card's table."""
import numpy as np
import torch
import torch.nn.functional as F

from gnuradio.unitocom import audio_features as af
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


def psnr(x, y):
    return 10 * torch.log10(1.0 / torch.mean((x - y) ** 2, dim=(1, 2, 3)).clamp_min(1e-10))


def ssim(x, y, window=7):
    """Mean SSIM per image (uniform window; constants of Wang et al. for range 1)."""
    c1, c2 = 0.01 ** 2, 0.03 ** 2
    pool = lambda t: F.avg_pool2d(t, window, 1)   # noqa: E731
    mx, my = pool(x), pool(y)
    vx, vy, cxy = pool(x * x) - mx ** 2, pool(y * y) - my ** 2, pool(x * y) - mx * my
    s = ((2 * mx * my + c1) * (2 * cxy + c2)) / ((mx ** 2 + my ** 2 + c1) * (vx + vy + c2))
    return s.mean(dim=(1, 2, 3))


class ImageTask:
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
        a = self.args
        return (ImageTokenizer(a.tokens, a.token_dim, a.width, a.depth, a.heads, vae=vae),
                ImageDetokenizer(a.tokens, a.token_dim, a.width, a.depth, a.heads))

    @staticmethod
    def _tensor(images):
        return torch.from_numpy(np.array(images)).permute(0, 3, 1, 2).float() / 255.0

    def batches(self, rng):
        order = rng.permutation(len(self.train))
        for i in range(0, len(order) - self.args.batch + 1, self.args.batch):
            yield self._tensor(self.train[np.sort(order[i:i + self.args.batch])])

    def example(self, n, other_shape=False):
        return torch.rand(n, 3, 64, 64)

    @torch.no_grad()
    def evaluate(self, tok, det, vae, n=1000, batch=100):
        scores = {c: [] for c in CONDITIONS}
        latents = []
        links = _links()
        for i in range(0, min(n, len(self.test)), batch):
            x = self._tensor(self.test[i:i + batch])
            mu = tok(x)[0] if vae else tok(x)
            latents.append(mu.flatten(0, 1))
            for c, link in links.items():
                y = det(mu if link is None else link(mu))
                scores[c].append(torch.stack([psnr(y, x), ssim(y, x)], dim=1))
        out = {}
        for c, vals in scores.items():
            v = torch.cat(vals)
            out[c] = {"psnr_db": round(v[:, 0].mean().item(), 2), "ssim": round(v[:, 1].mean().item(), 4)}
        out["latent_std_per_dim"] = [round(s, 4) for s in torch.cat(latents).std(dim=0).tolist()]
        return out

    def metrics_table(self, m):
        rows = "\n".join(f"| {c} | {m[c]['psnr_db']} | {m[c]['ssim']} |" for c in CONDITIONS)
        return "| condition | PSNR (dB) | SSIM |\n|---|---|---|\n" + rows


class AudioTask:
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
        a = self.args
        return (AudioTokenizer(a.token_dim, a.width, a.depth, a.heads, vae=vae),
                AudioDetokenizer(a.token_dim, a.width, a.depth, a.heads))

    def _crop(self, mel, frames, rng):
        if mel.shape[1] < frames:
            mel = np.pad(mel, ((0, 0), (0, frames - mel.shape[1])), constant_values=mel.min())
        start = int(rng.integers(0, mel.shape[1] - frames + 1))
        return mel[:, start:start + frames]

    def batches(self, rng):
        order = rng.permutation(len(self.train))
        frames = self.args.crop_frames // STRIDE * STRIDE
        for i in range(0, len(order) - self.args.batch + 1, self.args.batch):
            yield torch.from_numpy(np.stack([self._crop(self.train[k], frames, rng)
                                             for k in order[i:i + self.args.batch]]))

    def example(self, n, other_shape=False):
        return torch.randn(n, 64, 200 if other_shape else 128)

    @torch.no_grad()
    def evaluate(self, tok, det, vae):
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
                errors[c].append(torch.mean(torch.abs(y - x)).item() * af.LOG_SCALE)
        out = {c: {"logmel_l1_nepers": round(float(np.mean(v)), 4)} for c, v in errors.items()}
        out["latent_std_per_dim"] = [round(s, 4) for s in torch.cat(latents).std(dim=0).tolist()]
        return out

    def metrics_table(self, m):
        rows = "\n".join(f"| {c} | {m[c]['logmel_l1_nepers']} |" for c in CONDITIONS)
        return ("| condition | mean abs. log-mel error (nepers) |\n|---|---|\n" + rows
                + "\n\nWaveforms: `gnuradio.unitocom.audio_features.griffin_lim` (32 iterations).")


TASKS = {"image": ImageTask, "audio": AudioTask}
