"""A Keras callback that times every `fit` call and every epoch (import after `quiet_backends`)."""

import time

import keras


class FitTimer(keras.callbacks.Callback):
    """`fit_seconds`: wall time of each `fit` (one per greedy layer); `epoch_seconds`: for each
    `fit`, the wall time of each of its epochs."""

    def __init__(self):
        super().__init__()
        self.fit_seconds, self.epoch_seconds = [], []

    def on_train_begin(self, logs=None):
        self._fit_start = time.perf_counter()
        self.epoch_seconds.append([])

    def on_epoch_begin(self, epoch, logs=None):
        self._epoch_start = time.perf_counter()

    def on_epoch_end(self, epoch, logs=None):
        self.epoch_seconds[-1].append(time.perf_counter() - self._epoch_start)

    def on_train_end(self, logs=None):
        self.fit_seconds.append(time.perf_counter() - self._fit_start)
