"""784-800-800-10 ReLU (Hinton et al. 2015, the paper's small FC student)."""
from models.spec import Dense, ModelSpec

SPEC = ModelSpec(
    name="hinton800",
    input_shape=(784,),
    layers=(
        Dense("fc1", 800),
        Dense("fc2", 800),
        Dense("logits", 10),
    ),
)
