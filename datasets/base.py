"""The interface every dataset exposes: io_shape and train/test batch iterators."""
import numpy as np


class ArrayDataset:
    """Examples as flat float32 rows [N, input_size] with int64 labels."""

    def __init__(self, name, train_x, train_y, test_x, test_y, input_shape, num_classes):
        self.name = name
        self.train_x, self.train_y = train_x, train_y
        self.test_x, self.test_y = test_x, test_y
        self.input_shape = tuple(input_shape)
        self.num_classes = num_classes

    @property
    def io_shape(self):
        """(input size, number of classes), as the original tool's io_size."""
        return int(np.prod(self.input_shape)), self.num_classes

    @property
    def has_test(self):
        return self.test_x is not None

    def train_batches(self, batch_size, seed, epoch=0):
        """One shuffled epoch; the order depends only on (seed, epoch)."""
        order = np.random.default_rng([seed, epoch]).permutation(len(self.train_x))
        for start in range(0, len(order), batch_size):
            idx = order[start:start + batch_size]
            yield self.train_x[idx], self.train_y[idx]

    def test_batches(self, batch_size):
        for start in range(0, len(self.test_x), batch_size):
            yield self.test_x[start:start + batch_size], self.test_y[start:start + batch_size]

    def steps_per_epoch(self, batch_size):
        return -(-len(self.train_x) // batch_size)
