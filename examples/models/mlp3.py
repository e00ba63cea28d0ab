"""An example teacher: a 3-hidden-layer MLP on 28x28 grey images (784 inputs), 10 classes.

Copy this file to describe your own network: SPEC lists its layers with the vocabulary
of models/spec.py (Dense, Conv, MaxPool, AvgPool), and every dfkd procedure takes the
path as --model (or --student_model). The file is Python and runs when loaded.
"""
from models.spec import Dense, ModelSpec

SPEC = ModelSpec(
    name="mlp3",
    input_shape=(784,),
    layers=(
        Dense("fc1", 512, dropout=0.2),
        Dense("fc2", 512, dropout=0.3),
        Dense("fc3", 256, dropout=0.3),
        Dense("logits", 10),
    ),
)
