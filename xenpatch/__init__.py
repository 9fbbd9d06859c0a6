"""xenpatch: change and review Xen's public ABI, end to end."""

__version__ = "0.1.0"
