"""Early stopping (`training.loop.train_epochs`) on a scripted validation curve: the best epoch's
weights come back, patience counts epochs without a gain, and with `min_gain` a gain smaller
than that share of the best counts as none."""

from __future__ import annotations

from training.loop import LoopSettings, train_epochs

# Validation MSE per epoch: a real gain, then gains of ~0.01% a pass, as ALS ran on the planted
# 20M set.
CURVE = [1.0, 0.5, 0.4, 0.39990, 0.39980, 0.39970, 0.39960, 0.39950]


class Scripted:
    """Stands for a model: its "weights" are the epoch that set them."""

    def __init__(self):
        self.epoch, self.restored = 0, None

    def get_weights(self):
        return self.epoch

    def set_weights(self, weights):
        self.restored = weights


def run(min_gain: float, patience: int = 3):
    model = Scripted()

    def run_epoch(_):
        model.epoch += 1
        return {"loss": 1.0}

    def evaluate():
        return {"val_loss": CURVE[model.epoch - 1]}

    settings = LoopSettings(1, len(CURVE), patience, 0, min_gain)
    history, best = train_epochs(model, run_epoch, None, settings, evaluate, "val_loss", print)
    return len(history["loss"]), best, model.restored


def test_without_a_least_gain_every_gain_counts_and_the_loop_runs_to_its_cap():
    assert run(0.0) == (len(CURVE), len(CURVE), len(CURVE))


def test_gains_below_the_least_share_count_as_none_and_the_last_real_gain_is_restored():
    ran, best, restored = run(0.001)  # 0.1% of 0.4 is 0.0004: the passes after 3 gain less
    assert (ran, best, restored) == (3 + 3, 3, 3)


def test_a_gain_above_the_least_share_resets_the_patience():
    ran, best, _ = run(0.0001 / 0.5)  # 0.02%: 0.0001 of 0.4 is 0.025%, counted
    assert (ran, best) == (len(CURVE), len(CURVE))
