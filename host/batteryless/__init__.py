"""batteryless: from PyTorch to a batteryless, energy-harvesting microcontroller.

Every CLI verb is a thin shell over a library function of the same name; the Python API is the product.
"""

__version__ = "0.1.0"

from batteryless.errors import BatterylessError  # noqa: E402

__all__ = ["__version__", "BatterylessError"]
