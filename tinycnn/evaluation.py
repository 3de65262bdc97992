"""Scoring a model: softmax outputs of centre crops or of the paper's ten crops, top-1 and top-5 accuracy, the
mean cross-entropy, and the confusion matrix."""
import numpy as np

from .data.augment import centre_crop, ten_crops


def top_k_correct(probs, labels, k):
    """Number of rows whose true label is among the k largest probabilities."""
    k = min(k, probs.shape[1])
    top = np.argpartition(-probs, k - 1, axis=1)[:, :k]
    return int((top == labels[:, None]).any(axis=1).sum())


def predict_probs(model, images, preprocess, size, batch_size=100, ten_crop=False):
    """Softmax outputs (N, classes) for uint8 images (N, S, S, 3): centre crop, or the mean over ten crops."""
    out = []
    for i in range(0, len(images), batch_size):
        x = preprocess(images[i:i + batch_size])
        views = ten_crops(x, size) if ten_crop else [centre_crop(x, size)]
        probs = 0
        for view in views:
            logits = model.forward(np.ascontiguousarray(view), training=False).astype(np.float64)
            e = np.exp(logits - logits.max(axis=1, keepdims=True))
            probs = probs + e / e.sum(axis=1, keepdims=True)
        out.append(probs / len(views))
    return np.concatenate(out)


def scores(probs, labels):
    """-> dict(loss, top1, top5) of softmax outputs (N, classes): the mean cross-entropy and the accuracies."""
    picked = probs[np.arange(len(labels)), labels]
    return dict(loss=float(-np.mean(np.log(np.maximum(picked, 1e-12)))),
                top1=top_k_correct(probs, labels, 1) / len(labels),
                top5=top_k_correct(probs, labels, 5) / len(labels))


def evaluate(model, data, preprocess, size, batch_size=100, ten_crop=False):
    """-> dict(loss, top1, top5) on an ImageSet: the mean cross-entropy of the (averaged) softmax, accuracies."""
    return scores(predict_probs(model, data.images, preprocess, size, batch_size, ten_crop), data.labels)


def confusion_matrix(predicted, labels, num_classes):
    """counts[t, p]: how many images of true class t were predicted as class p. -> int64 (classes, classes)."""
    counts = np.zeros((num_classes, num_classes), np.int64)
    np.add.at(counts, (labels, predicted), 1)
    return counts
