"""The losses: softmax cross-entropy for classes (fused, so it is stable and its gradient is simple), and the
mean squared error for reconstructions (the auto-encoder's loss)."""
import numpy as np


class SoftmaxCrossEntropy:
    """Mean cross-entropy of softmax(logits) against integer labels.

    Shapes: logits z: (N, K), labels y: (N,) ints in [0, K) -> loss: a scalar.

        p_nk = exp(z_nk - m_n) / sum_j exp(z_nj - m_n)            m_n = max_j z_nj (stability)
        L    = -(1/N) sum_n log p_{n, y_n} = (1/N) sum_n [log sum_j exp(z_nj - m_n) - (z_{n, y_n} - m_n)]
        dL/dz_nk = (p_nk - [k == y_n]) / N

    Subtracting the row maximum leaves the softmax unchanged and keeps every exp() in [0, 1], so logits of
    +-1e4 give a finite loss even in float32.
    Saved for backward, as plain attributes: probabilities, softmax(z) (N, K), and labels (N,).
    """

    def __init__(self):
        self.probabilities = self.labels = None

    def forward(self, logits, labels):
        if not isinstance(logits, np.ndarray) or logits.ndim != 2 or logits.dtype not in (np.float32, np.float64):
            raise ValueError(f"SoftmaxCrossEntropy: expected float logits of shape (N, K), got "
                             f"{getattr(logits, 'dtype', type(logits).__name__)} {getattr(logits, 'shape', '')}")
        labels = np.asarray(labels)
        N, K = logits.shape
        if labels.shape != (N,) or not np.issubdtype(labels.dtype, np.integer):
            raise ValueError(f"SoftmaxCrossEntropy: expected integer labels of shape ({N},), got "
                             f"{labels.dtype} {labels.shape}")
        if N and (labels.min() < 0 or labels.max() >= K):
            raise ValueError(f"SoftmaxCrossEntropy: labels must be in [0, {K}), got values from "
                             f"{labels.min()} to {labels.max()}")
        shifted = logits - logits.max(axis=1, keepdims=True)
        exp = np.exp(shifted)
        sum_exp = exp.sum(axis=1, keepdims=True)
        rows = np.arange(N)
        loss = np.mean(np.log(sum_exp[:, 0]) - shifted[rows, labels])
        self.probabilities, self.labels = exp / sum_exp, labels
        return loss

    def backward(self):
        """-> dlogits: (N, K), the gradient of the mean loss."""
        if self.labels is None:
            raise RuntimeError("SoftmaxCrossEntropy: backward called before forward")
        # exercise: softmax_cross_entropy_backward
        N = len(self.labels)
        dlogits = self.probabilities.copy()
        dlogits[np.arange(N), self.labels] -= 1
        return dlogits / dlogits.dtype.type(N)
        # end exercise


class MSELoss:
    """Mean squared error between a prediction and a target of the same shape (any shape, M entries).

        L = (1/M) sum_i (p_i - t_i)^2        dL/dp_i = 2 (p_i - t_i) / M

    The mean over every entry, as PyTorch's MSELoss, so the loss does not grow with the image size.
    Saved for backward, as a plain attribute: diff = p - t.
    """

    def __init__(self):
        self.diff = None

    def forward(self, prediction, target):
        for name, a in (("prediction", prediction), ("target", target)):
            if not isinstance(a, np.ndarray) or a.dtype not in (np.float32, np.float64):
                raise ValueError(f"MSELoss: expected a float array as {name}, got "
                                 f"{getattr(a, 'dtype', type(a).__name__)}")
        if prediction.shape != target.shape:
            raise ValueError(f"MSELoss: the prediction has shape {prediction.shape}, expected the target's "
                             f"{target.shape}")
        diff = prediction - target.astype(prediction.dtype, copy=False)
        self.diff = diff
        return float(np.vdot(diff, diff)) / diff.size

    def backward(self):
        """-> dL/dprediction, the prediction's shape and dtype."""
        if self.diff is None:
            raise RuntimeError("MSELoss: backward called before forward")
        return self.diff * self.diff.dtype.type(2 / self.diff.size)
