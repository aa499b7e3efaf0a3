"""The one training loop every trainer in ``onnx_export`` runs (tokenizers, JSCC, end-to-end fine-tune).

A trainer builds its models after ``seed_everything``, hands them to a
``TrainLoop`` by name, and gives ``fit`` a loss function and its batches::

    loop.seed_everything(args.seed, args.threads)          # before the models are built
    tok, det = task.models(vae)
    run = loop.TrainLoop(out, {"tok": tok, "det": det}, lr=args.lr, seed=args.seed,
                         minutes=args.minutes, steps=args.steps, warmup=200)
    if args.resume:
        run.resume()
    run.fit(lambda x: genib.genib_loss(tok, det, x), epoch=task.batches)

What the loop does, the same way for every trainer:

* **Seeds.** ``seed_everything`` seeds torch's global generator (model
  initialisation, the objectives' own draws) and ``random``, and sets the
  torch thread count. The loop owns ``gen``, a ``torch.Generator`` seeded
  ``seed + 1`` for the trainer's channel and condition draws, and ``rng``,
  a numpy ``Generator`` seeded ``seed`` for the batches.
* **Optimiser.** AdamW over the parameters of the named modules (in the
  order given), gradients clipped to norm 1.
* **Learning rate.** ``lr`` × linear warm-up over ``warmup`` steps × a
  cosine decay to 0 over the budget: the fraction of ``minutes`` of wall
  time spent or — with ``steps`` and ``cosine_over_steps`` — of the steps
  done, whichever is further.
* **Budget.** Before each step, it stops once ``minutes`` of wall time
  (counted across resumes) are spent or ``steps`` steps are done.
* **Batches.** ``epoch=``: passes over the data (each call gives one pass;
  the loop counts epochs) or ``sample=``: one freshly drawn batch per step.
* **Progress.** Every ``log_every`` steps a line on stdout (with items/s:
  ``batch_size`` counts a tensor's rows, or every row of a list of packed
  dicts) and a JSON line ``{"step", "minutes", "loss", <the loss's parts>}``
  appended to ``<out>/train_log.jsonl``.
* **Evaluation.** With ``evaluate`` and ``eval_every``, ``evaluate()`` runs
  every ``eval_every`` steps; its dict is printed and logged as
  ``{"step", "minutes", "eval"}``.
* **Checkpoints.** ``<out>/checkpoint.pt`` every ``save_every`` steps and at
  the end, written to a temporary file and renamed: one ``state_dict`` per
  module name, plus ``opt``, ``step``, ``elapsed`` (seconds of training),
  ``epoch``, ``gen``, ``torch_rng`` and ``np_rng``. ``resume`` restores all
  of it (a checkpoint without ``epoch`` resumes at epoch 0).
"""
import json
import math
import pathlib
import random
import time

import numpy as np
import torch

CHECKPOINT = "checkpoint.pt"
TRAIN_LOG = "train_log.jsonl"
CLIP_NORM = 1.0


def seed_everything(seed, threads):
    """Seed torch's global generator and ``random`` with ``seed``; use ``threads`` CPU threads. Returns None."""
    torch.set_num_threads(threads)
    torch.manual_seed(seed)
    random.seed(seed)


def batch_size(x):
    """Items in a batch for the items/s figure: ``len(x)``, except for a list or tuple of packed dicts
    (the MLLM's per-task packs, ``layout.pack``), which counts the rows of every pack."""
    if isinstance(x, (list, tuple)) and x and all(isinstance(p, dict) for p in x):
        return sum(len(next(iter(p.values()))) for p in x)
    return len(x)


class TrainLoop:
    """AdamW training of named modules under a time/step budget, seeded and resumable (see the module docstring).

    Args:
        out: run folder (created if missing); holds ``checkpoint.pt`` and ``train_log.jsonl``.
        modules: ``{name: nn.Module}``; the names are the checkpoint's keys.
        lr, weight_decay: AdamW's peak learning rate and weight decay.
        seed: seeds ``gen`` (``seed + 1``) and ``rng`` (``seed``).
        minutes: wall-time budget; steps: step budget (0: time only).
        warmup: steps of linear learning-rate warm-up.
        cosine_over_steps: with ``steps``, the cosine follows steps as well as time.
        log_every, save_every: steps between progress lines and between checkpoints.
        evaluate, eval_every: an optional ``evaluate() → dict`` run every ``eval_every`` steps.

    Attributes after ``fit``: ``step``, ``epoch`` (epochs started, with ``epoch=`` batches),
    ``elapsed`` (seconds of training, all runs), ``opt``, ``gen``, ``rng``.
    """

    def __init__(self, out, modules, lr, weight_decay=0.01, seed=0, minutes=20.0, steps=0, warmup=100,
                 cosine_over_steps=True, log_every=100, save_every=1000, evaluate=None, eval_every=0):
        self.out = pathlib.Path(out)
        self.out.mkdir(parents=True, exist_ok=True)
        self.modules = dict(modules)
        self.params = [p for m in self.modules.values() for p in m.parameters()]
        self.lr, self.minutes, self.steps, self.warmup = lr, minutes, steps, warmup
        self.cosine_over_steps = cosine_over_steps
        self.log_every, self.save_every = log_every, save_every
        self.evaluate, self.eval_every = evaluate, eval_every
        self.opt = torch.optim.AdamW(self.params, lr=lr, weight_decay=weight_decay)
        self.gen = torch.Generator().manual_seed(seed + 1)
        self.rng = np.random.default_rng(seed)
        self.step, self.elapsed, self.epoch = 0, 0.0, 0

    @property
    def checkpoint(self):
        """Path of the run's checkpoint, ``<out>/checkpoint.pt``."""
        return self.out / CHECKPOINT

    def resume(self):
        """Restore modules, optimiser, counters and random states from the checkpoint, if there is one.

        Returns True when it resumed (and prints ``resumed at step N (M min)``), False without a checkpoint."""
        if not self.checkpoint.is_file():
            return False
        state = torch.load(self.checkpoint, weights_only=False)
        for name, module in self.modules.items():
            module.load_state_dict(state[name])
        self.opt.load_state_dict(state["opt"])
        self.step, self.elapsed, self.epoch = state["step"], state["elapsed"], state.get("epoch", 0)
        self.gen.set_state(state["gen"])
        torch.set_rng_state(state["torch_rng"])
        self.rng.bit_generator.state = state["np_rng"]
        print(f"resumed at step {self.step} ({self.elapsed / 60:.1f} min)", flush=True)
        return True

    def save(self):
        """Write the checkpoint (modules, optimiser, counters, random states) atomically; returns its path."""
        state = {name: module.state_dict() for name, module in self.modules.items()}
        state.update(opt=self.opt.state_dict(), step=self.step, elapsed=self.elapsed, epoch=self.epoch,
                     gen=self.gen.get_state(), torch_rng=torch.get_rng_state(), np_rng=self.rng.bit_generator.state)
        tmp = pathlib.Path(str(self.checkpoint) + ".tmp")
        torch.save(state, tmp)
        tmp.replace(self.checkpoint)
        return self.checkpoint

    def done(self):
        """True once the time budget is spent or the step budget reached."""
        return self.elapsed >= self.minutes * 60 or bool(self.steps and self.step >= self.steps)

    def learning_rate(self):
        """The learning rate of the next step: warm-up × cosine over the budget spent so far."""
        budget = self.minutes * 60
        frac = self.elapsed / budget if budget > 0 else 1.0
        if self.steps and self.cosine_over_steps:
            frac = max(frac, self.step / self.steps)
        frac = min(1.0, frac)
        return self.lr * min(1.0, (self.step + 1) / self.warmup) * 0.5 * (1 + math.cos(math.pi * frac))

    def fit(self, loss_fn, epoch=None, sample=None):
        """Train until the budget is spent, then save the checkpoint; returns ``self``.

        ``loss_fn(batch)`` → a scalar loss tensor, or ``(loss, {name: float})``
        whose parts are printed and logged. Batches come from ``epoch(rng)``
        (an iterable over one pass of the data; a new pass starts when it runs
        out) or ``sample(rng)`` (one batch); ``rng`` is ``self.rng``."""
        if (epoch is None) == (sample is None):
            raise ValueError("fit needs exactly one of epoch= (passes over the data) or sample= (drawn batches)")
        t_start = time.time() - self.elapsed
        batches = None
        with open(self.out / TRAIN_LOG, "a") as log:
            while True:
                self.elapsed = time.time() - t_start
                if self.done():
                    break
                lr = self.learning_rate()
                for group in self.opt.param_groups:
                    group["lr"] = lr
                if sample is not None:
                    x = sample(self.rng)
                else:
                    x, batches = self._next_batch(epoch, batches)
                result = loss_fn(x)
                loss, parts = result if isinstance(result, tuple) else (result, {})
                self.opt.zero_grad()
                loss.backward()
                torch.nn.utils.clip_grad_norm_(self.params, CLIP_NORM)
                self.opt.step()
                self.step += 1
                self.elapsed = time.time() - t_start
                if self.step % self.log_every == 0:
                    self._progress(log, loss.item(), parts, batch_size(x), epoch is not None)
                if self.eval_every and self.evaluate is not None and self.step % self.eval_every == 0:
                    scores = self.evaluate()
                    print(f"eval at step {self.step}: {json.dumps(scores)}", flush=True)
                    self._log(log, {"step": self.step, "minutes": self.elapsed / 60, "eval": scores})
                if self.step % self.save_every == 0:
                    self.save()
        if batches is not None:              # the pass that was going on counts as an epoch
            self.epoch += 1
        self.elapsed = time.time() - t_start
        self.save()
        return self

    def _next_batch(self, epoch, batches):
        if batches is None:
            batches = iter(epoch(self.rng))
        x = next(batches, None)
        if x is None:
            self.epoch += 1
            batches = iter(epoch(self.rng))
            x = next(batches, None)
            if x is None:
                raise ValueError("a pass over the training data gave no batch (fewer items than one batch?)")
        return x, batches

    def _progress(self, log, loss, parts, batch_size, epochs):
        rate = self.step * batch_size / max(self.elapsed, 1e-9)
        print(f"step {self.step}" + (f" epoch {self.epoch}" if epochs else "")
              + f" {self.elapsed / 60:.1f}/{self.minutes:g} min loss {loss:.4g}"
              + "".join(f" {k} {v:.4g}" for k, v in parts.items()) + f" {rate:.0f} items/s", flush=True)
        self._log(log, {"step": self.step, "minutes": self.elapsed / 60, "loss": loss, **parts})

    @staticmethod
    def _log(log, record):
        log.write(json.dumps(record) + "\n")
        log.flush()
