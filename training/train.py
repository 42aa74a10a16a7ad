"""Train a separation model:
``python -m training --config training/configs/default.toml --data musdb:PATH --out runs/NAME``.

A run directory holds everything export and a resumed run need:
``config.toml`` (the resolved config), ``best.keras`` (lowest validation
loss; export reads it), ``checkpoints/`` (model, optimizer, epoch and step,
written after every epoch and on Ctrl-C), ``history.csv`` and ``loss.png``.
"""

from __future__ import annotations

import argparse
import csv
import math
import os
import platform
import signal
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from realtime_split.errors import UserError

from .config import CONFIG_DIR, STRATEGIES, Config, ConfigError, load_config, to_toml, toml_value
from .datasets import DatasetError, open_dataset, parse_spec

HISTORY_FIELDS = ("epoch", "train_loss", "val_loss", "learning_rate", "seconds")
PROG = "python -m training"


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog=PROG, description="Train a realtime-split separation model (Keras; the config chooses which).",
        epilog="example:\n  python -m training --config training/configs/default.toml \\\n"
               "      --data musdb:../shared/data/musdb18-preview --data folder:../shared/data/mir-1k \\\n"
               "      --out runs/first\n"
               "then: python -m export --checkpoint runs/first/best.keras --output model.onnx",
        formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--config", type=Path, default=CONFIG_DIR / "default.toml",
                   help="TOML config (default: training/configs/default.toml); ignored with --resume")
    p.add_argument("--data", action="append", default=[], metavar="KIND:PATH",
                   help="training data, repeatable; KIND is musdb, musdb-hq or folder (replaces data.sources)")
    p.add_argument("--validation", action="append", default=[], metavar="KIND:PATH",
                   help="validation data, repeatable; append #valid (or #train, #test) to take one split, "
                        "e.g. musdb:PATH#valid (default: the 'valid' split of the training data)")
    p.add_argument("--out", type=Path, required=True, metavar="runs/NAME", help="run directory")
    p.add_argument("--resume", action="store_true", help="continue the run in --out from its last checkpoint")
    p.add_argument("--epochs", type=int, help="= --set train.epochs=N")
    p.add_argument("--batch-size", type=int, help="= --set train.batch_size=N")
    p.add_argument("--steps-per-epoch", type=int, help="= --set train.steps_per_epoch=N")
    p.add_argument("--lr", type=float, help="= --set train.learning_rate=X")
    p.add_argument("--loss", help="= --set train.loss=NAME (mae, mse, sdr, si-sdr, mrstft)")
    p.add_argument("--seed", type=int, help="= --set train.seed=N")
    p.add_argument("--strategy", choices=STRATEGIES, help="= --set train.strategy=NAME (tf.distribute)")
    p.add_argument("--cache-dir", help="= --set data.cache_dir=PATH")
    p.add_argument("--set", action="append", default=[], metavar="SECTION.KEY=VALUE", dest="overrides",
                   help="override any config value, e.g. --set model.fast.depth=7 --set augment.remix=0.3")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    return p


def overrides_from_args(args: argparse.Namespace) -> list[str]:
    flags = {"epochs": "train.epochs", "batch_size": "train.batch_size", "steps_per_epoch": "train.steps_per_epoch",
             "lr": "train.learning_rate", "loss": "train.loss", "seed": "train.seed", "strategy": "train.strategy",
             "cache_dir": "data.cache_dir"}
    out = [f"{key}={toml_value(getattr(args, flag))}" for flag, key in flags.items()
           if getattr(args, flag) is not None]
    if args.data:
        out.append("data.sources=" + toml_value(args.data))
    if args.validation:
        out.append("data.validation=" + toml_value(args.validation))
    return out + list(args.overrides)


def resolve_config(args: argparse.Namespace) -> Config:
    """The run's config: the saved one when resuming, else --config; then the command-line overrides."""
    saved = args.out / "config.toml"
    if args.resume:
        if not saved.is_file():
            raise UserError(f"--resume: {saved} not found; nothing to resume in {args.out} (start without --resume)")
        config = load_config(saved, overrides_from_args(args))
    else:
        if any(args.out.glob("checkpoints*")):  # checkpoints-worker1: a multiworker run's other workers
            raise UserError(f"{args.out} already holds a run; continue it with --resume or choose another --out")
        config = load_config(args.config, overrides_from_args(args))
    if not config.data.sources:
        raise ConfigError("no training data: pass --data KIND:PATH (e.g. --data musdb:../shared/data/musdb18-preview)")
    # Absolute paths, so config.toml stays valid from any working directory.
    config.data.sources = [_absolute_spec(s) for s in config.data.sources]
    config.data.validation = [_absolute_spec(s) for s in config.data.validation]
    return config


def _absolute_spec(spec: str) -> str:
    spec, split = _split_suffix(spec)
    kind, path = parse_spec(spec)
    return f"{kind}:{path.resolve()}" + (f"#{split}" if split else "")


def _split_suffix(spec: str) -> tuple[str, str | None]:
    """``"musdb:/data#valid"`` -> ``("musdb:/data", "valid")``: a validation source may name its split,
    so the training data's own validation tracks can be chosen without its training tracks."""
    head, sep, split = spec.rpartition("#")
    if sep and split in ("train", "valid", "test"):
        return head, split
    return spec, None


def load_data(config: Config, progress: bool = True):
    """(WindowSampler over the train splits, fixed validation windows), decoding into the cache once."""
    from .cache import AudioCache
    from .sampler import Source, TargetLayout, WindowSampler, validation_windows

    cache = AudioCache(config.data.cache_dir, config.streaming.sample_rate)
    layout = TargetLayout(config.model.stems)
    weights = config.data.weights or [1.0] * len(config.data.sources)
    sources, valid_tracks = [], []
    for spec, weight in zip(config.data.sources, weights):
        kind, path = parse_spec(spec)
        tracks = open_dataset(kind, path, "train")
        sources.append(Source(spec, cache.get_all(tracks, f"caching {path.name}", progress), weight))
        if not config.data.validation:
            try:
                valid_tracks += cache.get_all(open_dataset(kind, path, "valid"), f"caching {path.name} (valid)",
                                              progress)
            except DatasetError as exc:
                print(f"note: no validation tracks in {spec} ({exc})", file=sys.stderr)
    for spec in config.data.validation:
        spec, split = _split_suffix(spec)
        valid_tracks += cache.get_all(open_dataset(*parse_spec(spec), split), "caching validation", progress)
    if not valid_tracks:
        raise ConfigError("no validation tracks: pass --validation KIND:PATH")
    start, stop = config.loss_region()
    valid = validation_windows(valid_tracks, layout, config.window, stop - start, config.data.validation_windows)
    sampler = WindowSampler(sources, layout, config.window, config.augment, config.streaming.sample_rate)
    return sampler, valid, layout, sum(len(s.tracks) for s in sources), len(valid_tracks)


def make_strategy(name: str):
    import tensorflow as tf

    if name == "mirrored":
        # All GPUs, or else every logical CPU device (so the path also runs, and is tested, on CPU).
        devices = tf.config.list_logical_devices("GPU") or tf.config.list_logical_devices("CPU")
        return tf.distribute.MirroredStrategy(devices=[d.name for d in devices])
    if name == "multiworker":
        return tf.distribute.MultiWorkerMirroredStrategy()  # cluster from the TF_CONFIG environment variable
    return tf.distribute.get_strategy()


def is_chief(strategy) -> bool:
    """Whether this process writes the run: the "chief" task of TF_CONFIG, else worker 0 (tf.distribute's rule)."""
    return bool(strategy.extended.should_checkpoint)


class StopRequest:
    """Ctrl-C lets the next step finish, then the run saves a resumable checkpoint; a second Ctrl-C aborts.

    The request travels with that step's loss through the all-reduce, so under ``multiworker`` every worker
    stops after the same step and saves its checkpoint, whichever of them got the Ctrl-C.
    """

    def __init__(self):
        self.requested = False
        self._previous = None

    def __enter__(self):
        self._previous = signal.signal(signal.SIGINT, self._handle)
        return self

    def __exit__(self, *exc):
        signal.signal(signal.SIGINT, self._previous)

    def _handle(self, signum, frame):
        if self.requested:
            raise KeyboardInterrupt
        self.requested = True
        print(f"\n{PROG}: stopping after the next step; saving a checkpoint (Ctrl-C again to abort)",
              file=sys.stderr)


@dataclass
class Run:
    """A run set up to train: the model and optimizer under their distribution strategy, the bookkeeping
    variables saved with them, and the compiled training and validation steps."""

    config: Config
    out: Path
    strategy: Any
    model: Any
    optimizer: Any
    state: dict[str, Any]            # epoch, step, loss_sum, best: host variables saved in every checkpoint
    manager: Any                     # tf.train.CheckpointManager
    checkpoints: Path
    worker: str                      # "" on the chief, else e.g. "worker1" (its checkpoints are kept aside)
    train_step: Callable             # (iterator, stop flag) -> (loss, stops)
    eval_step: Callable              # (mix, targets, presence) -> per-example validation losses
    dataset: Callable                # (epoch, first step) -> a distributed dataset of the epoch's batches

    @property
    def chief(self) -> bool:
        return not self.worker


def train(config: Config, out: Path, resume: bool = False, progress: bool = True) -> int:
    """Run (or continue) training into ``out``; returns the process exit code (130 when interrupted)."""
    sampler, valid, layout, n_train, n_valid = load_data(config, progress)  # data errors before TF starts
    run = set_up(config, out, resume, sampler, layout)
    from .models import count_params

    start, stop = config.loss_region()
    print(f"model: {count_params(run.model):,} parameters, window {config.window}, length multiple "
          f"{config.model.length_multiple}, loss on window[{start}:{stop}] ({config.train.loss}); data: {n_train} "
          f"training, {n_valid} validation tracks; {run.strategy.num_replicas_in_sync} replica(s)", flush=True)
    history = _History(out / "history.csv", keep_before=int(run.state["epoch"]) + 1)
    with StopRequest() as stop_request:
        while int(run.state["epoch"]) < config.train.epochs:
            began = time.monotonic()
            train_loss = train_epoch(run, stop_request, progress)
            if train_loss is None:
                return 130
            finish_epoch(run, train_loss, validate(run, valid), history, time.monotonic() - began)
    best = float(run.state["best"])
    if not run.chief:
        print(f"done ({run.worker}; the chief's run directory holds best.keras, validation loss {best:.5f})",
              flush=True)
        return 0
    print(f"done: {out / 'best.keras'} (validation loss {best:.5f}); export it with "
          f"python -m export --checkpoint {out / 'best.keras'} --output model.onnx", flush=True)
    return 0


def set_up(config: Config, out: Path, resume: bool, sampler, layout) -> Run:
    """Strategy, seeds, the model with its starting weights (``[init_from]``, or the last checkpoint when
    resuming), the optimizer, the checkpoint manager and the compiled steps; writes ``out/config.toml``."""
    import keras
    import tensorflow as tf

    from .models import batch_norm_layers, build

    t = config.train
    strategy = make_strategy(t.strategy)  # first: MultiWorkerMirroredStrategy must precede other TF setup
    keras.utils.set_random_seed(t.seed)
    if t.deterministic:
        tf.config.experimental.enable_op_determinism()
    out.mkdir(parents=True, exist_ok=True)
    # Every worker keeps the config (the same on all: tf.distribute needs one model and batch) to --resume from,
    # written whole so workers sharing the run directory never read half a file.
    tmp = out / f".tmp-{platform.node()}-{os.getpid()}-config.toml"
    tmp.write_text(to_toml(config))
    os.replace(tmp, out / "config.toml")

    replicas = strategy.num_replicas_in_sync
    if t.batch_size % replicas:
        raise ConfigError(f"train.batch_size {t.batch_size} must be a multiple of the {replicas} replicas")
    with strategy.scope():
        model = build(config)
        if t.freeze_batch_norm:
            for layer in batch_norm_layers(model):
                layer.trainable = False
        optimizer = keras.optimizers.Adam(_learning_rate(keras, t))
        optimizer.build(model.trainable_variables)
        if not resume:
            _initialize(model, config)
    if replicas > 1:
        # Batch norm statistics over the global batch, not each replica's slice: with the data split as one
        # device's batch (``dataset`` below), N replicas then train the network one device would, to rounding.
        for layer in batch_norm_layers(model):
            layer.synchronized = True  # read at every call (keras ops.moments); TensorFlow backend only
    # Bookkeeping lives outside the strategy: plain host variables, saved with the model.
    state = {"epoch": tf.Variable(0, dtype=tf.int64), "step": tf.Variable(0, dtype=tf.int64),
             "loss_sum": tf.Variable(0.0, dtype=tf.float64), "best": tf.Variable(math.inf, dtype=tf.float64)}
    checkpoint = tf.train.Checkpoint(model=model, optimizer=optimizer, **state)
    # Every worker saves (tf.distribute's rule: saving may need all of them); the chief's checkpoints are the
    # run's, the others write theirs aside and resume from them (all hold the same values).
    worker = "" if is_chief(strategy) else f"{strategy.cluster_resolver.task_type}{strategy.cluster_resolver.task_id}"
    ckpt_dir = out / (f"checkpoints-{worker}" if worker else "checkpoints")
    manager = tf.train.CheckpointManager(checkpoint, ckpt_dir, max_to_keep=2)
    if resume:
        if manager.latest_checkpoint is None:
            raise UserError(f"--resume: no checkpoint in {ckpt_dir}; start without --resume")
        try:
            checkpoint.restore(manager.latest_checkpoint).assert_existing_objects_matched()
        except (AssertionError, ValueError) as exc:
            raise UserError(f"--resume: {manager.latest_checkpoint} does not fit the model of {out / 'config.toml'} "
                            f"({str(exc).splitlines()[0][:200]}); do not change model.* when resuming") from None
        print(f"resuming {out} at epoch {int(state['epoch']) + 1}, step {int(state['step'])}", flush=True)
    return Run(config, out, strategy, model, optimizer, state, manager, ckpt_dir, worker,
               *_compile_steps(config, strategy, model, optimizer, sampler, layout))


def _compile_steps(config: Config, strategy, model, optimizer, sampler, layout) -> tuple[Callable, Callable, Callable]:
    """(train_step, eval_step, dataset) of a run: the distributed training step, the validation step and the
    epoch's batches split over the replicas as one device's batch."""
    import tensorflow as tf

    from .losses import make_loss

    t, replicas = config.train, strategy.num_replicas_in_sync
    region = config.loss_region()
    loss_fn = make_loss(t.loss, layout.matrix, region, t.stem_weights)
    valid_loss_fn = make_loss(t.loss, layout.matrix, region)  # unweighted, so runs compare
    spec = (tf.TensorSpec((None, config.window, 2), tf.float32),
            tf.TensorSpec((None, config.window, len(layout.names), 2), tf.float32),
            tf.TensorSpec((None, len(layout.names)), tf.float32))

    def step_fn(mix, targets, presence, stop):
        with tf.GradientTape() as tape:
            per_example = loss_fn(model(mix, training=True), targets, presence)
            loss = tf.reduce_sum(per_example) / t.batch_size  # summed over the replicas: the global batch's mean
        optimizer.apply_gradients(zip(tape.gradient(loss, model.trainable_variables), model.trainable_variables))
        return tf.stack([loss, stop])

    @tf.function
    def train_step(iterator, stop):
        """(the step's loss, how many replicas' workers asked to stop): one all-reduce carries both to every worker."""
        return tf.unstack(strategy.reduce("SUM", strategy.run(step_fn, args=(*next(iterator), stop)), axis=None))

    @tf.function(input_signature=spec)
    def eval_step(mix, targets, presence):
        return valid_loss_fn(model(mix, training=False), targets, presence)

    def dataset(epoch: int, first_step: int):
        def make(context):
            per_replica = context.get_per_replica_batch_size(t.batch_size)
            per_pipeline = replicas // context.num_input_pipelines

            def generate():
                # Each input pipeline (one per worker) draws every step's whole global batch, as a one-device run
                # does, and its replicas take their slices: replica k trains on examples [k * n, (k + 1) * n) for
                # n = per_replica, so the replicas together train on exactly the one-device run's examples.
                for batch in sampler.batches(t.seed, epoch, range(first_step, t.steps_per_epoch), t.batch_size):
                    for r in range(per_pipeline):
                        k = (context.input_pipeline_id * per_pipeline + r) * per_replica
                        yield tuple(x[k:k + per_replica] for x in batch)

            return tf.data.Dataset.from_generator(generate, output_signature=spec).prefetch(2)

        return strategy.distribute_datasets_from_function(make)

    return train_step, eval_step, dataset


def train_epoch(run: Run, stop_request: StopRequest, progress: bool) -> float | None:
    """The current epoch's remaining steps; its mean training loss, or None when a stop was requested (a
    resumable checkpoint is then saved)."""
    import tensorflow as tf
    from tqdm import tqdm

    t, state = run.config.train, run.state
    epoch, first = int(state["epoch"]), int(state["step"])
    iterator = iter(run.dataset(epoch, first))
    bar = tqdm(total=t.steps_per_epoch, initial=first, desc=f"epoch {epoch + 1}/{t.epochs}", unit="step",
               disable=not progress, leave=False, dynamic_ncols=True, mininterval=0.5)
    for step in range(first, t.steps_per_epoch):
        loss, stops = (float(x) for x in run.train_step(iterator, tf.constant(float(stop_request.requested))))
        if not math.isfinite(loss):
            raise UserError(f"training diverged: loss is {loss} at epoch {epoch + 1} step {step + 1}; "
                            "lower train.learning_rate or check the data")
        state["loss_sum"].assign_add(loss)
        state["step"].assign(step + 1)
        bar.update(1)
        bar.set_postfix(loss=f"{float(state['loss_sum']) / (step + 1):.4f}", refresh=False)
        if stops > 0:
            bar.close()
            run.manager.save()
            where = "" if stop_request.requested else " (Ctrl-C on another worker)"
            print(f"interrupted at epoch {epoch + 1}, step {step + 1}{where}; checkpoint saved in {run.checkpoints}. "
                  f"Continue with: {PROG} --out {run.out} --resume", flush=True)
            return None
    bar.close()
    return float(state["loss_sum"]) / t.steps_per_epoch


def validate(run: Run, valid) -> float:
    """The mean validation loss over the fixed validation windows (unweighted, in inference mode)."""
    size = run.config.train.batch_size
    losses = [run.eval_step(*(x[i:i + size] for x in valid)).numpy() for i in range(0, len(valid[0]), size)]
    return float(np.mean(np.concatenate(losses)))


def finish_epoch(run: Run, train_loss: float, val_loss: float, history: _History, seconds: float) -> None:
    """Keep the best model, checkpoint the finished epoch, log it (history.csv, loss.png) and report it."""
    import keras

    state, t = run.state, run.config.train
    epoch = int(state["epoch"])
    improved = val_loss < float(state["best"])
    if improved:
        state["best"].assign(val_loss)
        if run.chief:
            _save_model(run.model, run.out / "best.keras")
    state["epoch"].assign(epoch + 1)
    state["step"].assign(0)
    state["loss_sum"].assign(0.0)
    run.manager.save()
    if run.chief:
        history.append(epoch + 1, train_loss, val_loss,
                       float(keras.ops.convert_to_numpy(run.optimizer.learning_rate)), seconds)
        history.plot(run.out / "loss.png")
    saved = " (best, saved best.keras)" if run.chief else " (best)"
    print(f"epoch {epoch + 1}/{t.epochs}: train loss {train_loss:.5f}, validation loss {val_loss:.5f}"
          f"{saved if improved else ''}, {seconds:.1f} s", flush=True)


def _initialize(model, config: Config) -> None:
    """A new run's starting weights, as ``[init_from]`` says (random weights need nothing)."""
    source = config.init_from
    if source.kind == "spleeter":
        from .models.quality import init_from_spleeter

        init_from_spleeter(model.estimator, config.model.stems)
    elif source.kind == "checkpoint":
        _init_weights(model, Path(source.path))


def _init_weights(model, path: Path) -> None:
    """Start from another run's weights (``init_from.kind = "checkpoint"``), e.g. to fine-tune with new data."""
    from .models import export_part

    if not path.is_file():
        raise UserError(f"init_from.path: no such model {path}; give the best.keras of an earlier run")
    try:  # best.keras holds a quality model's estimator, the part _save_model writes
        export_part(model).load_weights(path)
    except (ValueError, KeyError) as exc:
        raise UserError(f"init_from.path: {path} does not fit this model ({str(exc).splitlines()[0][:200]}); "
                        "its model.* settings must match the layers of this config") from None
    print(f"initialized from {path}", flush=True)


def _save_model(model, path: Path) -> None:
    """Write-then-rename, so an interruption never leaves a broken best.keras."""
    from .models import export_part

    tmp = path.with_name(".tmp-" + path.name)
    export_part(model).save(tmp)
    os.replace(tmp, path)


class _History:
    """history.csv, one row per finished epoch; rows of epochs being redone after a resume are dropped."""

    def __init__(self, path: Path, keep_before: int):
        self.path = path
        self.rows = []
        if path.is_file():
            with path.open(newline="") as f:
                self.rows = [r for r in csv.DictReader(f) if int(r["epoch"]) < keep_before]

    def append(self, epoch: int, train_loss: float, val_loss: float, lr: float, seconds: float) -> None:
        self.rows.append({"epoch": epoch, "train_loss": f"{train_loss:.6g}", "val_loss": f"{val_loss:.6g}",
                          "learning_rate": f"{lr:g}", "seconds": f"{seconds:.2f}"})
        tmp = self.path.with_name(".tmp-" + self.path.name)
        with tmp.open("w", newline="") as f:
            writer = csv.DictWriter(f, HISTORY_FIELDS)
            writer.writeheader()
            writer.writerows(self.rows)
        os.replace(tmp, self.path)

    def plot(self, path: Path) -> None:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt

        epochs = [int(r["epoch"]) for r in self.rows]
        fig, ax = plt.subplots(figsize=(6, 4))
        ax.plot(epochs, [float(r["train_loss"]) for r in self.rows], "o-", label="train")
        ax.plot(epochs, [float(r["val_loss"]) for r in self.rows], "o-", label="validation")
        ax.set_xlabel("epoch")
        ax.set_ylabel("loss")
        ax.legend()
        ax.grid(alpha=0.3)
        fig.tight_layout()
        fig.savefig(path, dpi=100)
        plt.close(fig)


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        config = resolve_config(args)
        return train(config, args.out, resume=args.resume, progress=not args.no_progress)
    except UserError as exc:
        print(f"{PROG}: error: {exc}", file=sys.stderr)
        return exc.exit_code
    except KeyboardInterrupt:
        print(f"{PROG}: aborted", file=sys.stderr)
        return 130


def _learning_rate(keras, t):
    """Adam's rate: constant, or a cosine decay to 1% over the whole run (settles the weights at the end)."""
    if t.lr_schedule == "cosine":
        return keras.optimizers.schedules.CosineDecay(t.learning_rate, t.epochs * t.steps_per_epoch, alpha=0.01)
    return t.learning_rate


if __name__ == "__main__":  # last, so every function above exists (python -m training.train)
    sys.exit(main())
