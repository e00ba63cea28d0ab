"""784-1200-1200-10 ReLU with dropout (Hinton et al. 2015, the paper's large FC teacher)."""
from models.spec import Dense, ModelSpec

SPEC = ModelSpec(
    name="hinton1200",
    input_shape=(784,),
    layers=(
        Dense("fc1", 1200, dropout=0.2),
        Dense("fc2", 1200, dropout=0.5),
        Dense("logits", 10, dropout=0.5),
    ),
)
