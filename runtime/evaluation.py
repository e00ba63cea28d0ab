"""Test-set accuracy of any graph that maps inputs to logits."""
import numpy as np


def predictions(sess, inputs, logits, x, batch_size):
    out = []
    for start in range(0, len(x), batch_size):
        out.append(np.argmax(sess.run(logits, {inputs: x[start:start + batch_size]}), axis=1))
    return np.concatenate(out)


def accuracy(sess, inputs, logits, dataset, batch_size):
    return float(np.mean(predictions(sess, inputs, logits, dataset.test_x, batch_size) == dataset.test_y))
