"""Matrix factorisation: the plain dot product, and with user/item biases."""

from __future__ import annotations

from keras import ops

from training.models.base import RatingModel


class MF(RatingModel):
    """r_ui = mu + <p_u, q_i>: the tutorials' dot product, no learned biases.

    `mu` is the training mean, a constant (the targets are centred): without it the factors
    would have to learn the rating scale, and an unknown id would predict 0 stars.
    """

    kind = "mf"
    score = "rating"

    def predict_from(self, p, q, biases, training=False):
        return self.global_mean + ops.sum(p * q, axis=-1)


class BiasedMF(RatingModel):
    """r_ui = mu + b_u + b_i + <p_u, q_i>."""

    kind = "mf_bias"
    score = "rating"
    use_bias = True

    def predict_from(self, p, q, biases, training=False):
        return self.global_mean + biases[0] + biases[1] + ops.sum(p * q, axis=-1)
