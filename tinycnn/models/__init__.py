"""Networks assembled from tinycnn's layers, as torchvision.models holds torchvision's.

    from tinycnn.models import alexnet, two_towers
    model = alexnet(num_classes=1000, variant="paper")

The module behind them is tinycnn/models/alexnet.py; its other names (VARIANTS, INPUT_SIZE, PIXEL_SCALE,
stored_size) come with `from tinycnn.models.alexnet import ...`. (As in torchvision, the attribute
tinycnn.models.alexnet is the function, not the module.)
"""
from .alexnet import alexnet, two_towers

__all__ = ["alexnet", "two_towers"]
