"""Stopping a long pretraining run cleanly on Ctrl-C, and refusing to keep a diverged layer.

Greedy pretraining writes a checkpoint after every layer, so a run that is
stopped loses at most the layer in progress. `graceful_interrupt()` turns the
first SIGINT into a request that is honoured at the end of the current batch
(raising `PretrainingInterrupted` from the training loop, before the layer's
checkpoint could record a half-trained layer); a second SIGINT stops at once.
`StopOnDivergence` raises `TrainingDiverged`, naming the layer and epoch, at
the end of an epoch whose loss is NaN or infinite, so diverged weights are
never saved.
"""

import contextlib
import math
import signal
import threading

import keras


class PretrainingInterrupted(KeyboardInterrupt):
    """Raised at the end of a batch after SIGINT; completed layers are checkpointed."""


class TrainingDiverged(ValueError):
    """The training loss became NaN or infinite; the layer's weights were not kept."""


class _InterruptState:
    requested = False


_state = _InterruptState()


class StopOnInterrupt(keras.callbacks.Callback):
    """Raise `PretrainingInterrupted` at the end of the batch during which SIGINT arrived."""

    def on_train_batch_end(self, batch, logs=None):
        if _state.requested:
            raise PretrainingInterrupted("interrupted by SIGINT")


class StopOnDivergence(keras.callbacks.Callback):
    """Raise `TrainingDiverged` at the end of an epoch whose loss is not finite.

    Checked per epoch, not per batch, so the training loop never waits on the
    device for a loss value. The message names the layer (from the greedy
    training model's name, `greedy_layer_{k}`) and the epoch.
    """

    def on_epoch_end(self, epoch, logs=None):
        loss = (logs or {}).get("loss")
        if loss is not None and not math.isfinite(float(loss)):
            raise TrainingDiverged(
                f"{self._stage()} diverged: the loss became {float(loss)} in epoch "
                f"{epoch + 1}. Lower the learning rate or check the input scaling; the "
                "layers finished before it are kept in the checkpoint."
            )

    def _stage(self):
        name = getattr(self.model, "name", "") or ""
        prefix = "greedy_layer_"
        if name.startswith(prefix) and name[len(prefix):].isdigit():
            return f"layer {int(name[len(prefix):]) + 1}"
        return f"model '{name}'" if name else "training"


@contextlib.contextmanager
def graceful_interrupt():
    """Within this block the first SIGINT stops training after the current batch.

    Only the main thread can install signal handlers; elsewhere this is a no-op.
    """
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def request_stop(signum, frame):
        if _state.requested:  # a second Ctrl-C: stop now
            raise KeyboardInterrupt
        _state.requested = True

    previous = signal.signal(signal.SIGINT, request_stop)
    _state.requested = False
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)
        _state.requested = False
