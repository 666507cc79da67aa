"""The seed exercise's softmax-NLL cell and its inputs, shared by every
engine. Standard library only, so that tools/ab.py can load this file by
path to time two builds of cgrad with the very same code."""
import random

SEED = 20240611


# The seed's code, verbatim: both engines run exactly this.
def softmax(logits):
    counts = [logit.exp() for logit in logits]
    denominator = sum(counts)
    out = [c / denominator for c in counts]
    return out


def build_softmax_nll(Value, xs, label):
    """The seed's cell up to loss.backward(): returns (logits, loss)."""
    logits = [Value(x) for x in xs]
    probs = softmax(logits)
    loss = -probs[label].log()
    return logits, loss


def softmax_inputs(n):
    """Seeded random-normal logits and a label, the same for every engine."""
    rng = random.Random(SEED + n)
    xs = [rng.gauss(0.0, 1.0) for _ in range(n)]
    return xs, rng.randrange(n)
