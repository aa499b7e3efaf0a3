"""The MLLM in torch (``onnx_export.mllm``) on tiny random models: the packed sequence layout, shapes,
the kv cache (generation with and without it gives the same words and tokens), padding and batch
independence, one mixed-task training step, and the diffusion head learning a toy 2-D distribution
that DDPM and DDIM then sample with the right mean and covariance."""
import numpy as np
import pytest

torch = pytest.importorskip("torch")

from gnuradio.unitocom.data import vocab  # noqa: E402
from gnuradio.unitocom.mllm import generate, layout, schedule  # noqa: E402
from onnx_export.mllm import diffusion, objective  # noqa: E402
from onnx_export.mllm import generate as torch_generate  # noqa: E402
from onnx_export.mllm.bench import packs_by_task, random_items  # noqa: E402
from onnx_export.mllm.model import MLLM, Config, DiffusionHead  # noqa: E402
from onnx_export.mllm.testing import random_prompts, tiny_config, tiny_model  # noqa: E402


@pytest.fixture(autouse=True)
def one_thread():
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def draws(seed):
    rng = np.random.default_rng(seed)
    return lambda shape: rng.standard_normal(shape, dtype=np.float32)


# --- layout -------------------------------------------------------------------------------------------

def test_layout_of_the_three_tasks():
    rng = np.random.default_rng(0)
    img, aud = rng.normal(size=(32, 16)), rng.normal(size=(7, 16))
    q = vocab.encode("is there a red cube ?")
    it = layout.vqa(img, q, vocab.encode("yes"))
    assert list(it.ids[:2]) == [layout.TASK_VQA, layout.BOI] and it.ids[34] == layout.EOI
    assert list(it.kind[2:34]) == [layout.KIND_IMAGE] * 32 and np.allclose(it.cont[2:34], img)
    assert it.prompt_len == 35 + len(q) + 1 and it.ids[it.prompt_len - 1] == vocab.SEP
    assert list(it.lm_target[it.prompt_len - 1:]) == [vocab.TOKEN_ID["yes"], vocab.EOS, layout.NO_TARGET]
    assert (it.lm_target[:it.prompt_len - 1] == layout.NO_TARGET).all() and it.diff_mask.sum() == 0

    it = layout.t2i(vocab.encode("a cube"), img)
    assert it.ids[0] == layout.TASK_T2I and it.ids[it.prompt_len - 1] == layout.BOI and len(it) == it.prompt_len + 32
    np.testing.assert_allclose(it.diff_target[it.prompt_len - 1:-1], img)      # <boi> → c₁, c_j → c_{j+1}
    assert it.diff_mask.sum() == 32 and (it.lm_target == layout.NO_TARGET).all()

    it = layout.asr(aud, vocab.encode("a red cube"))
    assert list(it.ids[:2]) == [layout.TASK_ASR, layout.BOA] and list(it.kind[2:9]) == [layout.KIND_AUDIO] * 7
    assert list(it.ids[9:11]) == [layout.EOA, vocab.SEP] and it.prompt_len == 11
    assert list(it.lm_target[10:13]) == vocab.encode("a red cube", add_special=False)[:3]


def test_traced_answers_split_at_the_last_sep():
    w = lambda text: np.array(vocab.encode(text, add_special=False))     # noqa: E731
    said = np.concatenate([w("large red metal cube"), [vocab.SEP], w("metal")])
    assert list(layout.vqa_answer(said, traced=True)) == list(w("metal"))
    assert list(layout.vqa_trace(said)) == list(w("large red metal cube"))
    assert list(layout.vqa_answer(said)) == list(said)                   # a model without traces: as said
    inside = w("large red metal")                                          # ran out of words inside the trace
    assert len(layout.vqa_answer(inside, traced=True)) == 0 and len(layout.vqa_trace(inside)) == 0
    empty = np.array([vocab.SEP, vocab.TOKEN_ID["0"]])                      # "how many …": nothing matches
    assert list(layout.vqa_answer(empty, traced=True)) == [vocab.TOKEN_ID["0"]] and len(layout.vqa_trace(empty)) == 0
    it = layout.vqa(np.zeros((32, 16)), vocab.encode("what color is the cube ?"), list(said))
    assert list(it.lm_target[it.prompt_len - 1:-1]) == list(said) + [vocab.EOS]


def test_pack_left_and_right():
    items = random_prompts("vqa", 3)
    right, left = layout.pack(items), layout.pack(items, pad="left")
    n = [len(it) for it in items]
    assert right["ids"].shape == left["ids"].shape == (3, max(n))
    for row, k in enumerate(n):
        assert right["mask"][row].sum() == left["mask"][row].sum() == k
        assert list(right["pos"][row, :k]) == list(left["pos"][row, -k:]) == list(range(k))
        np.testing.assert_array_equal(right["ids"][row, :k], left["ids"][row, -k:])
    assert list(right["task"]) == [0, 0, 0]
    assert layout.N_IDS == layout.VOCAB + 8 and len(layout.vocab_hash()) == 16


# --- model --------------------------------------------------------------------------------------------

def test_shapes_and_parameter_counts():
    model = tiny_model()
    b = layout.pack(random_prompts("asr", 3))
    t = objective.tensors(b)
    h, kv = model(t["ids"], t["cont"], t["kind"], t["pos"], t["mask"], cache=True)
    cfg = model.config
    assert h.shape == (3, b["ids"].shape[1], cfg.dim)
    assert kv.shape == (3, cfg.depth, 2, cfg.heads, b["ids"].shape[1], cfg.dim // cfg.heads)
    assert model.lm_head(h).shape == (3, b["ids"].shape[1], layout.VOCAB)
    eps = model.head(torch.randn(5, 16), torch.tensor([1, 10, 100, 500, 1000]), torch.randn(5, cfg.dim))
    assert eps.shape == (5, 16) and torch.isfinite(eps).all()
    counts = MLLM(Config()).parameter_counts()          # the default: a few million parameters
    assert 2e6 < counts["total"] < 8e6 and counts["total"] == sum(v for k, v in counts.items() if k != "total")


def test_bad_config():
    with pytest.raises(ValueError, match="divisible"):
        MLLM(tiny_config(dim=30, heads=4))


def test_padding_and_batch_independence():
    """A row's hidden states do not depend on the other rows, on padding, or on its side."""
    model = tiny_model()
    items = random_prompts("asr", 3, seed=2)
    with torch.no_grad():
        for pad in ("left", "right"):
            t = objective.tensors(layout.pack(items, pad=pad))
            h = model(t["ids"], t["cont"], t["kind"], t["pos"], t["mask"])
            for row, it in enumerate(items):
                a = objective.tensors(layout.pack([it]))
                alone = model(a["ids"], a["cont"], a["kind"], a["pos"], a["mask"])[0]
                sl = slice(0, len(it)) if pad == "right" else slice(h.shape[1] - len(it), h.shape[1])
                torch.testing.assert_close(h[row, sl], alone, rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("task", ["vqa", "asr"])
def test_kv_cache_gives_the_same_words(task):
    model = tiny_model(seed=1)
    items = random_prompts(task, 4, seed=3)
    with_cache = torch_generate.text(model, items, 10, use_cache=True)
    without = torch_generate.text(model, items, 10, use_cache=False)
    assert all(np.array_equal(a, b) for a, b in zip(with_cache, without))
    assert len({tuple(a) for a in with_cache}) > 1            # a random model that still reads its prompt


def test_kv_cache_gives_the_same_image_tokens():
    model = tiny_model(seed=2)
    items = random_prompts("t2i", 3, seed=4)
    for sampler in schedule.SAMPLERS:
        a = torch_generate.image_tokens(model, items, 6, 10, sampler=sampler, normal=draws(5), use_cache=True)
        b = torch_generate.image_tokens(model, items, 6, 10, sampler=sampler, normal=draws(5), use_cache=False)
        assert a.shape == (3, 6, 16) and a.dtype == np.float32
        np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-4 * np.abs(a).max())


def test_decode_step_equals_full_forward():
    """One cached step per position reproduces the hidden states of the whole sequence at once."""
    model = tiny_model(seed=3)
    t = objective.tensors(layout.pack(random_prompts("vqa", 2, seed=5), pad="left"))
    with torch.no_grad():
        full = model(t["ids"], t["cont"], t["kind"], t["pos"], t["mask"])
        n = 30
        h, kv = model(*(t[k][:, :n] for k in ("ids", "cont", "kind", "pos", "mask")), cache=True)
        steps = [h]
        for i in range(n, t["ids"].shape[1]):
            sl = slice(i, i + 1)
            h, kv = model(t["ids"][:, sl], t["cont"][:, sl], t["kind"][:, sl], t["pos"][:, sl], t["mask"][:, :i + 1],
                          past=kv, cache=True)
            steps.append(h)
    real = t["mask"] > 0                          # a pad's own output is never used (it sees no key)
    torch.testing.assert_close(torch.cat(steps, 1)[real], full[real], rtol=1e-4, atol=1e-5)


def test_text_generation_stops_at_eos():
    class Fixed:
        """A backend whose LM always says word 9, then <eos> from the third step on."""
        schedule = schedule.make()
        image_mean, image_std = np.zeros(16, np.float32), np.ones(16, np.float32)

        def __init__(self):
            self.calls = 0

        def prefill(self, ids, cont, kind, pos, mask):
            return np.zeros(ids.shape + (4,), np.float32), None

        def decode(self, ids, cont, kind, pos, mask, kv):
            return np.zeros(ids.shape + (4,), np.float32), None

        def lm_head(self, h):
            self.calls += 1
            logits = np.zeros((len(h), layout.VOCAB), np.float32)
            logits[:, 9 if self.calls < 3 else vocab.EOS] = 1
            return logits

    backend = Fixed()
    out = generate.text(backend, random_prompts("vqa", 2), 10)
    assert [list(o) for o in out] == [[9, 9], [9, 9]] and backend.calls == 3


# --- training -----------------------------------------------------------------------------------------

def test_mixed_task_training_step():
    """One batch of VQA, t2i, ASR and dsc: LM cross-entropy + diffusion loss, backward reaches every part."""
    torch.manual_seed(0)
    model = MLLM(tiny_config(max_len=192)).train()
    items = random_items(12, np.random.default_rng(0), tasks=layout.TASKS)
    loss, parts = objective.loss(model, packs_by_task(items), generator=torch.Generator().manual_seed(0))
    assert set(parts) >= {"lm_vqa", "lm_asr", "lm_dsc", "diff_t2i"} and torch.isfinite(loss)
    assert parts["lm_vqa"] == pytest.approx(np.log(layout.VOCAB), rel=0.2)    # untrained: ≈ uniform over V
    assert parts["diff_t2i"] == pytest.approx(1.0, rel=0.2)                    # ε̂ = 0 at initialisation
    assert parts["n_t2i_tokens"] == 3 * 32 and parts["n_vqa_words"] == 3 * 2
    loss.backward()
    for name in ("embed_ids.weight", "proj_image.weight", "proj_audio.weight", "blocks.0.attn.qkv.weight",
                 "lm_head.weight", "head.out.weight"):
        grad = dict(model.named_parameters())[name].grad
        assert grad is not None and torch.isfinite(grad).all() and grad.abs().sum() > 0, name
    # one pack for all tasks gives the same loss as one pack per task (padding is never seen)
    g = torch.Generator().manual_seed(0)
    one, parts1 = objective.loss(model, layout.pack(items), generator=g)
    assert parts1["lm_vqa"] == pytest.approx(parts["lm_vqa"], rel=1e-4)
    assert parts1["lm_asr"] == pytest.approx(parts["lm_asr"], rel=1e-4)
    assert parts1["lm_dsc"] == pytest.approx(parts["lm_dsc"], rel=1e-4)


def test_a_few_steps_fit_a_batch():
    torch.manual_seed(0)
    model = MLLM(tiny_config(max_len=192)).train()
    packs = packs_by_task(random_items(6, np.random.default_rng(1)))
    opt = torch.optim.AdamW(model.parameters(), lr=3e-3)
    losses = []
    for _ in range(30):
        loss, _ = objective.loss(model, packs)
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(loss.item())
    assert np.mean(losses[-5:]) < 0.6 * np.mean(losses[:5])


def test_loss_without_targets_or_too_long_is_refused():
    model = MLLM(tiny_config())
    with pytest.raises(ValueError, match="no target"):
        objective.loss(model, layout.pack(random_prompts("vqa", 2)))
    with pytest.raises(ValueError, match="positions"):
        objective.loss(model, layout.pack([layout.asr(np.zeros((130, 16)), [9])]))


def test_diffusion_loss_uses_k_draws_per_token():
    head = DiffusionHead(2, 3, width=8, depth=1, freq_dim=8)
    seen = []
    orig = head.forward
    head.forward = lambda x, r, h: seen.append(x.shape[0]) or orig(x, r, h)
    omega = diffusion.omegas(schedule.make())
    diffusion.loss(head, torch.randn(5, 3), torch.randn(5, 2), 4, omega)
    assert seen == [20]


def test_diffusion_head_learns_a_toy_distribution():
    """Eq. (19) on a 2-D, two-class toy: the loss falls, and DDPM/DDIM samples conditioned on each class
    have that class's mean and covariance. (Tolerances allow for the respaced chains' under-dispersion,
    see test_mllm_schedule.)"""
    torch.manual_seed(0)
    sched = schedule.make()
    omega = diffusion.omegas(sched)
    head = DiffusionHead(2, 2, width=64, depth=2, freq_dim=32)
    mu = torch.tensor([[1.5, -1.0], [-1.0, 0.5]])
    chol = torch.tensor([[[1.0, 0.0], [0.6, 0.5]], [[0.4, 0.0], [-0.3, 0.8]]])
    g = torch.Generator().manual_seed(1)

    def data(n):
        k = torch.randint(0, 2, (n,), generator=g)
        x = mu[k] + (chol[k] @ torch.randn(n, 2, 1, generator=g))[..., 0]
        return x, torch.nn.functional.one_hot(k, 2).float()

    steps = 800
    opt = torch.optim.AdamW(head.parameters(), lr=3e-3, weight_decay=0.0)
    losses = []
    for step in range(steps):
        for group in opt.param_groups:
            group["lr"] = 3e-3 * 0.5 * (1 + np.cos(np.pi * step / steps))
        x, h = data(256)
        loss = diffusion.loss(head, h, x, 4, omega, g)
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(loss.item())
    assert np.mean(losses[-50:]) < 0.6 * np.mean(losses[:20])
    for sampler, n_steps, tol in (("ddpm", 100, 0.15), ("ddpm", 25, 0.3), ("ddim", 50, 0.15)):
        for k in range(2):
            h = torch.nn.functional.one_hot(torch.full((4000,), k), 2).float()
            gs = torch.Generator().manual_seed(5)
            s = diffusion.sample(head, h, sched, n_steps, sampler,
                                 normal=lambda shape: torch.randn(shape, generator=gs))
            assert (s.mean(0) - mu[k]).abs().max() < 0.1, (sampler, n_steps, k)
            assert (torch.cov(s.T) - chol[k] @ chol[k].T).abs().max() < tol, (sampler, n_steps, k)


def test_the_shared_training_loop_runs_the_objective(tmp_path):
    """``loop.TrainLoop`` drives ``objective.loss`` (drawn mixed batches, parts logged, checkpoint written)."""
    import json

    from onnx_export import loop
    loop.seed_everything(0, 1)
    model = MLLM(tiny_config(max_len=192))
    run = loop.TrainLoop(tmp_path, {"mllm": model}, lr=1e-3, minutes=1.0, steps=3, warmup=1, log_every=1)
    run.fit(lambda packs: objective.loss(model, packs, generator=run.gen),
            sample=lambda rng: packs_by_task(random_items(6, rng)))
    assert run.step == 3 and run.checkpoint.is_file()
    logged = [json.loads(line) for line in (tmp_path / "train_log.jsonl").read_text().splitlines()]
    assert len(logged) == 3 and {"lm_vqa", "lm_asr", "diff_t2i"} <= set(logged[-1])
