"""Greedy layer-wise pre-training with convolutional auto-encoders: learn conv1..convK from unlabeled images.

The seed notes' fourth remedy for a small data set. One layer at a time, from the first:

    h     = everything before conv_k, applied to an image (the layers already pre-trained stay fixed)
    code  = ReLU(conv_k(h))                               the encoder: the layer being pre-trained
    h_hat = ConvTranspose2d(code)                          a decoder built for this layer, thrown away after
    L     = mean((h_hat - h)^2) / var(h)                   how much of h the code fails to explain

Dividing by var(h) makes L the fraction of h's variance that is not reconstructed (1: no better than h's
mean; 0: perfect), whatever the scale of the layer's input, so one learning rate suits every layer. After
conv_k, the next layer learns to reconstruct conv_k's (pooled, normalised) output, and so on. The encoders
are then fine-tuned with labels like any trained network (alexnet.py train --init).
"""
import numpy as np

from .data.augment import random_crop_flip
from .graph import Sequential
from .layers import Conv2d, ConvTranspose2d, ReLU
from .losses import MSELoss
from .optim import SGD


def decoder_for(conv, input_hw, rng):
    """A ConvTranspose2d that maps conv's output back to conv's input shape (C, H, W)."""
    out_hw = conv.output_shape((conv.in_channels,) + tuple(input_hw))[1:]
    # a strided conv maps several input sizes to one output size; output_padding picks the one we came from
    extra = [h - ((o - 1) * s - 2 * p + k) for h, o, s, p, k in
             zip(input_hw, out_hw, conv.stride, conv.padding, conv.kernel_size)]
    return ConvTranspose2d(conv.out_channels, conv.in_channels, conv.kernel_size, conv.stride, conv.padding,
                           output_padding=tuple(extra), dtype=conv.weight.data.dtype, rng=rng)


def pretrain_layerwise(model, names, images, preprocess, input_size, rng, epochs=2, lr=0.01, batch_size=32,
                       progress=True, log=print):
    """Pre-train model's Conv2d layers `names` in order, as auto-encoders, on uint8 images (N, S, S, 3).

    model: a Sequential whose children include the named Conv2d layers (changed in place).
    preprocess: a data.Preprocess; each batch is preprocessed, randomly cropped to input_size and flipped.
    -> history: one dict per layer and epoch: layer, epoch, loss (the fraction of variance unexplained).
    """
    from tqdm import tqdm
    from .train import TrainingDiverged

    children = model.children()
    positions = {name: i for i, (name, _) in enumerate(children)}
    for name in names:
        if name not in positions or not isinstance(children[positions[name]][1], Conv2d):
            raise ValueError(f"pretrain: {name!r} is not a Conv2d layer of the model; its Conv2d layers are "
                             f"{', '.join(n for n, l in children if isinstance(l, Conv2d))}")
    history = []
    for name in names:
        conv = children[positions[name]][1]
        below = Sequential(dict(children[:positions[name]])) if positions[name] else None
        input_shape = below.output_shape((3, input_size, input_size)) if below else (3, input_size, input_size)
        relu, decoder = ReLU(), decoder_for(conv, input_shape[1:], rng)
        optimizer = SGD(conv.parameters() + decoder.parameters(), lr=lr, momentum=0.9, weight_decay=5e-4)
        mse, variance = MSELoss(), None
        for epoch in range(1, epochs + 1):
            order, total, seen = rng.permutation(len(images)), 0.0, 0
            steps = tqdm(range(0, len(order), batch_size), desc=f"{name} epoch {epoch}", leave=False,
                         disable=None if progress else True)
            for start in steps:
                x = random_crop_flip(preprocess(images[order[start:start + batch_size]]), input_size, rng)
                h = below.forward(x) if below else x
                if variance is None:                 # measured once, so the loss is comparable across epochs
                    variance = h.dtype.type(max(float(h.var()), 1e-12))
                h_hat = decoder.forward(relu.forward(conv.forward(h, True), True), True)
                loss = mse.forward(h_hat, h) / float(variance)
                if not np.isfinite(loss):
                    raise TrainingDiverged(f"pretrain: the reconstruction loss of {name} became {loss} at epoch "
                                           f"{epoch}; try a smaller --lr")
                conv.needs_input_grad = False                # h is fixed: no gradient flows below conv_k
                conv.backward(relu.backward(decoder.backward(mse.backward() / variance)))
                optimizer.step()
                total, seen = total + loss * len(h), seen + len(h)
            history.append(dict(layer=name, epoch=epoch, loss=total / seen))
            log(f"{name} epoch {epoch}/{epochs}: unexplained variance {total / seen:.4f}")
    return history
