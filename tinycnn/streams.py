"""Random numbers keyed to the image they are for, not to the process that draws them.

Training draws, for every image of every epoch, a crop, a flip, a colour offset and the dropout masks of the
layers it passes. Here each image draws them from a stream of its own, fixed by three numbers:

    stream(seed, epoch, i)      i: the image's place in that epoch's order (0, 1, ..., N - 1)

Philox (Salmon et al., "Parallel random numbers: as easy as 1, 2, 3", 2011) is a counter-based generator: its
n-th block of output is a fixed function of a key and of the counter n, with nothing carried from block to block.
So a stream can start anywhere: image i's stream is the key `seed` with its 256-bit counter starting at
(0, IMAGES, i, epoch), and drawing counts up from there in the lowest 64 bits. Streams of different images never
meet (each would have to draw 2^64 blocks first).

What that buys:
- a process that holds some images of a batch (data parallelism on several ranks) draws their numbers alone and
  gets what one process holding the whole batch gets for them;
- a run resumed in the middle of an epoch needs no saved generator state, only (seed, epoch, step);
- the layers and the augmentation draw from an ordinary `Generator` interface and know nothing of either.
"""
import numpy as np

IMAGES, ORDER = 0, 1         # the second counter word: what a stream is for


def stream(seed, epoch, purpose, index=0):
    """The Generator whose counter starts at (0, purpose, index, epoch), under the key seed (an int >= 0)."""
    return np.random.Generator(np.random.Philox(key=seed, counter=[0, purpose, index, epoch]))


def epoch_order(seed, epoch, n):
    """The order in which epoch `epoch` visits n images: a permutation of 0..n-1 of its own stream."""
    return stream(seed, epoch, ORDER).permutation(n)


class ImageStreams:
    """The streams of some images of an epoch, drawn like one Generator whose first axis is the image.

    ImageStreams(seed, epoch, places): places (k,) are the images' places in the epoch's order.
    streams.random((k, D), dtype) -> (k, D): row j drawn from image places[j]'s stream; likewise integers and
    normal. Each image's stream is drawn in the same order whatever else is drawn beside it (first the crop, then
    the flip, the colour, and the dropout masks layer by layer), so row j does not depend on the other rows.
    """

    def __init__(self, seed, epoch, places):
        self.places = np.asarray(places)
        self.streams = [stream(seed, epoch, IMAGES, int(i)) for i in self.places]

    def __len__(self):
        return len(self.streams)

    def _rows(self, size, dtype, draw):
        size = (size,) if np.isscalar(size) else tuple(size)
        if size[0] != len(self.streams):
            raise ValueError(f"ImageStreams: asked for {size[0]} rows, but holds the streams of {len(self.streams)} "
                             f"images; expected a first axis of {len(self.streams)}")
        if not self.streams:
            return np.empty(size, dtype)
        return np.stack([draw(g, size[1:]) for g in self.streams])

    def random(self, size, dtype=np.float64):
        """Uniform on [0, 1), as Generator.random."""
        return self._rows(size, dtype, lambda g, shape: g.random(shape, dtype=dtype))

    def integers(self, low, high, size):
        """Integers in [low, high), as Generator.integers (int64)."""
        return self._rows(size, np.int64, lambda g, shape: g.integers(low, high, shape))

    def normal(self, loc, scale, size):
        """Normal with mean loc and standard deviation scale (float64), as Generator.normal."""
        return self._rows(size, np.float64, lambda g, shape: g.normal(loc, scale, shape))
